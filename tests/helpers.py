"""Helpers shared by end-to-end tests: compare databases row by row (not by our own code), run the CLI in a
subprocess with a local Ray of its own whose processes can be found afterwards, and check its one-line errors."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import psutil
import psycopg
import pytest

from tests.pgserver import SUPERUSER_PASSWORD, PasswordPostgres

ROOT = Path(__file__).resolve().parents[1]
NOCREATE_PW = "nc-Secret-4711"
NOSELECT_PW = "ns-Secret-0815"
WRONG_PW = "wrong-Secret-1234"
SECRETS = (SUPERUSER_PASSWORD, NOCREATE_PW, NOSELECT_PW, WRONG_PW)
"""The passwords of the password server's roles (the pwpg fixture): no output may show them."""


def pg_execute(url: str, *statements: str) -> str:
    """Run each statement on its own (autocommit) in the database at `url`; returns the URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    return url


def run_settings(source: str, target: str, **options: Any) -> dict[str, Any]:
    """replicate() settings from `source` to `target` (URLs) with no report file, plus `options`."""
    return {"source": {"url": source}, "target": {"url": target}, "report_path": None, **options}


def pg_tables(url: str, schema: str = "public") -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY table_name",
            (schema,),
        ).fetchall()
    return [r[0] for r in rows]


def large_value_storage(url: str, table: str, column: str, schema: str = "public") -> dict[str, Any]:
    """How a PostgreSQL table keeps a column's large values: {compression method, None for uncompressed: values
    over 2,000 bytes}, the column's storage (attstorage), the table's reloptions and the server's default method."""
    qualified = f'{schema}."{table}"'
    with psycopg.connect(url) as conn:
        kinds = conn.execute(
            f'SELECT pg_column_compression("{column}"), count(*) FROM {qualified} '
            f'WHERE octet_length("{column}") > 2000 GROUP BY 1'
        ).fetchall()
        row = conn.execute(
            "SELECT a.attstorage, c.reloptions, current_setting('default_toast_compression') FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attrelid = %s::regclass AND a.attname = %s",
            (qualified, column),
        ).fetchone()
    assert row is not None, (qualified, column)
    return {"compressed": dict(kinds), "storage": row[0], "reloptions": row[1], "default": row[2]}


def pg_table_digest(url: str, schema: str, table: str) -> tuple[int, str]:
    """Row count and an order-independent digest of every row's text form (same on both sides iff equal)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') "
            f'FROM "{schema}"."{table}" t'
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def pg_columns(url: str, schema: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
            "datetime_precision, is_nullable, udt_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()


def pg_primary_key(url: str, schema: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            (schema, table),
        ).fetchall()
    return [r[0] for r in rows]


def assert_same_database(source_url: str, target_url: str, schema: str = "public", target_schema: str | None = None):
    """Every table: same columns and types, same primary key, same rows."""
    target_schema = target_schema or schema
    tables = pg_tables(source_url, schema)
    assert tables, "source has no tables"
    assert pg_tables(target_url, target_schema) == tables
    for table in tables:
        assert pg_columns(source_url, schema, table) == pg_columns(target_url, target_schema, table), table
        assert pg_primary_key(source_url, schema, table) == pg_primary_key(target_url, target_schema, table), table
        assert pg_table_digest(source_url, schema, table) == pg_table_digest(target_url, target_schema, table), table


def cli_env(ray_tmp: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs in: no Ray address (it starts a local Ray, in `ray_tmp` if given)."""
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env.pop("RAY_ADDRESS", None)
    if ray_tmp is not None:
        env["RAY_TMPDIR"] = str(ray_tmp)
    env.update(extra)
    return env


class CliRun:
    """`python -m ray_replicator ARGS` running in a subprocess, with a local Ray of its own in `ray_tmp`."""

    def __init__(self, args: list[str], ray_tmp: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ray_replicator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(ray_tmp, **(env or {})),
            cwd=ROOT,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 180.0, every: float = 0.05) -> Any:
        """Wait until `predicate` returns something true while the CLI still runs; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate()
            if found:
                return found
            assert self.running() and time.monotonic() < deadline, self.finish().stderr[-3000:]
            time.sleep(every)

    def finish(self, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Its exit code and output; killed when it has not ended within `timeout`."""
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, stdout, stderr)


def ray_processes_under(path: Path) -> list[psutil.Process]:
    """The processes of a local Ray started with RAY_TMPDIR=path (their command lines name it)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(path) in part for part in proc.info.get("cmdline") or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@contextlib.contextmanager
def password_server(database: str, *statements: str, before: tuple[str, ...] = ()) -> Iterator[PasswordPostgres]:
    """A PostgreSQL that checks passwords, with `database` created (after the `before` statements, run in the
    postgres database) and filled by `statements`; stopped at the end."""
    server = PasswordPostgres()
    try:
        server.sql(f"CREATE DATABASE {database}", *before)
        server.sql(*statements, database=database)
        yield server
    finally:
        server.close()


def password_server_fixture(
    database: str, *statements: str, before: tuple[str, ...] = (), scope: Literal["module", "session"] = "module"
) -> Any:
    """A pytest fixture (assign it to the fixture's name) serving password_server(database, *statements, before=...)
    for `scope`."""

    @pytest.fixture(scope=scope)
    def serve() -> Iterator[PasswordPostgres]:
        with password_server(database, *statements, before=before) as server:
            yield server

    return serve


def create_database(server: PasswordPostgres, name: str) -> str:
    """A new empty database `name` on a PasswordPostgres; returns its URL (with the superuser's password)."""
    server.sql(f"CREATE DATABASE {name}")
    return server.url(name)


_fresh_databases = itertools.count()


def fresh_database(server: PasswordPostgres, prefix: str = "dst") -> str:
    """A new empty database on a PasswordPostgres that no other test, of this or another pytest process, uses
    (named <prefix>_<pid>_<n>); returns its URL (with the superuser's password)."""
    return create_database(server, f"{prefix}_{os.getpid()}_{next(_fresh_databases)}")


def fill_big(pwpg: PasswordPostgres) -> None:
    """src.big: 200,000 rows, enough that a run is still copying when a test interrupts it."""
    pwpg.sql(
        "CREATE TABLE IF NOT EXISTS big (id int PRIMARY KEY, body text)",
        "TRUNCATE big",
        "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 200000) g",
        "ANALYZE big",
        database="src",
    )


def done_ranges(url: str) -> int:
    """Ranges the ledger at `url` has done (0 while it has none yet)."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM _ray_replicator.ranges WHERE state = 'done'").fetchone()
            return int(row[0]) if row else 0
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return 0


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`python -m ray_replicator ARGS` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "ray_replicator", *args],
        capture_output=True,
        text=True,
        env=cli_env(**(env or {})),
        timeout=timeout,
        cwd=ROOT,
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
