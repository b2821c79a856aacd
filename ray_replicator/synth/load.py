"""Filling a database with the generated tables: PostgreSQL over ADBC ingest, SQL Server over TDS bulk load."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from ray_replicator.synth.batches import CHUNK_ROWS, chunk_count, generate_batches, reader
from ray_replicator.synth.ddl import mssql_ddl, postgres_ddl, postgres_pk_ddl, quote_mssql, quote_pg, select_tables
from ray_replicator.synth.schema import SynthTable, arrow_schema, row_counts, table


def _adbc_uri(url: str) -> str:
    """libpq understands postgres:// and postgresql:// but not SQLAlchemy-style driver suffixes."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else url


def _toast_settings(schema: str, tables: Sequence[SynthTable], load: bool) -> list[str]:
    """Storage settings for an uncompressed bulk load (load=True) and the defaults restored after it."""
    out = []
    for t in tables:
        fq = f"{quote_pg(schema)}.{quote_pg(t.name)}"
        big = [c for c in t.columns if c.sql_type.lower().endswith("(max)")]
        if not big:
            continue
        out.append(
            f"ALTER TABLE {fq} SET (toast_tuple_target = 8160)"
            if load
            else f"ALTER TABLE {fq} RESET (toast_tuple_target)"
        )
        storage = "EXTERNAL" if load else "EXTENDED"
        out += [f"ALTER TABLE {fq} ALTER COLUMN {quote_pg(c.name)} SET STORAGE {storage}" for c in big]
    return out


def write_postgres(
    url: str,
    scale: float,
    seed: int = 42,
    schema: str = "public",
    tables: Sequence[str] | None = None,
    include_extra: bool = False,
    workers: int = 2,
    compress_text: bool = True,
    split: dict[str, int] | None = None,
    replace: bool = False,
    verbose: bool = True,
) -> dict[str, int]:
    """Create, bulk-load (ADBC ingest = binary COPY from Arrow), key, sequence and ANALYZE the tables.

    ``workers`` threads each take the largest table left, load it, then key and analyze it while the
    others still load; keys come after the data because one B-tree build is much cheaper than row-by-row
    maintenance. Large (max) values are stored as PostgreSQL stores them by default (compressed, TOAST), as any
    real database holds them. ``compress_text=False`` loads them uncompressed and inline up to 8 KB instead
    (pglz is most of Posts' load time), then restores the default storage for later writes: a source no real
    database looks like, kept for benchmarks of that form (`large_values = "as-source"` keeps it uncompressed).
    ``split`` maps a table to a number of parts loaded concurrently. Existing tables of the same names
    are an error unless ``replace`` (then they are dropped). Returns rows loaded per table.
    """
    selected = select_tables(tables, include_extra)
    counts = row_counts(scale, include_extra=True)
    uri = _adbc_uri(url)
    t0 = time.perf_counter()
    _create_tables(uri, schema, selected, replace, compress_text)
    load = _ParallelLoad(uri, schema, scale, seed, [t.name for t in selected], counts, split or {}, compress_text, t0)
    load.run(workers)
    if verbose:
        load.print_summary()
    return {name: load.loaded[name] for name in load.names}


def _create_tables(uri: str, schema: str, selected: Sequence[SynthTable], replace: bool, compress_text: bool) -> None:
    """The schema and the empty tables, storage set for the load; same-named tables dropped only if ``replace``."""
    import psycopg

    names = [t.name for t in selected]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_pg(schema)}")
        existing = [
            name
            for name in names
            if conn.execute("SELECT to_regclass(%s)", (f"{quote_pg(schema)}.{quote_pg(name)}",)).fetchone() != (None,)
        ]
        if existing and not replace:
            raise ValueError(f"tables already exist in schema {schema!r}: {existing}; pass replace=True")
        for name in existing:
            conn.execute(f"DROP TABLE {quote_pg(schema)}.{quote_pg(name)}")
        for stmt in postgres_ddl(schema, names):
            conn.execute(stmt)
        if not compress_text:
            for stmt in _toast_settings(schema, selected, load=True):
                conn.execute(stmt)


def _load_cost(name: str, rows: int) -> float:
    """Rough relative load time, so the slowest tables start first."""
    per_row = {"Posts": 12.0, "PostHistory": 8.0, "Comments": 2.0, "Users": 2.0}
    return rows * per_row.get(name, 1.0)


class _ParallelLoad:
    """One ``write_postgres`` load: a queue of table parts that loader threads share under one lock.

    The thread that loads a table's last part then keys, re-sequences and analyzes it; the first error
    stops every thread and is re-raised in the caller's.
    """

    def __init__(
        self,
        uri: str,
        schema: str,
        scale: float,
        seed: int,
        names: list[str],
        counts: dict[str, int],
        split: dict[str, int],
        compress_text: bool,
        t0: float,
    ) -> None:
        self.uri, self.schema, self.scale, self.seed = uri, schema, scale, seed
        self.names, self.counts, self.compress_text, self.t0 = names, counts, compress_text, t0
        self.pk_stmts = dict(zip(names, postgres_pk_ddl(schema, names), strict=True))
        # A table can be split in contiguous parts loaded side by side; with 2 cores already saturated by
        # generation plus two backends this measured slower, so it is only done when asked for.
        self.n_parts = {n: max(1, min(split.get(n, 1), chunk_count(n, scale))) for n in names}
        self.left = dict(self.n_parts)
        jobs = [(n, p, _load_cost(n, counts[n]) / self.n_parts[n]) for n in names for p in range(self.n_parts[n])]
        self.queue = [(n, p) for n, p, _ in sorted(jobs, key=lambda j: -j[2])]
        self.started_at: dict[str, float] = {}
        self.loaded: dict[str, int] = {}
        self.timings: dict[str, tuple[float, float, float]] = {}
        self.errors: list[BaseException] = []
        self.elapsed = 0.0
        self.lock = threading.Lock()

    def run(self, workers: int) -> None:
        """Load every part on ``workers`` threads; raise the first error any of them hit."""
        threads = [threading.Thread(target=self._work, name=f"synth-load-{i}") for i in range(max(1, workers))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if self.errors:
            raise self.errors[0]
        self.elapsed = time.perf_counter() - self.t0

    def print_summary(self) -> None:
        total = sum(self.loaded.values())
        print(
            f"synth stackoverflow scale={self.scale} seed={self.seed}: {total:,} rows in {self.elapsed:.2f}s "
            f"({total / self.elapsed:,.0f} rows/s end to end: create, load, keys, sequences, analyze)"
        )
        for name in self.names:
            a, b, c = self.timings[name]
            print(f"  {name:18s} {self.loaded[name]:>11,} rows  load {a:6.2f}..{b:6.2f}s  keys+analyze ..{c:6.2f}s")

    def _work(self) -> None:
        import adbc_driver_postgresql.dbapi as adbc
        import psycopg

        try:
            with adbc.connect(self.uri) as aconn, psycopg.connect(self.uri, autocommit=True) as pconn:
                # Generated data can be regenerated: commits need not wait for the WAL flush.
                with aconn.cursor() as cur:
                    cur.execute("SET synchronous_commit = off")
                pconn.execute("SET synchronous_commit = off")
                while (job := self._next_part()) is not None:
                    name, part = job
                    if self._load_part(aconn, name, part):
                        self._finalize_table(pconn, name)
        except BaseException as exc:  # re-raised in the caller's thread by run()
            with self.lock:
                self.errors.append(exc)

    def _next_part(self) -> tuple[str, int] | None:
        with self.lock:
            if not self.queue or self.errors:
                return None
            return self.queue.pop(0)

    def _load_part(self, aconn: Any, name: str, part: int) -> bool:
        """Ingest one part of the table; True when it was the table's last part to finish."""
        with self.lock:
            self.started_at.setdefault(name, time.perf_counter())
        chunks = chunk_count(name, self.scale)
        parts = self.n_parts[name]
        first, end = chunks * part // parts, chunks * (part + 1) // parts
        expected = min(self.counts[name], end * CHUNK_ROWS) - first * CHUNK_ROWS
        with aconn.cursor() as cur:
            # Batches of whole chunks: re-batching would copy every Body once more.
            data = reader(name, self.scale, self.seed, CHUNK_ROWS, part=part, parts=parts)
            rows = cur.adbc_ingest(name, data, mode="append", db_schema_name=self.schema)
        aconn.commit()
        if rows is not None and rows >= 0 and rows != expected:
            raise RuntimeError(f"{self._qualified(name)}: loaded {rows} rows, expected {expected}")
        with self.lock:
            self.loaded[name] = self.loaded.get(name, 0) + expected
            self.left[name] -= 1
            return not self.left[name]

    def _finalize_table(self, pconn: Any, name: str) -> None:
        """Primary key, default storage back, identity sequence past the loaded ids, statistics."""
        fq = self._qualified(name)
        keyed = time.perf_counter()
        pconn.execute(self.pk_stmts[name])
        if not self.compress_text:
            for stmt in _toast_settings(self.schema, [table(name)], load=False):
                pconn.execute(stmt)
        max_id = 'GREATEST(COALESCE(MAX("Id"), 0), 1)'
        pconn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'Id'), {max_id}) FROM {fq}", (fq,))
        pconn.execute(f"ANALYZE {fq}")
        with self.lock:
            self.timings[name] = (self.started_at[name] - self.t0, keyed - self.t0, time.perf_counter() - self.t0)

    def _qualified(self, name: str) -> str:
        return f"{quote_pg(self.schema)}.{quote_pg(name)}"


def generate(
    target_url: str, scale: float, seed: int = 42, include_extra: bool = False, replace: bool = False
) -> dict[str, int]:
    """Fill the database at ``target_url`` with the synthetic StackOverflow2010; dispatches on the scheme.

    New targets add a branch here (and a ``write_<engine>`` beside ``write_postgres``).
    """
    scheme = urlsplit(target_url).scheme.lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return write_postgres(target_url, scale, seed, include_extra=include_extra, replace=replace)
    if scheme in ("mssql", "sqlserver"):
        return write_mssql(target_url, scale, seed, include_extra=include_extra, replace=replace)
    raise ValueError(
        f"cannot generate StackOverflow2010 into a {scheme or '(no scheme)'!r} target; "
        "supported: postgresql://, mssql://"
    )


def write_mssql(
    url: str,
    scale: float,
    seed: int = 42,
    schema: str = "dbo",
    tables: Sequence[str] | None = None,
    include_extra: bool = False,
    replace: bool = False,
) -> dict[str, int]:
    """Create the shipped SQL Server schema and fill it over TDS bulk load (mssql-python), keeping the Ids.

    Works against real SQL Server and the stand-in alike, so `ray-replicator generate --target mssql://…` gives
    either one the reference workload.
    """
    from ray_replicator.engines.mssql import connect_mssql_python, parse_url

    chosen = select_tables(tables, include_extra)
    conn = connect_mssql_python(parse_url(url), autocommit=True)
    try:
        cur = conn.cursor()
        for t in chosen:
            qualified_name = f"{quote_mssql(schema)}.{quote_mssql(t.name)}"
            cur.execute(f"SELECT OBJECT_ID(N'{qualified_name.replace(chr(39), chr(39) * 2)}')")
            exists = cur.fetchone()[0] is not None
            if exists and not replace:
                raise ValueError(f"table {schema}.{t.name} already exists in the target; drop it or pass replace")
            if exists:
                cur.execute(f"DROP TABLE {qualified_name}")
        for ddl in mssql_ddl(schema, [t.name for t in chosen]):
            cur.execute(ddl)
        counts: dict[str, int] = {}
        for t in chosen:
            arrow = arrow_schema(t.name)
            batches = pa.RecordBatchReader.from_batches(arrow, generate_batches(t.name, scale, seed))
            cur.bulkcopy_arrow(
                f"{quote_mssql(schema)}.{quote_mssql(t.name)}",
                batches,
                column_mappings=list(arrow.names),
                keep_identity=True,
                keep_nulls=True,
                table_lock=True,
                timeout=0,
            )
            cur.execute(f"SELECT COUNT_BIG(*) FROM {quote_mssql(schema)}.{quote_mssql(t.name)}")
            counts[t.name] = int(cur.fetchone()[0])
        return counts
    finally:
        conn.close()
