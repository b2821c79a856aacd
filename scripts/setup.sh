#!/usr/bin/env bash
# Create .venv with everything the demo, tests and benchmarks need. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    need=""
    for pkg in freetds-bin libltdl7 pgcopydb pgloader docker-compose make tmux; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
    done
    if [ -n "$need" ]; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
    fi
fi
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The data mover and, as its own distribution, the SQL Server stand-in the demo, tests and benchmarks run against.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ] \
    || [ mssql_standin/pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ./mssql_standin -e ".[dev]"
    touch .venv/.installed
fi
