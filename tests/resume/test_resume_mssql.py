"""Resume into a SQL Server target (the stand-in): the plan is stored in the target's ledger, a resumed run copies
only the ranges that were not done, a half-written range is cleared before it is copied again, and the result is
exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.engines.base import UsageError
from tests.engines.mssql.servers import Server
from tests.helpers import pg_execute
from tests.resume.test_resume import settings_for

SETUP = [
    "CREATE TABLE t_int (id int PRIMARY KEY, v text, n numeric(12,3), d date)",
    "INSERT INTO t_int SELECT g, md5(g::text), g / 7.0, date '2000-01-01' + g FROM generate_series(-3000, 9000) g",
    "CREATE TABLE t_text (k varchar(40) PRIMARY KEY, v int)",
    "INSERT INTO t_text SELECT 'k' || md5(g::text), g FROM generate_series(1, 6000) g",
    "CREATE TABLE t_heap (a int, b text)",
    "INSERT INTO t_heap SELECT g % 10, 'x' FROM generate_series(1, 3000) g",
    "ANALYZE",
]
QUERIES = {
    "t_int": "SELECT id, v, n, d FROM {s}t_int ORDER BY id",
    "t_text": "SELECT k, v FROM {s}t_text ORDER BY v",
    "t_heap": "SELECT a, b FROM {s}t_heap ORDER BY a, b",
}


@pytest.fixture
def pg_source(make_database: Callable[[str], str]) -> str:
    return pg_execute(make_database("resume_ms_src"), *SETUP)


def pg_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(QUERIES[table].format(s="")).fetchall()]


def ms_rows(server: Server, table: str, schema: str = "dbo") -> list[tuple[Any, ...]]:
    return server.rows(QUERIES[table].format(s=f"{schema}."))


def ledger_times(server: Server, run_id: str, except_ids: list[str]) -> dict[str, Any]:
    rows = server.rows(f"SELECT range_id, updated_at FROM _ray_replicator.ranges WHERE run_id = N'{run_id}'")
    return {rid: at for rid, at in rows if rid not in except_ids}


def test_resume_into_sql_server_copies_only_unfinished_ranges(
    ray_local: None, pg_source: str, ms_target: Server
) -> None:
    target = ms_target.url(writer="insert")
    first = replicate(settings_for(pg_source, target, schema_map={"public": "dbo"}))
    assert first.status == "ok", first.errors
    stored = ms_target.rows(f"SELECT COUNT(*) FROM _ray_replicator.plans WHERE run_id = N'{first.run_id}'")
    assert stored[0][0] >= 1

    # The run died while t_int was being copied: some of its ranges done, one half written, five never begun.
    plan = json.loads(
        "".join(
            r[0]
            for r in ms_target.rows(
                f"SELECT plan_text FROM _ray_replicator.plans WHERE run_id = N'{first.run_id}' ORDER BY part"
            )
        )
    )
    bounds = {
        r["index"]: (r["lower"] and int(r["lower"][0][1]), r["upper"] and int(r["upper"][0][1]))
        for r in plan["ranges"]
        if r["table"] == "t_int"
    }
    assert len(bounds) >= 10
    half, never = 3, [5, 6, 7, 8, 9]
    lo, hi = bounds[half]
    gone = [f"DELETE FROM dbo.t_int WHERE id >= {bounds[i][0]} AND id < {bounds[i][1]}" for i in never]
    ids = ", ".join(f"N'public.t_int#{i}'" for i in never)
    ms_target.run(
        *gone,
        f"DELETE FROM dbo.t_int WHERE id >= {lo} AND id < {hi} AND id % 2 = 0",
        f"UPDATE _ray_replicator.ranges SET state = N'copying' WHERE run_id = N'{first.run_id}' "
        f"AND range_id = N'public.t_int#{half}'",
        f"UPDATE _ray_replicator.ranges SET state = N'planned' WHERE run_id = N'{first.run_id}' "
        f"AND range_id IN ({ids})",
        f"UPDATE _ray_replicator.runs SET state = N'failed' WHERE run_id = N'{first.run_id}'",
    )
    redone = [f"public.t_int#{i}" for i in [half, *never]]
    untouched = ledger_times(ms_target, first.run_id, redone)
    assert len(pg_rows(pg_source, "t_int")) > len(ms_rows(ms_target, "t_int"))

    again = replicate(settings_for(pg_source, target, schema_map={"public": "dbo"}, resume=True))
    assert again.status == "ok", again.errors
    assert again.run_id == first.run_id
    assert all(t.verified == "yes (checksums)" for t in again.tables)
    for table in QUERIES:
        assert pg_rows(pg_source, table) == ms_rows(ms_target, table), table
    assert ledger_times(ms_target, first.run_id, redone) == untouched, "ranges done before were copied again"
    states = ms_target.rows(f"SELECT DISTINCT state FROM _ray_replicator.ranges WHERE run_id = N'{first.run_id}'")
    assert states == [("done",)]
    assert ms_target.rows(f"SELECT state FROM _ray_replicator.runs WHERE run_id = N'{first.run_id}'") == [("done",)]

    with pytest.raises(UsageError, match="nothing to resume"):
        replicate(settings_for(pg_source, target, schema_map={"public": "dbo"}, resume=True))


def test_resume_into_sql_server_refuses_changed_settings(ray_local: None, pg_source: str, ms_target: Server) -> None:
    target = ms_target.url(writer="insert")
    first = replicate(settings_for(pg_source, target, verify="none"))
    ms_target.run(f"UPDATE _ray_replicator.runs SET state = N'failed' WHERE run_id = N'{first.run_id}'")
    with pytest.raises(UsageError, match=r"rows_per_range: 1000 -> 2000"):
        replicate(settings_for(pg_source, target, resume=True, rows_per_range=2000))
    done = replicate(settings_for(pg_source, target, resume=True, verify="counts"))
    assert done.status == "ok" and done.run_id == first.run_id
    for table in QUERIES:
        assert pg_rows(pg_source, table) == ms_rows(ms_target, table, "public"), table
