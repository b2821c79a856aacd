"""worker_max_ranges: Ray replaces a copy worker after that many ranges (its max_calls), which is how native memory
a driver left behind in a long-lived worker is given back. The copy must stay exact across the replacements."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.config import load_settings
from ray_replicator.engines.base import UsageError
from tests.helpers import pg_execute


def _source(make_database: Callable[[str], str]) -> str:
    return pg_execute(
        make_database("recycle_src"),
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "INSERT INTO t SELECT g, repeat('x', g % 50) FROM generate_series(1, 8000) g",
        "ANALYZE t",
    )


def test_each_range_in_a_fresh_worker(ray_local: None, make_database: Callable[[str], str]) -> None:
    source = _source(make_database)
    target = make_database("recycle_dst")
    settings = load_settings(
        None,
        {"source": source, "target": target, "verify": "checksums", "rows_per_range": 2_000, "worker_max_ranges": 1},
    )
    report = replicate(settings)
    assert report.status == "ok", report.errors
    (table,) = report.tables
    assert table.ranges == 4 and table.rows == 8000
    workers = report.workers["peak_rss_mb"]
    assert len(workers) == 4, workers  # one process per range: each exited after its one range
    with psycopg.connect(source) as a, psycopg.connect(target) as b:
        query = "SELECT id, v FROM t ORDER BY id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_negative_worker_max_ranges_is_refused(make_database: Callable[[str], str]) -> None:
    with pytest.raises(UsageError, match="worker_max_ranges"):
        load_settings(None, {"source": "postgresql://u@127.0.0.1/db", "worker_max_ranges": -1})
