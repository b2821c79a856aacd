"""The peers ray-replicator is measured against for SQL Server → PostgreSQL, and what each did to the data.

  current   the user's current method: pymssql rows → csv module → a 128 MB SpooledTemporaryFile per table →
            one psycopg COPY per table, tables one after another, every column nullable;
  pgloader  Debian pgloader, FreeTDS with `client charset = UTF-8`, `--dynamic-space-size 4096`.
measure_damage compares a peer's copy with ray-replicator's (exact) copy in the same database, value by value.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.mssql_drain import FETCH_ROWS
from benchmarks.procstats import ProcessSampler, Usage, run_sampled
from benchmarks.standin_so import DATABASE, PASSWORD, USER, StandIn
from ray_replicator.synth import stackoverflow as so

SPOOL_BYTES = 128 * 1024 * 1024


# ---------------------------------------------------------------------------------- the user's current method

_PG_TYPES = {
    "int": "integer", "bigint": "bigint", "smallint": "smallint", "tinyint": "smallint", "bit": "boolean",
    "datetime": "timestamp", "datetime2": "timestamp", "smalldatetime": "timestamp", "date": "date",
    "float": "double precision", "real": "real", "decimal": "numeric", "numeric": "numeric", "money": "numeric",
    "uniqueidentifier": "uuid",
}  # fmt: skip


def run_current_sampled(
    src: StandIn, target_url: str, schema: str, roots: Mapping[str, list[int]]
) -> tuple[float, Usage]:
    """The current method in this process (role "current method", this process alone), sampled beside roots."""
    with ProcessSampler({**roots, "current method": [os.getpid()]}, alone=["current method"]) as sampler:
        seconds = run_current(src, target_url, schema)
    return seconds, sampler.usage


def run_current(src: StandIn, target_url: str, schema: str) -> float:
    """pymssql → csv → 128 MB spool → COPY, as the user's pipeline does it: '' and NULL both become an empty
    CSV field (COPY reads it as NULL, so every column is created nullable) and datetimes are formatted
    without their milliseconds."""
    import pymssql

    started = time.perf_counter()
    src_conn = pymssql.connect(server=src.host, port=str(src.port), user=USER, password=PASSWORD,
                               database=DATABASE, tds_version="7.4")  # fmt: skip
    cur = src_conn.cursor()
    cur.execute(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = 'dbo' ORDER BY TABLE_NAME, ORDINAL_POSITION"
    )
    columns: dict[str, list[tuple[str, str, int | None]]] = {}
    for table, column, data_type, length in cur.fetchall():
        size = length if isinstance(length, int) else None
        columns.setdefault(str(table), []).append((str(column), str(data_type).lower(), size))
    with psycopg.connect(target_url, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        pg.execute(f'CREATE SCHEMA "{schema}"')
        for table, cols in columns.items():
            defs = []
            for name, data_type, length in cols:
                pg_type = _PG_TYPES.get(data_type, "text" if length is None or length < 0 else f"varchar({length})")
                defs.append(f'"{name}" {pg_type}')
            pg.execute(f'CREATE TABLE "{schema}"."{table}" ({", ".join(defs)})')
            dates = [i for i, (_, data_type, _) in enumerate(cols) if data_type in ("datetime", "datetime2")]
            cur.execute(f"SELECT * FROM dbo.[{table}]")
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", newline="", encoding="utf-8") as spool:
                writer = csv.writer(spool)
                while rows := cur.fetchmany(FETCH_ROWS):
                    writer.writerows([_strip_ms(row, dates) for row in rows] if dates else rows)
                spool.seek(0)
                with pg.cursor() as pcur, pcur.copy(f'COPY "{schema}"."{table}" FROM STDIN (FORMAT csv)') as copy:
                    while data := spool.read(1 << 20):
                        copy.write(data)
    src_conn.close()
    return time.perf_counter() - started


def _strip_ms(row: tuple[Any, ...], dates: list[int]) -> list[Any]:
    out = list(row)
    for i in dates:
        value = out[i]
        if isinstance(value, dt.datetime):
            out[i] = value.strftime("%Y-%m-%d %H:%M:%S")
    return out


# ------------------------------------------------------------------------------------------------- pgloader


@dataclass
class PgloaderRun:
    seconds: float | None
    rows: int | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    usage: Usage | None = None


def run_pgloader(
    src: StandIn, target_url: str, schema: str, workdir: Path, roots: Mapping[str, list[int]]
) -> PgloaderRun:
    """pgloader into `schema` of target_url, sampled beside `roots` (role "pgloader")."""
    if shutil.which("pgloader") is None:
        return PgloaderRun(None, error="pgloader is not installed (Debian package pgloader)")
    socket_dir = psycopg.conninfo.conninfo_to_dict(target_url).get("host") or "/tmp"
    database = psycopg.conninfo.conninfo_to_dict(target_url).get("dbname")
    port = psycopg.conninfo.conninfo_to_dict(target_url).get("port") or 5432
    freetds = workdir / "freetds.conf"
    # Without client charset = UTF-8 pgloader dies on the first non-ASCII character it reads.
    freetds.write_text("[global]\n\ttds version = 7.4\n\tclient charset = UTF-8\n")
    load = workdir / "so.load"
    load.write_text(
        f"LOAD DATABASE\n  FROM mssql://{USER}:{PASSWORD}@{src.host}:{src.port}/{DATABASE}\n"
        f"  INTO pgsql://postgres@unix:{socket_dir}:{port}/{database}\n"
        f"  ALTER SCHEMA 'dbo' RENAME TO '{schema}';\n"
    )
    env = dict(os.environ, FREETDSCONF=str(freetds))
    done = run_sampled(["pgloader", "--dynamic-space-size", "4096", str(load)], roots, "pgloader", env)
    lines = [ln for ln in done.output.splitlines() if ln.strip() and "TDS_MAX_CONN" not in ln]
    total = next((ln for ln in lines if "Total import time" in ln), "")
    m = re.search(r"Total import time\s+(\S+)\s+(\d+)", total)
    errors = int(m.group(1)) if m and m.group(1).isdigit() else 0
    if done.returncode != 0 or not m or errors:
        reason = next((ln.strip() for ln in lines if "ERROR" in ln or "KABOOM" in ln or "Heap exhausted" in ln), "")
        return PgloaderRun(None, error=f"exit {done.returncode}: {reason or (lines[-1] if lines else '?')}",
                           log_tail=lines[-15:], usage=done.usage)  # fmt: skip
    return PgloaderRun(done.seconds, rows=int(m.group(2)), log_tail=lines[-15:], usage=done.usage)


# ---------------------------------------------------------------------------------------------- data damage


@dataclass
class Damage:
    empty_to_null: int = 0
    datetimes_altered: int = 0
    other_values_altered: int = 0
    rows_missing: int = 0
    not_null_relaxed: int = 0
    type_changes: dict[str, int] = field(default_factory=dict)
    names_changed: int = 0

    def describe(self) -> str:
        parts = [
            f"{self.empty_to_null:,} '' → NULL" if self.empty_to_null else "",
            f"{self.datetimes_altered:,} datetimes altered" if self.datetimes_altered else "",
            f"{self.other_values_altered:,} other values altered" if self.other_values_altered else "",
            f"{self.rows_missing:,} rows missing" if self.rows_missing else "",
            f"{self.not_null_relaxed} NOT NULL relaxed" if self.not_null_relaxed else "",
            ", ".join(f"{k} ×{v}" for k, v in sorted(self.type_changes.items())),
            f"{self.names_changed} names lower-cased" if self.names_changed else "",
        ]
        text = "; ".join(p for p in parts if p)
        values = not (self.empty_to_null or self.datetimes_altered or self.other_values_altered or self.rows_missing)
        return ("values exact; " if values else "") + (text or "nothing")


_SHORT = {
    "integer": "int", "character varying": "varchar", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}  # fmt: skip


def _pg_type_of(row: tuple[Any, ...]) -> str:
    """A short type name; lengths shown as (n) so that varchar(40) → text and varchar(700) → text add up."""
    data_type, length = row
    return _SHORT.get(str(data_type), str(data_type)) + ("(n)" if length else "")


def measure_damage(url: str, ref_schema: str, schema: str, lower: bool) -> Damage:
    """Compare a copy with ray-replicator's (exact) copy in the same database, value by value."""
    dmg = Damage()
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET TimeZone = 'UTC'")
        info: dict[str, dict[tuple[str, str], tuple[Any, ...]]] = {}
        for sch in (ref_schema, schema):
            rows = pg.execute(
                "SELECT lower(table_name), lower(column_name), table_name, column_name, is_nullable, data_type, "
                "character_maximum_length FROM information_schema.columns WHERE table_schema = %s",
                (sch,),
            ).fetchall()
            info[sch] = {(r[0], r[1]): r[2:] for r in rows}
        for key, (_, ref_col, ref_null, *ref_type) in info[ref_schema].items():
            got = info[schema].get(key)
            if got is None:
                continue
            _, col, null, *typ = got
            dmg.not_null_relaxed += ref_null == "NO" and null == "YES"
            dmg.names_changed += col != ref_col
            a, b = _pg_type_of(tuple(ref_type)), _pg_type_of(tuple(typ))
            if a != b:
                change = f"{a} → {b}"
                dmg.type_changes[change] = dmg.type_changes.get(change, 0) + 1
        for t in so.TABLES:
            tname = t.name.lower() if lower else t.name
            cols = [c for c in t.columns if c.name != "Id"]

            def other(c: so.SynthColumn) -> str:
                return f'x."{c.name.lower() if lower else c.name}"'

            text = [c for c in cols if "char" in c.sql_type]
            dates = [c for c in cols if c.sql_type == "datetime"]
            rest = [c for c in cols if c not in text and c not in dates]
            xid = other(so.SynthColumn("Id", "int"))
            exprs = [f"count(*) FILTER (WHERE {xid} IS NULL)"]
            exprs += [f"count(*) FILTER (WHERE d.\"{c.name}\" = '' AND {other(c)} IS NULL)" for c in text] or ["0"]
            exprs += [f'count(*) FILTER (WHERE d."{c.name}" IS DISTINCT FROM {other(c)}::timestamp)' for c in dates]
            exprs += [
                f'count(*) FILTER (WHERE d."{c.name}" IS DISTINCT FROM {other(c)} '
                f"AND NOT (d.\"{c.name}\" = '' AND {other(c)} IS NULL))"
                for c in text
            ]
            exprs += [f'count(*) FILTER (WHERE d."{c.name}" IS DISTINCT FROM {other(c)})' for c in rest]
            row = pg.execute(
                f'SELECT {", ".join(exprs)} FROM "{ref_schema}"."{t.name}" d '
                f'LEFT JOIN "{schema}"."{tname}" x ON {xid} = d."Id"'
            ).fetchone()
            assert row is not None
            values = [int(v) for v in row]
            n_text = max(len(text), 1)
            dmg.rows_missing += values[0]
            dmg.empty_to_null += sum(values[1 : 1 + n_text])
            dmg.datetimes_altered += sum(values[1 + n_text : 1 + n_text + len(dates)])
            dmg.other_values_altered += sum(values[1 + n_text + len(dates) :])
    return dmg
