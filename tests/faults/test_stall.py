"""Never hang: servers that accept a connection and then go silent, through the real CLI.

(a) Nothing ever answers: every driver's connection attempt times out after connect_timeout_s, one line naming
host and port, exit 1. (b) A source or target that stops sending or taking data mid-range (a proxy that forwards
the first bytes of each connection, then nothing): the range's watchdog cuts it after stall_timeout_s, Ray retries
it like a lost connection, and once the retries are used up the run fails with one line naming the range and the
side that stalled, marked failed in the ledger; after the proxy heals, `run --resume` finishes with equal rows.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import ray

from ray_replicator.engines.base import EngineError, KeyRange
from ray_replicator.schedule import run_bounded
from ray_replicator.stall import KV_NAMESPACE, STALL_RETRIES, StallMonitor, beat_key
from tests.engines.mssql.servers import PASSWORD as MSSQL_PASSWORD
from tests.engines.mssql.servers import Server, standin
from tests.faults.proxy import SilentProxy, SilentServer
from tests.helpers import (
    assert_one_line_error,
    cli,
    fresh_database,
    password_server_fixture,
    pg_primary_key,
    pg_table_digest,
)
from tests.pgserver import SUPERUSER_PASSWORD, PasswordPostgres

pytestmark = pytest.mark.timeout(600)
TIMEOUTS = {"RAY_REPLICATOR_CONNECT_TIMEOUT_S": "2", "RAY_REPLICATOR_STALL_TIMEOUT_S": "2"}
STALL_AFTER = 1 << 20
"""Bytes each proxied connection carries before it goes silent: more than the driver's catalog and ledger work,
far less than the table's range (~30 MB), plus the socket buffers a writer fills before it blocks."""


server = password_server_fixture(
    "stall_src",
    "CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, body text NOT NULL)",
    "INSERT INTO big SELECT g, g % 89, repeat(md5(g::text), 12) FROM generate_series(1, 70000) g",
    "ANALYZE big",
)


@pytest.fixture
def target(server: PasswordPostgres) -> str:
    return fresh_database(server, "stall_dst")


def proxied(url: str, proxy: SilentProxy) -> str:
    return url.replace(f"127.0.0.1:{proxy.upstream[1]}/", f"127.0.0.1:{proxy.port}/")


def run_args(source: str, target: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--source",
        source,
        "--target",
        target,
        "--parallelism",
        "1",
        "--report",
        str(tmp_path / "report.json"),
        *extra,
    ]


def run_states(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM _ray_replicator.runs ORDER BY started_at").fetchall()]


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    srv = SilentServer()
    yield srv
    srv.close()


@pytest.mark.parametrize(
    "side,url",
    [
        ("source", "postgresql://postgres:{pw}@127.0.0.1:{port}/stall_src"),
        ("source", "mssql://sa:{pw}@127.0.0.1:{port}/src"),
        ("source", "mssql://sa:{pw}@127.0.0.1:{port}/src?reader=pymssql"),
        ("target", "postgresql://postgres:{pw}@127.0.0.1:{port}/dst"),
        ("target", "mssql://sa:{pw}@127.0.0.1:{port}/dst"),
    ],
)
def test_connect_timeout_names_host_and_port(
    server: PasswordPostgres, silent: SilentServer, tmp_path: Path, side: str, url: str
) -> None:
    """A server that accepts and never answers: ADBC/asyncpg, mssql-python and pymssql all give up in time."""
    dead = url.format(pw=SUPERUSER_PASSWORD, port=silent.port)
    source, target = (dead, server.url("postgres")) if side == "source" else (server.url("stall_src"), dead)
    done = cli(*run_args(source, target, tmp_path), env=TIMEOUTS, timeout=180)
    line = assert_one_line_error(done, 1, f"connecting to 127.0.0.1:{silent.port} timed out after 2 s")
    assert line.endswith("check that the server runs and answers on that host and port, or raise connect_timeout_s")


@pytest.mark.parametrize(
    "env,url_option,expected",
    [
        (
            {"RAY_REPLICATOR_STALL_TIMEOUT_S": "0"},
            "",
            "config field 'stall_timeout_s' = '0': Input should be greater than 0",
        ),
        (
            {"RAY_REPLICATOR_CONNECT_TIMEOUT_S": "soon"},
            "",
            "config field 'connect_timeout_s' = 'soon': Input should be",
        ),
        ({}, "?connect_timeout=soon", "URL option connect_timeout='soon' is not a number of seconds"),
        ({}, "?connect_timeout=0", "URL option connect_timeout='0' must be more than 0 seconds"),
    ],
)
def test_bad_timeouts_are_usage_errors(
    server: PasswordPostgres, tmp_path: Path, env: dict[str, str], url_option: str, expected: str
) -> None:
    done = cli(*run_args(server.url("stall_src") + url_option, server.url("postgres"), tmp_path), env=env)
    assert_one_line_error(done, 2, expected)


@pytest.mark.parametrize("method", ["raw", "arrow"])
@pytest.mark.parametrize(
    "side,direction,culprit",
    [
        ("source", "down", "no rows from the source for 2 s (reader); check the source server"),
        ("target", "up", "the target took no rows for 2 s (writer); check the target server"),
    ],
)
def test_stalled_range_fails_in_one_line_then_resumes(
    server: PasswordPostgres, target: str, tmp_path: Path, side: str, direction: str, culprit: str, method: str
) -> None:
    source = server.url("stall_src")
    proxy = SilentProxy(server.port)
    try:
        proxy.stall(direction, STALL_AFTER)  # type: ignore[arg-type]
        via = (proxied(source, proxy), target) if side == "source" else (source, proxied(target, proxy))
        done = cli(*run_args(*via, tmp_path, "--method", method), env=TIMEOUTS, timeout=400)
        line = assert_one_line_error(done, 1, culprit, "or raise stall_timeout_s")
        assert re.fullmatch(r"error: range public\.big#\d+ stalled: .*", line), line
        # A reader's every attempt goes silent on its own connection. A writer's retries go silent earlier: they
        # wait for the range's ledger row, which the first attempt's session, cut off by the silent network but
        # alive on the server, still locks (so they stall as writers too, as they would in production).
        assert proxy.stalled_connections >= (4 if side == "source" else 1)
        assert run_states(target) == ["failed"]

        proxy.heal()
        resumed = cli(*run_args(*via, tmp_path, "--method", method, "--resume"), env=TIMEOUTS, timeout=400)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert run_states(target) == ["done"]
        assert pg_table_digest(target, "public", "big") == pg_table_digest(source, "public", "big")
        assert pg_primary_key(target, "public", "big") == ["id"]
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def posts_standin() -> Iterator[Server]:
    with standin(so={"scale": 0.005, "seed": 42, "tables": ["Posts"]}) as srv:
        yield srv


def posts(conn: object, sql: str) -> list[tuple[object, ...]]:
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_sql_server_source_stall_fails_in_one_line_then_resumes(
    server: PasswordPostgres, target: str, posts_standin: Server, tmp_path: Path, reader: str
) -> None:
    """mssql-python keeps the interpreter while it waits inside arrow_batch, so its worker cannot even run the
    watchdog: the driver kills the task once its heartbeat stops, and still names the side it waited on."""
    proxy = SilentProxy(posts_standin.port)
    try:
        proxy.stall("down", STALL_AFTER)
        source = f"mssql://sa:{MSSQL_PASSWORD}@127.0.0.1:{proxy.port}/master?reader={reader}"
        args = run_args(source, target, tmp_path, "--tables", "Posts")
        done = cli(*args, env=TIMEOUTS, timeout=500)
        line = assert_one_line_error(done, 1, "no rows from the source", "(reader); check the source server")
        assert MSSQL_PASSWORD not in done.stdout + done.stderr
        assert re.fullmatch(r"error: range dbo\.Posts#\d+ stalled: .*, or raise stall_timeout_s", line), line
        assert run_states(target) == ["failed"]

        proxy.heal()
        resumed = cli(*args, "--resume", env=TIMEOUTS, timeout=500)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert run_states(target) == ["done"]
        query = 'SELECT "Id", "Score", "Title", "Body" FROM {} ORDER BY "Id"'
        with posts_standin.connect() as ms, psycopg.connect(target) as pg:
            expected = posts(ms, query.format("dbo.Posts").replace('"', ""))
            assert expected and pg.execute(query.format('dbo."Posts"')).fetchall() == expected
    finally:
        proxy.close()


@ray.remote(max_retries=0)
def _wedged_task(run_id: str, range_id: str, reported: str) -> None:
    """A copy task stuck in a call that ignores its cut sockets: its watchdog reported the stall (or, holding the
    interpreter, could not even do that: its last heartbeat stays as it was), and it never returns."""
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(beat_key(run_id, range_id), reported.encode(), namespace=KV_NAMESPACE)
    while True:
        time.sleep(60)


LINE = (
    "range s.t#0 stalled: no rows from the source for 1 s (reader); check the source server, or raise stall_timeout_s"
)


@pytest.mark.parametrize(
    "reported,expected",
    [
        ("1:9|reader|" + LINE, LINE),  # the watchdog saw the stall, cut the sockets, and the call ignored them
        (  # the worker fell silent while its range waited on the target
            "1:3|writer|",
            "range s.t#0 stalled: the target took no rows and no sign of life from its worker for 2 s (writer); "
            "check the target server, or raise stall_timeout_s",
        ),
    ],
)
def test_driver_kills_a_wedged_task_then_fails_in_one_line(ray_local: None, reported: str, expected: str) -> None:
    """The driver never waits for ever: a task that stays stalled past the margin (or whose heartbeat stops) is
    force-cancelled and started again, STALL_RETRIES times, then the run fails with the stall's line."""
    rng = KeyRange(schema="s", table="t", index=0, kind="full")
    run_id = f"wedged-{os.getpid()}-{len(reported)}"
    submitted: list[ray.ObjectRef] = []

    def submit(item: KeyRange) -> ray.ObjectRef:
        submitted.append(_wedged_task.remote(run_id, item.range_id, reported))
        return submitted[-1]

    with pytest.raises(EngineError) as failed:
        run_bounded([rng], submit, 1, lambda *_: None, monitor=StallMonitor(run_id, 1.0, margin=1.0))
    assert str(failed.value) == expected
    assert len(submitted) == 1 + STALL_RETRIES
    for ref in submitted:
        with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
            ray.get(ref, timeout=60)


@ray.remote(max_retries=0)
def _quiet_task(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def test_driver_never_kills_a_task_without_heartbeat(ray_local: None) -> None:
    """No heartbeat means not running (queued behind other tasks, or between Ray's retries): it is waited for."""
    rng = KeyRange(schema="s", table="quiet", index=0, kind="full")
    finished: list[str] = []
    run_bounded(
        [rng],
        lambda _item: _quiet_task.remote(5.0),
        1,
        lambda _item, result: finished.append(result),
        monitor=StallMonitor(f"quiet-{os.getpid()}", 1.0, margin=1.0),
    )
    assert finished == ["done"]


def test_postgres_connect_timeout_reaches_libpq_and_asyncpg_alike() -> None:
    """libpq (ADBC, psycopg) reads connect_timeout from the URL; asyncpg would send it to the server as a setting,
    so it gets the timeout as an argument instead. Every other option stays exactly as written."""
    from ray_replicator.engines.postgres import PostgresSource

    src = PostgresSource("postgresql://u:p@h/db?options=-c%20search_path%3Dx&connect_timeout=7&host=%2Ftmp%2Fs")
    assert src.connect_timeout == 7.0
    assert src.url == "postgresql://u:p@h/db?options=-c%20search_path%3Dx&host=%2Ftmp%2Fs&connect_timeout=7"
    assert src._asyncpg_url == "postgresql://u:p@h/db?options=-c%20search_path%3Dx&host=%2Ftmp%2Fs"
