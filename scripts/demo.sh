#!/usr/bin/env bash
# The demo on a fresh machine: install, then replicate a generated StackOverflow2010 on embedded PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ray-replicator demo "$@"
