"""The byte budget: readers wait (or spill) when the writer is slow, order is kept, memory stays under the cap."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import ray

from ray_replicator import budget as budget_mod
from ray_replicator.budget import MB, BudgetConfig, BudgetedStream, budget_stats, node_budget
from ray_replicator.catalog import Table
from ray_replicator.engines.base import EngineError, KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget


def batches(n: int, rows: int = 1000, width: int = 1000) -> Iterator[pa.RecordBatch]:
    """n batches of about rows*width bytes each, numbered so order can be checked."""
    for i in range(n):
        yield pa.record_batch(
            [pa.array([i] * rows, pa.int64()), pa.array(["x" * width] * rows)], names=["batch", "payload"]
        )


def drain_slowly(stream: BudgetedStream[pa.RecordBatch], pause: float) -> list[int]:
    seen = []
    for b in stream:
        seen.append(b.column(0)[0].as_py())
        time.sleep(pause)
    return seen


def test_reader_waits_under_the_task_cap_when_writer_is_slow() -> None:
    one = next(batches(1)).nbytes
    config = BudgetConfig(task_cap=3 * one, node_cap=1 << 40)
    stream = BudgetedStream(batches(12), lambda b: int(b.nbytes), one, config, "t#0")
    assert drain_slowly(stream, 0.02) == list(range(12))
    assert one <= stream.peak_bytes <= 3 * one
    assert stream.spilled_bytes == 0


def test_spills_in_order_and_cleans_up(tmp_path: Path) -> None:
    one = next(batches(1)).nbytes
    config = BudgetConfig(task_cap=2 * one, node_cap=1 << 40, spill_dir=str(tmp_path), spill_cap=100 * one)
    stream = BudgetedStream(batches(15), lambda b: int(b.nbytes), one, config, "t#1")
    time.sleep(0.3)  # let the reader run ahead of a writer that has not started
    assert drain_slowly(stream, 0.0) == list(range(15))
    assert stream.spill_files > 0 and stream.spilled_bytes > 0
    assert stream.peak_bytes <= 2 * one
    assert list(tmp_path.rglob("*")) == []


def test_raw_chunks_spill_too(tmp_path: Path) -> None:
    chunks = [bytes([i]) * 100_000 for i in range(10)]
    config = BudgetConfig(task_cap=200_000, node_cap=1 << 40, spill_dir=str(tmp_path), spill_cap=10 * MB)
    stream = BudgetedStream(iter(chunks), len, 100_000, config, "raw#0")
    time.sleep(0.2)
    assert list(stream) == chunks
    assert stream.spill_files > 0


def test_spill_cap_reached_means_waiting_not_failing(tmp_path: Path) -> None:
    one = next(batches(1)).nbytes
    config = BudgetConfig(task_cap=one, node_cap=1 << 40, spill_dir=str(tmp_path), spill_cap=2 * one)
    stream = BudgetedStream(batches(10), lambda b: int(b.nbytes), one, config, "t#2")
    time.sleep(0.3)
    assert len(list(tmp_path.rglob("*.arrow"))) <= 2
    assert drain_slowly(stream, 0.0) == list(range(10))


def test_disk_full_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, item: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(budget_mod, "_write_spill", full)
    one = next(batches(1)).nbytes
    config = BudgetConfig(task_cap=one, node_cap=1 << 40, spill_dir=str(tmp_path), spill_cap=100 * one)
    stream = BudgetedStream(batches(10), lambda b: int(b.nbytes), one, config, "public.T#3")
    time.sleep(0.2)
    with pytest.raises(EngineError, match=r"spill directory .* is full .*public\.T#3.*--resume"):
        drain_slowly(stream, 0.0)


def test_reader_stays_at_most_max_ahead_items_ahead_of_a_slow_writer() -> None:
    produced = [0]

    def source() -> Iterator[bytes]:
        for i in range(20):
            produced[0] += 1
            yield bytes([i]) * 1000

    config = BudgetConfig(task_cap=1 << 30, node_cap=1 << 40)
    stream = BudgetedStream(source(), len, 1000, config, "ahead#0", max_ahead=2)
    seen: list[int] = []
    lead: list[int] = []
    for chunk in stream:
        time.sleep(0.02)  # a slow writer: the reader has time to run as far ahead as it may
        seen.append(chunk[0])
        lead.append(produced[0] - len(seen))
    assert seen == list(range(20))
    assert max(lead) == 2, lead
    assert stream.peak_bytes <= 3 * 1000


def test_max_ahead_does_not_make_a_spilling_reader_spill(tmp_path: Path) -> None:
    """With a spill directory the reader may use its whole cap in memory before it spills, max_ahead or not."""
    config = BudgetConfig(task_cap=1 << 30, node_cap=1 << 40, spill_dir=str(tmp_path), spill_cap=1 << 30)
    stream = BudgetedStream(iter([bytes([i]) * 1000 for i in range(10)]), len, 1000, config, "ahead#1", max_ahead=1)
    time.sleep(0.3)  # let the reader run ahead of a writer that has not started
    assert [c[0] for c in stream] == list(range(10))
    assert stream.spill_files == 0


def test_close_stops_the_reader_early() -> None:
    produced = []

    def source() -> Iterator[pa.RecordBatch]:
        for b in batches(1000):
            produced.append(1)
            yield b

    one = next(batches(1)).nbytes
    stream = BudgetedStream(source(), lambda b: int(b.nbytes), one, BudgetConfig(2 * one, 1 << 40), "t#4")
    next(stream)
    stream.close()
    assert len(produced) < 10


def test_node_actor_caps_all_tasks_of_a_node(ray_local: None) -> None:
    """Two streams on one node share the node cap; a dead holder's bytes are reclaimed."""

    @ray.remote
    def run_two(cap: int, one: int) -> tuple[int, int]:
        config = BudgetConfig(task_cap=10 * one, node_cap=cap)
        node = node_budget(config)
        a = BudgetedStream(batches(8), lambda b: int(b.nbytes), one, config, "a#0", node)
        b = BudgetedStream(batches(8), lambda b: int(b.nbytes), one, config, "b#0", node)
        time.sleep(0.5)
        stats = ray.get(node.stats.remote())
        with ThreadPoolExecutor(2) as pool:  # two writers, like two copy tasks on the node
            got = [n for seen in pool.map(lambda s: drain_slowly(s, 0.01), [a, b]) for n in seen]
        return stats["used"], len(got)

    one = next(batches(1)).nbytes
    used, count = ray.get(run_two.remote(3 * one, one))
    assert count == 16
    assert used <= 3 * one + 1000  # the true-up may pass the estimate by a few bytes
    stats = budget_stats()
    assert stats and all(s["used"] == 0 for s in stats)


class CountingNode:
    """The node actor handle, counting the calls a stream makes per item (reserve and adjust)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.actor, name)
        owner = self

        class Method:
            def remote(self, *args: Any) -> Any:
                if name in ("reserve", "adjust"):
                    owner.calls += 1
                return method.remote(*args)

        return Method()


def test_node_grants_cut_actor_calls_and_keep_the_node_cap(ray_local: None) -> None:
    """Raw chunks come out a little larger than their estimate, so each one trued up and gave back bytes at the
    node actor; reserving a grant of several chunks at a time keeps that local, under the same node cap."""

    @ray.remote
    def run(grant: int) -> tuple[list[int], int, int]:
        config = BudgetConfig(task_cap=1 << 20, node_cap=20_000)
        node = CountingNode(node_budget(config))
        chunks = iter([bytes([i]) * 1100 for i in range(32)])
        stream = BudgetedStream(chunks, len, 1000, config, "g#0", node, max_ahead=2, node_grant=grant)
        seen = []
        peak = 0
        for chunk in stream:
            time.sleep(0.005)
            seen.append(chunk[0])
            peak = max(peak, ray.get(node.actor.stats.remote())["used"])
        return seen, node.calls, peak

    seen, per_item, _ = ray.get(run.remote(0))
    assert seen == list(range(32)) and per_item >= 32
    seen, granted, peak = ray.get(run.remote(8000))
    assert seen == list(range(32))
    assert granted * 4 <= per_item, (granted, per_item)
    assert peak <= 20_000
    stats = budget_stats()
    assert stats and all(s["used"] == 0 for s in stats)


def test_postgres_reader_honours_batch_bytes_with_multi_mb_values(make_database: Callable[[str], str]) -> None:
    url = make_database("bigvals")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO big SELECT g, repeat(md5(g::text), 100000) FROM generate_series(1, 24) g")  # 3.2 MB
    with PostgresSource(url) as src:
        table: Table = src.catalog(["public.big"], []).tables[0]
        sizes = [b.nbytes for b in src.read_range(table, KeyRange("public", "big", 0, "full"), 65_536, 8 * MB)]
    assert sum(sizes) > 70 * MB
    assert max(sizes) <= 8 * MB + 4 * MB, sizes  # the hint is passed at most by one value


_RAW_WORKER = """
import json, sys
from ray_replicator.budget import BudgetConfig
from ray_replicator.copy import CopyItem, copy_range_local
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource

source, target = sys.argv[1], sys.argv[2]
with PostgresSource(source) as src:
    table = src.catalog(["public.t"], []).tables[0]
rng = KeyRange("public", "t", 0, "full")
budget = BudgetConfig(task_cap=8 << 20, node_cap=64 << 20)
item = CopyItem(source, target, table, table, rng, 1000, 1 << 20, "raw", WriteOptions(run_id="noarrow"), budget)
done = copy_range_local(item)
print(json.dumps({"rows": done.rows, "arrow": "pyarrow" in sys.modules}))
"""


def test_raw_copy_worker_never_loads_arrow(make_database: Callable[[str], str]) -> None:
    """Arrow and numpy are ~60 MB of a worker's RSS: a PostgreSQL→PostgreSQL (raw COPY) worker must not pay it."""
    source, target = make_database("noarrow_src"), make_database("noarrow_dst")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text, at timestamptz, n numeric(12, 2))")
        # ~5 MB: several raw chunks, each written in several pieces
        conn.execute("INSERT INTO t SELECT g, md5(g::text), now(), g / 7.0 FROM generate_series(1, 60000) g")
    with PostgresSource(source) as src:
        catalog = src.catalog(["public.t"], [])
    with PostgresTarget(target) as dst:
        dst.prepare(catalog, "postgres", WriteOptions(run_id="noarrow"))
    done = subprocess.run(
        [sys.executable, "-c", _RAW_WORKER, source, target], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rows": 60000, "arrow": False}
    with psycopg.connect(target) as conn:
        copied = conn.execute("SELECT count(*), sum(hashtext(t::text)) FROM t").fetchone()
    with psycopg.connect(source) as conn:
        original = conn.execute("SELECT count(*), sum(hashtext(t::text)) FROM t").fetchone()
    assert copied == original
