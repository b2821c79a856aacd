"""Ranges retried into SQL Server (the stand-in) end exact for every plan the planner makes: a table without a key
survives a copy worker killed mid-range and a driver killed mid-range followed by --resume, from PostgreSQL and
from SQL Server; a GUID-keyed table from PostgreSQL survives a copy worker killed mid-range.

A retried range is cleared on SQL Server by deleting the rows its predicate selects there. The planner used to
cut a PostgreSQL heap into ctid ranges, which SQL Server cannot select again: every retry and every --resume failed
with "physical range … unsupported". And it cut a uuid key in PostgreSQL's order, which SQL Server's
uniqueidentifier order does not follow: a retry deleted other ranges' rows. Such tables now go into SQL Server
as one range, cleared by emptying the table."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Column, Key, LogicalType, Table
from ray_replicator.engines.base import KeyRange
from ray_replicator.engines.mssql import MssqlTarget
from tests.engines.mssql.servers import Server, standin
from tests.faults.test_faults import wait_for
from tests.helpers import ROOT, cli_env, ray_processes_under, run_settings

ROWS = 150_000
HEAP_QUERY = "SELECT a, b FROM {s}heap ORDER BY a, b"


@pytest.fixture(scope="module")
def pg_heap(pg_base_url: str) -> str:
    """heap(a, b): 150,000 rows with every row there twice or more, no key, no index."""
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "heap_retry_src")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE heap (a int, b text)")
        conn.execute(
            f"INSERT INTO heap SELECT g % 5000, repeat(md5((g % 7000)::text), 3) FROM generate_series(1, {ROWS}) g"
        )
        conn.execute("ANALYZE heap")
    return url


@pytest.fixture(scope="module")
def ms_heap(ray_local: None, pg_heap: str) -> Iterator[Server]:
    """The same heap as dbo.heap in a stand-in, to be the source of SQL Server → SQL Server runs."""
    with standin() as server:
        loaded = replicate(run_settings(pg_heap, server.url(), schema_map={"public": "dbo"}))
        assert loaded.status == "ok", loaded.errors
        yield server


def one_range_at_a_time(source: str, target: Server) -> dict[str, Any]:
    """Settings copying `source` into `target`'s dbo 20,000 rows a range, one range at a time, so that a test can
    catch a range while it is copying."""
    return run_settings(source, target.url(), schema_map={"public": "dbo"}, rows_per_range=20_000, parallelism=1)


def expected_rows(pg_heap: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_heap) as conn:
        return [tuple(r) for r in conn.execute(HEAP_QUERY.format(s="")).fetchall()]


class ReplicateInThread:
    """replicate(settings) on a thread of its own, while the test kills its workers."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.report: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.report = replicate(self.settings)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def assert_ok(self, timeout: float = 240) -> None:
        """The run ended (within `timeout`) without an error and reported ok."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"replicate() still runs after {timeout:g} s"
        assert self.error is None, self.error
        assert self.report.status == "ok", self.report.errors


def source_url(kind: str, pg_heap: str, request: pytest.FixtureRequest) -> str:
    return pg_heap if kind == "postgres" else request.getfixturevalue("ms_heap").url()


def copying(server: Server) -> list[tuple[Any, ...]]:
    try:
        return server.rows("SELECT range_id FROM _ray_replicator.ranges WHERE state = N'copying'")
    except Exception:  # noqa: BLE001 - the ledger does not exist yet
        return []


def copy_workers(root: psutil.Process) -> list[psutil.Process]:
    """Ray workers running the copy task, among the processes this test started (never another session's)."""
    found = []
    for proc in root.children(recursive=True):
        try:
            if "_copy_range" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def assert_exact(server: Server, pg_heap: str) -> None:
    assert server.rows("SELECT COUNT_BIG(*) FROM dbo.heap") == [(ROWS,)]
    assert server.rows(HEAP_QUERY.format(s="dbo.")) == expected_rows(pg_heap)
    kinds = server.rows("SELECT DISTINCT kind FROM _ray_replicator.ranges WHERE table_name = N'heap'")
    assert kinds == [("full",)], "a keyless table goes into SQL Server as one range"
    assert server.rows("SELECT DISTINCT state FROM _ray_replicator.runs") == [("done",)]


@pytest.mark.parametrize("kind", ["postgres", "mssql"])
def test_copy_worker_killed_mid_heap_range(
    ray_local: None, pg_heap: str, ms_target: Server, kind: str, request: pytest.FixtureRequest
) -> None:
    run = ReplicateInThread(one_range_at_a_time(source_url(kind, pg_heap, request), ms_target))
    range_id = wait_for(lambda: copying(ms_target))[0][0]
    killed = wait_for(lambda: copy_workers(psutil.Process()))
    for proc in killed:
        os.kill(proc.pid, signal.SIGKILL)
    run.assert_ok()
    assert_exact(ms_target, pg_heap)
    print(f"{kind} → SQL Server: killed copy worker {[p.pid for p in killed]} in {range_id}; run ok, rows exact")


@pytest.mark.parametrize("kind", ["postgres", "mssql"])
def test_driver_killed_mid_heap_range_then_resume(
    pg_heap: str, ms_target: Server, kind: str, ray_tmp: Path, request: pytest.FixtureRequest
) -> None:
    """The copy worker and the driver die while the heap's range is being written; the range stays 'copying' (its
    rows, if any, half there) and --resume clears and copies it again."""
    env = cli_env(ray_tmp)
    config = ray_tmp / "job.toml"
    config.write_text(
        f"rows_per_range = 20000\nparallelism = 1\nreport_path = '{ray_tmp / 'report.json'}'\n"
        "[schema_map]\npublic = 'dbo'\n"
    )
    args = [sys.executable, "-m", "ray_replicator", "run", "--source", source_url(kind, pg_heap, request)]
    args += ["--target", ms_target.url(), "--config", str(config)]
    started: list[psutil.Process] = []
    try:
        driver = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tree = psutil.Process(driver.pid)
        wait_for(lambda: copying(ms_target))
        for proc in wait_for(lambda: copy_workers(tree)):
            proc.kill()
        started = [*tree.children(recursive=True), *ray_processes_under(ray_tmp)]
        driver.kill()
        driver.wait(30)
        for proc in started:  # the local Ray this driver started
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        assert copying(ms_target), "the heap's range was to be left half done"
        assert ms_target.rows("SELECT DISTINCT state FROM _ray_replicator.runs") == [("running",)]
        resumed = subprocess.run([*args, "--resume"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    finally:
        for proc in [*started, *ray_processes_under(ray_tmp)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    assert_exact(ms_target, pg_heap)
    print(f"{kind} → SQL Server: copy worker and driver killed mid-range; --resume exit 0, rows exact")


@pytest.fixture(scope="module")
def pg_guids(pg_base_url: str) -> str:
    """guids(id uuid primary key, n): 150,000 rows; PostgreSQL orders uuids by their bytes, SQL Server by bytes
    10-15 first."""
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "guid_retry_src")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE guids (id uuid PRIMARY KEY, n int NOT NULL)")
        conn.execute(f"INSERT INTO guids SELECT md5(g::text)::uuid, g FROM generate_series(1, {ROWS}) g")
        conn.execute("ANALYZE guids")
    return url


def guid_ranges(server: Server) -> dict[str, int]:
    try:
        rows = server.rows("SELECT state, COUNT(*) FROM _ray_replicator.ranges GROUP BY state")
    except Exception:  # noqa: BLE001 - the ledger does not exist yet
        return {}
    return {str(state): int(n) for state, n in rows}


def test_copy_worker_killed_mid_guid_range(ray_local: None, pg_guids: str, ms_target: Server) -> None:
    """Killed once other ranges are done (when the plan has several): a retry that cleared by SQL Server's order
    would take their rows with it."""
    run = ReplicateInThread(one_range_at_a_time(pg_guids, ms_target))

    def ripe() -> bool:
        states = guid_ranges(ms_target)
        return states.get("copying", 0) == 1 and (states.get("done", 0) >= 2 or sum(states.values()) == 1)

    wait_for(ripe)
    for proc in wait_for(lambda: copy_workers(psutil.Process())):
        os.kill(proc.pid, signal.SIGKILL)
    run.assert_ok()
    with psycopg.connect(pg_guids) as conn:
        expected = [tuple(r) for r in conn.execute("SELECT id, n FROM guids ORDER BY n").fetchall()]
    assert ms_target.rows("SELECT id, n FROM dbo.guids ORDER BY n") == expected
    assert ms_target.rows("SELECT DISTINCT kind FROM _ray_replicator.ranges") == [("full",)]


def test_a_key_range_is_selected_in_the_targets_own_types(ms_target: Server) -> None:
    """A PostgreSQL catalog names its key types uuid, timestamp with time zone, boolean: a range cleared or
    counted on SQL Server casts its bounds to the types the target declares (datetimeoffset(6) here)."""
    ms_target.run(
        "CREATE TABLE dbo.ev (at datetimeoffset(6) NOT NULL, ok bit NOT NULL, v int NULL)",
        "INSERT INTO dbo.ev (at, ok, v) VALUES ('2020-01-01 00:00:00 +00:00', 1, 1), "
        "('2020-01-01 05:00:00 +02:00', 0, 2), ('2020-01-02 00:00:00 +00:00', 1, 3)",
    )
    table = Table(
        schema="dbo",
        name="ev",
        columns=[
            Column("at", "timestamp with time zone", LogicalType("timestamptz", scale=6), nullable=False),
            Column("ok", "boolean", LogicalType("bool"), nullable=False),
            Column("v", "integer", LogicalType("int32")),
        ],
        primary_key=Key("ev_pkey", ("at",), primary=True),
    )
    day = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    rng = KeyRange("dbo", "ev", 0, "key", ("at",), (day + dt.timedelta(hours=1),), (day + dt.timedelta(days=1),))
    with MssqlTarget(ms_target.url()) as target:
        clear = target._clear_sql(table, rng)
        assert "AS datetimeoffset(6)" in clear and "timestamp with time zone" not in clear
        assert target.count_range(table, rng) == 1, "only 03:00 UTC lies in [01:00, next day)"
        flags = KeyRange("dbo", "ev", 1, "key", ("ok",), (True,), None)
        assert "boolean" not in target._clear_sql(table, flags) and target.count_range(table, flags) == 2
