"""The ceiling for any SQL Server reader: every table read by one client in 2 processes, nothing kept.

Shared by the benchmarks that compare ray-replicator's readers with a bare drain (mssql_to_pg, tls_vs_plain).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.standin_so import DATABASE, PASSWORD, USER, StandIn

FETCH_ROWS = 10_000


def _warm(client: str) -> int:
    """Import the driver in the pool's process before the clock starts."""
    __import__("mssql_python" if client == "mssql-python" else "pymssql")
    return os.getpid()


def _drain_table(host: str, port: int, table: str, client: str, tls: bool, packet_size: int) -> int:
    """Read every row of one table with one client, keep nothing; returns the row count."""
    rows = 0
    conn: Any
    if client == "mssql-python":
        import mssql_python

        enc = "Encrypt=yes;TrustServerCertificate=yes" if tls else "Encrypt=no"
        conn = mssql_python.connect(
            f"Server={host},{port};Database={DATABASE};UID={USER};PWD={PASSWORD};{enc};PacketSize={packet_size}",
            autocommit=True,
        )
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM dbo.[{table}]")
        while (batch := cur.arrow_batch(65_536)).num_rows:
            rows += batch.num_rows
    else:
        import pymssql

        conn = pymssql.connect(server=host, port=str(port), user=USER, password=PASSWORD, database=DATABASE,
                               tds_version="7.4", autocommit=True, encryption="require" if tls else None)  # fmt: skip
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM dbo.[{table}]")
        while chunk := cur.fetchmany(FETCH_ROWS):
            rows += len(chunk)
    conn.close()
    return rows


@contextlib.contextmanager
def drain_pool(client: str) -> Iterator[tuple[ProcessPoolExecutor, list[int]]]:
    """2 spawned processes with the client's driver imported: the pool and its process ids (to sample them)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool, list(pool.map(_warm, [client, client]))


def drain_with(pool: ProcessPoolExecutor, src: StandIn, tables: list[str], client: str, tls: bool = False,
               packet_size: int = 32767) -> int:  # fmt: skip
    """Drain the tables 2 at a time in the pool's processes; returns the rows read."""
    n = len(tables)
    return sum(pool.map(_drain_table, [src.host] * n, [src.port] * n, tables, [client] * n, [tls] * n,
                        [packet_size] * n))  # fmt: skip


def drain_tables(src: StandIn, tables: list[str], client: str, tls: bool, packet_size: int) -> tuple[int, float]:
    """Drain the tables 2 at a time in 2 spawned processes; returns (rows read, seconds on the clock)."""
    with drain_pool(client) as (pool, _):
        started = time.perf_counter()
        rows = drain_with(pool, src, tables, client, tls, packet_size)
        elapsed = time.perf_counter() - started
    return rows, elapsed
