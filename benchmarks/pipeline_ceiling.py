"""The pipeline ceiling of SQL Server → PostgreSQL: what a copy with zero cost of its own would take on this box.

A copy here pays the stand-in's reads and PostgreSQL's load on the same 2 cores; a drain alone pays only the first.
So the ceiling runs both halves at the same time, each 2 at a time, with nothing in between:
  read   the fastest client drains every table of the stand-in (benchmarks.mssql_drain, 2 processes);
  write  PostgreSQL loads the same rows with server-side `COPY … FROM 'file' (FORMAT binary, FREEZE)` into tables
         created in the same transaction (logged, as ray-replicator's are, and frozen, as its whole-table ranges
         are), without keys or indexes, 2 tables at a time.
The files are written beforehand from a verified copy (server-side `COPY … TO`, not timed). The clock runs from the
start of both halves to the end of the later one. `pipeline_ceiling_over_ours` = ceiling seconds / ours.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from benchmarks.mssql_drain import drain_pool, drain_with
from benchmarks.procstats import ProcessSampler, Usage
from benchmarks.standin_so import StandIn

CEILING_SCHEMA = "pipeline_ceiling"


def export_copy_files(url: str, schema: str, tables: list[str], directory: Path) -> dict[str, Path]:
    """Every table of a finished copy to a binary COPY file the server itself writes (not timed)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o777)  # the server may run as its own user
    files = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            path = directory / f"{table}.bin"
            conn.execute(f'COPY "{schema}"."{table}" TO \'{path}\' (FORMAT binary)')
            files[table] = path
    return files


def _load_file(url: str, schema: str, table: str, path: Path) -> None:
    with psycopg.connect(url) as conn:  # one transaction: CREATE, then COPY FREEZE
        conn.execute(f'CREATE TABLE "{CEILING_SCHEMA}"."{table}" (LIKE "{schema}"."{table}")')
        conn.execute(f'COPY "{CEILING_SCHEMA}"."{table}" FROM \'{path}\' (FORMAT binary, FREEZE)')


def run_pipeline_ceiling(
    src: StandIn, client: str, url: str, schema: str, files: dict[str, Path], postmaster: int, expected_rows: int
) -> tuple[float, Usage]:
    """Drain the stand-in and load the files into a fresh schema of the copy's database (url, tables in `schema`)
    at the same time; returns the seconds and what each process spent. The loaded tables are dropped after."""
    tables = list(files)  # in the caller's order: largest first, so the two lanes finish together
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{CEILING_SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{CEILING_SCHEMA}"')
    with drain_pool(client) as (pool, drain_pids), ThreadPoolExecutor(1) as lanes:
        roots = {"stand-in": [src.pid], "postgres": [postmaster], "drain clients": drain_pids}
        with ProcessSampler(roots) as sampler:
            started = time.perf_counter()
            reading = lanes.submit(drain_with, pool, src, tables, client)
            with ThreadPoolExecutor(2) as writers:
                list(writers.map(lambda t: _load_file(url, schema, t, files[t]), tables))
            rows = reading.result()
            seconds = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{CEILING_SCHEMA}" CASCADE')
    if rows != expected_rows:
        raise SystemExit(f"the pipeline ceiling's drain read {rows} rows, expected {expected_rows}")
    return seconds, sampler.usage
