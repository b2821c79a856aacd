"""Bad input and failures as a user meets them: the real CLI in a subprocess, a PostgreSQL that checks passwords."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import SUPERUSER_PASSWORD, PasswordPostgres

NOCREATE_PW = "nc-Secret-4711"
NOSELECT_PW = "ns-Secret-0815"
WRONG_PW = "wrong-Secret-1234"
SECRETS = (SUPERUSER_PASSWORD, NOCREATE_PW, NOSELECT_PW, WRONG_PW)


@pytest.fixture(scope="session")
def pwpg() -> Iterator[PasswordPostgres]:
    """Databases: src (tables t, heap, acct), roles nocreate (no CREATE anywhere) and noselect (no SELECT)."""
    server = PasswordPostgres()
    server.sql(
        "CREATE DATABASE src",
        f"CREATE ROLE nocreate LOGIN PASSWORD '{NOCREATE_PW}'",
        f"CREATE ROLE noselect LOGIN PASSWORD '{NOSELECT_PW}'",
    )
    server.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int)",
        "INSERT INTO t SELECT g, md5(g::text), g * 1000 FROM generate_series(1, 2000) g",
        "CREATE TABLE heap (a int)",
        "INSERT INTO heap VALUES (1), (1), (2)",
        "ANALYZE",
        database="src",
    )
    yield server
    server.close()


_fresh = iter(range(10_000))


@pytest.fixture
def fresh_db(pwpg: PasswordPostgres) -> str:
    """A new empty database on the password server; returns its URL (with the superuser's password)."""
    name = f"dst_{os.getpid()}_{next(_fresh)}"
    pwpg.sql(f"CREATE DATABASE {name}")
    return pwpg.url(name)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    full_env.pop("RAY_ADDRESS", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ray_replicator", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit code, exactly one 'error: …' line on stderr naming the needles, no traceback, no password anywhere."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    for secret in SECRETS:
        assert secret not in done.stderr + done.stdout
    _catalogue(code, lines[0])
    return lines[0]


def _catalogue(code: int, line: str) -> None:
    """With RR_ERROR_CATALOGUE=FILE, append each checked failure (test, exit code, line) to FILE as JSON lines: the
    list of bad inputs and faults the README and the release notes quote is taken from the tests themselves."""
    path = os.environ.get("RR_ERROR_CATALOGUE")
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"test": test, "exit": code, "line": line}) + "\n")
