"""How fast do real clients drain the SQL Server stand-in? (It must never be the bottleneck.)

Serves a table of (int, int, int, datetime) and one of ~1 KB nvarchar values from a stand-in in its own
process (so the clients' GIL cannot slow the server), loaded through Engine.load_arrow, and drains both
with mssql-python and pymssql. Prints a markdown table, then one JSON line.

    python benchmarks/standin_throughput.py [--rows 1000000] [--text-rows 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mssql_standin.results import ColumnSpec, Done, ResultSet, SqlServerError  # noqa: E402

USER, PASSWORD = "bench", "Bench!Passw0rd"
INT_COLUMNS = [
    ColumnSpec("id", "int", nullable=False),
    ColumnSpec("a", "int"),
    ColumnSpec("b", "int"),
    ColumnSpec("at", "datetime"),
]
TEXT_COLUMNS = [ColumnSpec("id", "int", nullable=False), ColumnSpec("body", "nvarchar", length=-1)]


def int_table(n: int) -> pa.Table:
    rng = np.random.default_rng(7)
    base = np.datetime64("2010-01-01T00:00:00", "us").astype(np.int64)
    at = base + rng.integers(0, 10 * 365 * 86_400_000, n) * 10_000 // 10  # whole milliseconds
    at = at - at % 10_000  # 10 ms steps sit exactly on datetime's 1/300 s grid
    return pa.table(
        {
            "id": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "a": pa.array(rng.integers(-(2**31), 2**31 - 1, n, dtype=np.int32)),
            "b": pa.array(rng.integers(0, 1000, n, dtype=np.int32), mask=rng.random(n) < 0.1),
            "at": pa.array(at, pa.timestamp("us")),
        }
    )


def text_table(n: int) -> pa.Table:
    rng = np.random.default_rng(11)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", dtype=np.uint8)
    pool = letters[rng.integers(0, len(letters), 4_000_000)].tobytes().decode("ascii")
    starts = rng.integers(0, len(pool) - 1200, n)
    lengths = rng.integers(900, 1100, n)
    bodies = [pool[s : s + length] for s, length in zip(starts.tolist(), lengths.tolist(), strict=True)]
    return pa.table({"id": pa.array(np.arange(1, n + 1, dtype=np.int32)), "body": pa.array(bodies, pa.string())})


class StaticSession:
    """Used only when mssql_standin.engine is absent: answers `select * from t` from memory."""

    def __init__(self, tables: dict[str, tuple[list[ColumnSpec], pa.Table]]):
        self.tables = tables
        self.database = "bench"
        self.trancount = 0

    def execute(self, sql: str, params: Any = None) -> Iterator[Any]:
        words = sql.strip().rstrip(";").split()
        if len(words) == 4 and [w.lower() for w in words[:3]] == ["select", "*", "from"]:
            name = words[3].lower()
            if name not in self.tables:
                raise SqlServerError(208, f"Invalid object name '{words[3]}'.")
            cols, table = self.tables[name]
            yield ResultSet(cols, iter(table.to_batches(max_chunksize=65_536)))
            return
        yield Done()

    def bulk_insert(self, request: Any, batch: Any) -> int:
        raise SqlServerError(4804, "bulk load is not part of this benchmark")

    def begin(self) -> bytes:
        return b"\x01" + bytes(7)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class StaticEngine:
    def __init__(self) -> None:
        self.tables: dict[str, tuple[list[ColumnSpec], pa.Table]] = {}

    def session(self) -> StaticSession:
        return StaticSession(self.tables)

    def load_arrow(self, table: str, columns: list[ColumnSpec], data: pa.Table, **_: Any) -> int:
        self.tables[table.lower()] = (columns, data)
        return data.num_rows


def _serve(conn: Any, rows: int, text_rows: int, engine_kind: str, packet_size: int) -> None:
    from mssql_standin import serve

    engine: Any
    if engine_kind == "real":
        from mssql_standin.engine import Engine

        engine = Engine(database="bench")
    else:
        engine = StaticEngine()
    t0 = time.perf_counter()
    engine.load_arrow("ints", INT_COLUMNS, int_table(rows), primary_key=["id"])
    engine.load_arrow("texts", TEXT_COLUMNS, text_table(text_rows), primary_key=["id"])
    load_s = time.perf_counter() - t0
    with serve("bench", user=USER, password=PASSWORD, engine=engine, packet_size=packet_size) as srv:
        conn.send((srv.host, srv.port, load_s))
        conn.recv()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mssql_python_connect(host: str, port: int) -> Any:
    import mssql_python

    return mssql_python.connect(
        f"Server=tcp:{host},{port};Database=bench;UID={USER};PWD={PASSWORD};Encrypt=no", autocommit=True
    )


def _fetch_all(conn: Any, table: str, text_length: Callable[[Any], int]) -> tuple[int, int]:
    """Fetch every row of the table in 50,000-row chunks and close; returns (rows, characters of texts.body)."""
    cur = conn.cursor()
    cur.execute(f"select * from {table}")
    n = nbytes = 0
    while rows := cur.fetchmany(50_000):
        n += len(rows)
        if table == "texts":
            nbytes += sum(text_length(r[1]) for r in rows)
    conn.close()
    return n, nbytes


def drain_mssql_python_arrow(host: str, port: int, table: str) -> tuple[int, int]:
    conn = _mssql_python_connect(host, port)
    cur = conn.cursor()
    cur.execute(f"select * from {table}")
    t = cur.arrow()
    conn.close()
    nbytes = 0
    if "body" in t.column_names:
        nbytes = int(sum(len(b.buffers()[2] or b"") for b in t.column("body").chunks))
    return t.num_rows, nbytes


def drain_mssql_python_rows(host: str, port: int, table: str) -> tuple[int, int]:
    return _fetch_all(_mssql_python_connect(host, port), table, len)


def drain_pymssql(host: str, port: int, table: str) -> tuple[int, int]:
    import pymssql

    conn = pymssql.connect(server=host, port=str(port), user=USER, password=PASSWORD, database="bench")
    return _fetch_all(conn, table, lambda body: len(str(body)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--text-rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is kept")
    ap.add_argument("--engine", choices=["auto", "real", "static"], default="auto")
    ap.add_argument("--packet-size", type=int, default=4096, help="for clients that let the server decide")
    args = ap.parse_args()
    kind = args.engine
    if kind == "auto":
        try:
            import mssql_standin.engine  # noqa: F401

            kind = "real"
        except ImportError:
            kind = "static"
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, args.rows, args.text_rows, kind, args.packet_size), daemon=True)
    proc.start()
    host, port, load_s = parent.recv()
    assert proc.pid is not None
    results: dict[str, tuple[float, int, int, float, float]] = {}
    drains: list[tuple[str, str, Callable[[str, int, str], tuple[int, int]]]] = [
        ("mssql-python arrow()", "ints", drain_mssql_python_arrow),
        ("mssql-python fetchmany", "ints", drain_mssql_python_rows),
        ("pymssql fetchmany", "ints", drain_pymssql),
        ("mssql-python arrow()", "texts", drain_mssql_python_arrow),
        ("pymssql fetchmany", "texts", drain_pymssql),
    ]
    try:
        for label, table, fn in drains:
            best: tuple[float, int, int, float, float] | None = None
            for _ in range(args.repeat):
                cpu0 = _cpu_seconds(proc.pid)
                client0 = time.process_time()
                t0 = time.perf_counter()
                n, nbytes = fn(host, port, table)
                secs = time.perf_counter() - t0
                cpu = _cpu_seconds(proc.pid) - cpu0
                client = time.process_time() - client0
                if best is None or secs < best[0]:
                    best = (secs, n, nbytes, cpu, client)
            assert best is not None
            results[f"{label}|{table}"] = best
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()

    load1 = os.getloadavg()[0]
    print(f"stand-in engine: {kind}; load_arrow took {load_s:.1f} s; best of {args.repeat}; load average {load1:.1f}\n")
    print("| client | table | rows | seconds | rows/s | text MB/s | client CPU s | stand-in CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, (secs, n, nbytes, cpu, client) in results.items():
        label, table = key.split("|")
        mb = f"{nbytes / 1e6 / secs:.0f}" if nbytes else ""
        print(f"| {label} | {table} | {n:,} | {secs:.2f} | {n / secs:,.0f} | {mb} | {client:.2f} | {cpu:.2f} |")
    print("\nA stand-in CPU time far below the wall time means the client, not the stand-in, set the pace.")

    def rate(key: str) -> float:
        secs, n, _b, _c, _cl = results[key]
        return round(n / secs)

    summary = {
        "engine": kind,
        "mssql_python_int_rows_per_s": rate("mssql-python arrow()|ints"),
        "mssql_python_fetch_int_rows_per_s": rate("mssql-python fetchmany|ints"),
        "pymssql_int_rows_per_s": rate("pymssql fetchmany|ints"),
        "pymssql_text_mb_per_s": round(
            results["pymssql fetchmany|texts"][2] / 1e6 / results["pymssql fetchmany|texts"][0], 1
        ),
        "mssql_python_text_mb_per_s": round(
            results["mssql-python arrow()|texts"][2] / 1e6 / results["mssql-python arrow()|texts"][0], 1
        ),
        "standin_cpu_s_per_int_drain": round(results["pymssql fetchmany|ints"][3], 2),
        "pymssql_text_mb_per_client_cpu_s": round(
            results["pymssql fetchmany|texts"][2] / 1e6 / max(results["pymssql fetchmany|texts"][4], 1e-9), 1
        ),
        "load_average": round(load1, 1),
    }
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
