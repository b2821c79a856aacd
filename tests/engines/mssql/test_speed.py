"""Reader and writer speed against the stand-in (run: RR_MSSQL_SPEED=1 pytest -s tests/engines/mssql/test_speed.py).

Prints a markdown table and a last JSON line; asserts only that every path moved every row, so it is a
measurement, not a performance gate (the stand-in's server side dominates on a small machine).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.mssql import MssqlSource, MssqlTarget
from ray_replicator.synth import stackoverflow as so
from tests.engines.mssql.servers import Server, standin

SCALE = float(os.environ.get("RR_MSSQL_SPEED_SCALE", "0.01"))
TABLES = ["Votes", "Comments", "Posts", "Users"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RR_MSSQL_SPEED"), reason="a measurement: set RR_MSSQL_SPEED=1"),
]


@pytest.fixture(scope="module")
def so_server() -> Iterator[Server]:
    with standin(so={"scale": SCALE, "seed": 1, "tables": TABLES}) as server:
        yield server


def test_reader_and_writer_speed(so_server: Server) -> None:
    results: list[dict[str, Any]] = []
    counts = so.row_counts(SCALE)
    for reader in ("mssql-python", "pymssql"):
        with MssqlSource(so_server.url(reader=reader)) as src:
            cat = src.catalog([f"dbo.{t}" for t in TABLES], [])
            for table in cat.tables:
                started = time.perf_counter()
                rows = nbytes = 0
                for b in src.read_range(table, KeyRange("dbo", table.name, 0, "full"), 65536, 16 << 20):
                    rows += b.num_rows
                    nbytes += b.nbytes
                secs = time.perf_counter() - started
                assert rows == counts[table.name]
                results.append(
                    {"path": f"read {reader}", "table": table.name, "rows": rows, "MB": nbytes / 1e6, "s": secs}
                )
    with MssqlSource(so_server.url()) as src:
        cat = src.catalog(["dbo.Votes", "dbo.Posts"], [])
        for writer in ("bulkcopy", "bulk-insert", "insert"):
            bulk = tempfile.mkdtemp(prefix="rr_speed_")
            with standin(bulk_dir=bulk) as dst_server:
                opts = {"writer": writer, **({"bulk_dir": bulk} if writer == "bulk-insert" else {})}
                with MssqlTarget(dst_server.url(**opts)) as dst:
                    options = WriteOptions(run_id="speed")
                    dst.prepare(cat, "mssql", options)
                    ranges = [KeyRange("dbo", t.name, 0, "full") for t in cat.tables]
                    dst.ledger.init("speed", "p", "s", ranges)
                    for table, rng in zip(cat.tables, ranges, strict=True):
                        batches = list(src.read_range(table, rng, 65536, 16 << 20))
                        started = time.perf_counter()
                        wrote = dst.write_range(table, rng, iter(batches), options)
                        secs = time.perf_counter() - started
                        assert wrote.rows == counts[table.name]
                        results.append(
                            {
                                "path": f"write {writer}",
                                "table": table.name,
                                "rows": wrote.rows,
                                "MB": wrote.bytes / 1e6,
                                "s": secs,
                            }
                        )
    print("\n| path | table | rows | MB (Arrow) | s | rows/s | MB/s |\n|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['path']} | {r['table']} | {r['rows']} | {r['MB']:.1f} | {r['s']:.2f} | "
            f"{r['rows'] / r['s']:,.0f} | {r['MB'] / r['s']:.1f} |"
        )
    print(json.dumps({"scale": SCALE, "results": results}))
