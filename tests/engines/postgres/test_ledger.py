"""The target's ledger (schema _ray_replicator) and the reader's batch caps."""

from __future__ import annotations

from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget

from ..conftest import Db


def test_ledger_records_runs_and_ranges(dst_db: Db, target: PostgresTarget) -> None:
    ranges = [KeyRange("s", "t", i, "key", ("id",), lower=(i,), upper=(i + 1,)) for i in range(3)]
    target.ledger.init("run-a", "plan1", "schema1", ranges)
    target.ledger.init("run-a", "plan1", "schema1", ranges[:1])  # idempotent: nothing is reset
    target.ledger.mark("run-a", ["s.t#0", "s.t#1"], "copying", node="n1")
    target.ledger.mark("run-a", ["s.t#0"], "done", rows=10, bytes=100, seconds=0.5)
    target.ledger.mark("run-a", ["s.t#2"], "failed", error="boom")
    state = target.ledger.ranges("run-a")
    assert state["s.t#0"] == {"state": "done", "rows": 10, "bytes": 100, "seconds": 0.5, "node": "n1", "error": None}
    assert state["s.t#1"]["state"] == "copying"
    assert state["s.t#2"]["error"] == "boom"
    target.ledger.init("run-a", "plan1", "schema1", ranges)
    assert target.ledger.ranges("run-a")["s.t#0"]["state"] == "done"
    target.ledger.claim_copying("run-a", "s.t#0", "node:1")  # done stays done
    target.ledger.claim_copying("run-a", "s.t#2", "node:2")
    assert target.ledger.ranges("run-a")["s.t#0"]["state"] == "done"
    assert target.ledger.ranges("run-a")["s.t#2"]["node"] == "node:2"
    assert target.ledger.load_plan("run-a") is None
    target.ledger.save_plan("run-a", '{"ranges": []}')
    assert target.ledger.load_plan("run-a") == '{"ranges": []}'
    assert target.ledger.load_plan("nope") is None
    target.ledger.init("run-b", "plan2", "schema1", [])
    target.ledger.finish("run-a", "ok")
    runs = target.ledger.runs()
    assert [r["run_id"] for r in runs] == ["run-b", "run-a"]
    assert runs[1]["state"] == "ok" and runs[1]["finished_at"] is not None and runs[0]["plan_hash"] == "plan2"


def test_reader_caps_batches_in_rows_and_bytes(src_db: Db, source: PostgresSource) -> None:
    src_db.run("CREATE TABLE t (id int PRIMARY KEY, v text)")
    src_db.run("INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series(1, 20000) g")
    table = source.catalog([], []).table("public", "t")
    rng = KeyRange("public", "t", 0, "full")
    by_rows = list(source.read_range(table, rng, 777, 64 << 20))
    assert max(b.num_rows for b in by_rows) == 777 and sum(b.num_rows for b in by_rows) == 20000
    by_bytes = list(source.read_range(table, rng, 1 << 20, 1 << 20))
    assert max(b.nbytes for b in by_bytes) < 3 << 20 and sum(b.num_rows for b in by_bytes) == 20000


def test_raw_chunks_are_big_and_complete(
    src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget
) -> None:
    src_db.run("CREATE TABLE t (id int PRIMARY KEY, v text)")
    src_db.run("INSERT INTO t SELECT g, repeat('y', 100) FROM generate_series(1, 50000) g")
    catalog = source.catalog([], [])
    table = catalog.table("public", "t")
    rng = KeyRange("public", "t", 0, "key", ("id",), lower=(10,), upper=None)
    chunks = list(source.read_range_raw(table, rng, 1 << 20))
    assert len(chunks) >= 4 and all(len(c) >= 1 << 20 for c in chunks[:-1])
    target.prepare(catalog, "postgres", WriteOptions())
    assert target.write_range_raw(table, rng, iter(chunks), WriteOptions(run_id="r")).rows == 49991
    # abandoning a raw reader half-way ends its COPY and thread
    reader = source.read_range_raw(table, rng, 1 << 16)
    next(reader)
    reader.close()
    assert src_db.value("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'") == 0
