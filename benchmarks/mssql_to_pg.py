"""SQL Server → PostgreSQL, side by side in one invocation: one stand-in source, one embedded PostgreSQL.

A SQL Server stand-in (own process, 127.0.0.1) holds a generated StackOverflow2010; then, one after another:
  drain     the fastest a client reads every table and discards it, 2 tables at a time in 2 processes
            (mssql-python Arrow batches, and pymssql tuples): the ceiling for any SQL Server reader here;
  ours      ray-replicator with reader=pymssql and reader=mssql-python (keys, identity, verify counts; Ray
            already running, as on a cluster);
  current   the user's current method: pymssql rows → csv module → a 128 MB SpooledTemporaryFile per table →
            one psycopg COPY per table, tables one after another, every column nullable;
  pgloader  Debian pgloader, FreeTDS with `client charset = UTF-8`, `--dynamic-space-size 4096`.
What each did to the data is measured afterwards, value by value, against ray-replicator's copy (itself
checked against the source by checksums). Prints a markdown table, writes it and a PNG bar chart to
benchmarks/results/, and prints as its last line one JSON object.

    python benchmarks/mssql_to_pg.py --scale 0.1 [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg  # noqa: E402

from benchmarks.charts import seconds_chart  # noqa: E402
from benchmarks.mssql_drain import FETCH_ROWS, drain_tables  # noqa: E402
from benchmarks.pg_to_pg import drop_database, median, quiesce  # noqa: E402
from benchmarks.standin_so import DATABASE, PASSWORD, USER, StandIn, standin  # noqa: E402
from benchmarks.timed import timed_replicate  # noqa: E402
from ray_replicator.config import Settings  # noqa: E402
from ray_replicator.embedded import recreate_database, start_embedded_postgres  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPOOL_BYTES = 128 * 1024 * 1024


# ------------------------------------------------------------------------------------------------- drain


def _largest_first(scale: float) -> list[str]:
    """Tables by rough bytes, biggest first, so two workers finish together."""
    weight = {"Posts": 12.0, "Comments": 2.0, "Users": 2.0}
    counts = so.row_counts(scale)
    return sorted(counts, key=lambda t: -counts[t] * weight.get(t, 1.0))


def run_drain(src: StandIn, tables: list[str], client: str, expected: int) -> float:
    rows, elapsed = drain_tables(src, tables, client, tls=False, packet_size=32767)
    if rows != expected:
        raise SystemExit(f"drain with {client} read {rows} rows, expected {expected}")
    return elapsed


# ------------------------------------------------------------------------------------------- ours


def run_ours(src: StandIn, target_url: str, reader: str, expected: int) -> tuple[float, dict[str, float]]:
    report, elapsed = timed_replicate(
        {
            "source": {"url": src.url(reader=reader)},
            "target": {"url": target_url},
            "verify": "counts",
            "report_path": None,
        }
    )
    if report.status != "ok" or report.total_rows != expected:
        raise SystemExit(f"ray-replicator reader={reader}: {report.status}, {report.total_rows} rows: {report.errors}")
    return elapsed, dict(report.workers.get("peak_rss_mb", {}))


def warm_ray_workers(src: StandIn, target_url: str) -> None:
    """Copy one tiny table with each reader first, so no timed run pays the workers' first imports."""
    from ray_replicator.pipeline import replicate

    for reader in ("pymssql", "mssql-python"):
        settings = Settings.model_validate(
            {"source": {"url": src.url(reader=reader)}, "target": {"url": target_url}, "tables": ["dbo.LinkTypes"],
             "existing": "drop", "verify": "counts", "report_path": None}
        )  # fmt: skip
        replicate(settings)


def checksum_against_source(src: StandIn, target_url: str) -> str:
    """ray-replicator's own range checksums of a finished copy against the source (not timed)."""
    from ray_replicator.pipeline import verify_only

    settings = Settings.model_validate(
        {"source": {"url": src.url()}, "target": {"url": target_url}, "verify": "checksums", "report_path": None}
    )
    bad = [f"{t}: {s} vs {d} rows {m}" for t, s, d, m in verify_only(settings) if s != d or m]
    return "exact: checksums of every range = source" if not bad else "MISMATCH: " + "; ".join(bad)


# ---------------------------------------------------------------------------------- the user's current method

_PG_TYPES = {
    "int": "integer", "bigint": "bigint", "smallint": "smallint", "tinyint": "smallint", "bit": "boolean",
    "datetime": "timestamp", "datetime2": "timestamp", "smalldatetime": "timestamp", "date": "date",
    "float": "double precision", "real": "real", "decimal": "numeric", "numeric": "numeric", "money": "numeric",
    "uniqueidentifier": "uuid",
}  # fmt: skip


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


def run_pgloader(src: StandIn, target_url: str, schema: str, workdir: Path) -> PgloaderRun:
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
    started = time.perf_counter()
    done = subprocess.run(["pgloader", "--dynamic-space-size", "4096", str(load)], env=env, capture_output=True,
                          text=True, timeout=3600)  # fmt: skip
    elapsed = time.perf_counter() - started
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip() and "TDS_MAX_CONN" not in ln]
    total = next((ln for ln in lines if "Total import time" in ln), "")
    m = re.search(r"Total import time\s+(\S+)\s+(\d+)", total)
    errors = int(m.group(1)) if m and m.group(1).isdigit() else 0
    if done.returncode != 0 or not m or errors:
        reason = next((ln.strip() for ln in lines if "ERROR" in ln or "KABOOM" in ln or "Heap exhausted" in ln), "")
        return PgloaderRun(None, error=f"exit {done.returncode}: {reason or (lines[-1] if lines else '?')}",
                           log_tail=lines[-15:])  # fmt: skip
    return PgloaderRun(elapsed, rows=int(m.group(2)), log_tail=lines[-15:])


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


# ---------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the drains and of ours, interleaved; medians are reported"
    )
    args = parser.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    load_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-mssql2pg-"))
    os.chmod(scratch, 0o755)
    pg_server, base_url = start_embedded_postgres(scratch / "pgdata")
    rows = sum(so.row_counts(args.scale).values())
    tables = _largest_first(args.scale)
    import ray

    try:
        t0 = time.perf_counter()
        with standin(args.scale, args.seed) as src:
            print(f"stand-in up with {rows:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
            ray_start_s = time.perf_counter() - t0

            warm_ray_workers(src, recreate_database(base_url, "bench_warmup"))
            drains: dict[str, list[float]] = {"mssql-python": [], "pymssql": []}
            ours_runs: dict[str, list[float]] = {"pymssql": [], "mssql-python": []}
            rss: dict[str, float] = {}
            urls: dict[str, str] = {}
            for run in range(args.repeat):  # interleaved, so a noisy spell on the box hits every method alike
                for client in drains:
                    quiesce(base_url)
                    drains[client].append(run_drain(src, tables, client, rows))
                for reader in ours_runs:
                    if reader in urls:  # only the last round's copies are kept for the checks below
                        drop_database(base_url, urls[reader])
                    urls[reader] = recreate_database(base_url, f"bench_ours_{reader.replace('-', '_')}_{run}")
                    quiesce(base_url)
                    elapsed_s, peaks = run_ours(src, urls[reader], reader, rows)
                    ours_runs[reader].append(elapsed_s)
                    rss.update({f"{reader} {k}": v for k, v in peaks.items()})
            drain = {client: median(runs) for client, runs in drains.items()}
            ours = {reader: median(runs) for reader, runs in ours_runs.items()}
            print(f"drain runs: {drains}\nours runs: {ours_runs}", file=sys.stderr)
            ref_url, pym_url = urls["mssql-python"], urls["pymssql"]
            quiesce(base_url)
            current_s = run_current(src, ref_url, "current")
            print(f"current method: {current_s:.1f} s", file=sys.stderr)
            quiesce(base_url)
            pgl = run_pgloader(src, ref_url, "pgloader", scratch)
            print(f"pgloader: {pgl.seconds} {pgl.error or ''}", file=sys.stderr)
            load_end = os.getloadavg()
            exact = {reader: checksum_against_source(src, url) for reader, url in
                     (("mssql-python", ref_url), ("pymssql", pym_url))}  # fmt: skip
        current_dmg = measure_damage(ref_url, "dbo", "current", lower=False)
        pgl_dmg = measure_damage(ref_url, "dbo", "pgloader", lower=True) if pgl.seconds is not None else None
    finally:
        if ray.is_initialized():
            ray.shutdown()
        pg_server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)

    drain_client = min(drain, key=lambda c: drain[c])
    drain_s = drain[drain_client]
    ours_reader = min(ours, key=lambda r: ours[r])
    ours_s = ours[ours_reader]
    entries: list[tuple[str, float | None, str, str]] = [
        (f"drain ceiling: {drain_client} reads every table, 2 at a time", drain_s, "—", "#7f7f7f"),
    ]
    for client, secs in drain.items():
        if client != drain_client:
            entries.append((f"drain with {client}, 2 at a time", secs, "—", "#b0b0b0"))
    for reader in ("mssql-python", "pymssql"):
        entries.append((f"ray-replicator reader={reader} (keys, identity, verify counts)", ours[reader],
                        exact[reader], "#2ca02c"))  # fmt: skip
    entries.append(
        ("user's current method: pymssql → csv → 128 MB spool → COPY, sequential", current_s,
         current_dmg.describe(), "#d62728")
    )  # fmt: skip
    entries.append(
        ("pgloader 3.6 (FreeTDS UTF-8, --dynamic-space-size 4096)", pgl.seconds,
         pgl_dmg.describe() if pgl_dmg is not None else f"failed: {pgl.error}", "#ff7f0e")
    )  # fmt: skip

    title = f"SQL Server stand-in → PostgreSQL, StackOverflow2010 scale {args.scale}, {rows:,} rows"
    lines = [
        f"{title}; drains and ray-replicator: median of {args.repeat} interleaved rounds, the others one run; "
        f"autovacuum idle before each; load average {load_start[0]:.2f} before / {load_end[0]:.2f} after",
        "",
        "| method | seconds | rows/s | drain/method | what it did to the data |",
        "|---|---:|---:|---:|---|",
    ]
    for label, took, data, _ in entries:
        if took is None:
            lines.append(f"| {label} | failed | | | {data} |")
        else:
            lines.append(f"| {label} | {took:.2f} | {rows / took:,.0f} | {drain_s / took:.2f} | {data} |")
    lines.append(f"| (Ray start-up, not included above) | {ray_start_s:.2f} | | | |")
    lines.append("")
    peak_text = ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items()))
    lines.append(f"peak RSS per copy worker process over all its runs here, warm-ups included (MB): {peak_text}")
    markdown = "\n".join(lines)
    print(markdown)
    if pgl.seconds is None and pgl.log_tail:
        print("\npgloader output (tail):\n    " + "\n    ".join(pgl.log_tail))

    RESULTS.mkdir(exist_ok=True)
    stem = f"mssql_to_pg_scale{args.scale:g}"
    (RESULTS / f"{stem}.md").write_text(markdown + "\n")
    labels, seconds, colors = [], [], []
    for label, took, _, color in entries:
        if took is not None:
            labels.append(label)
            seconds.append(took)
            colors.append(color)
    png = RESULTS / f"{stem}.png"
    seconds_chart(png, labels, seconds, colors, f"{title}, load average {load_end[0]:.1f}", row_height=0.55)
    print(f"\nchart: {png}\nmarkdown: {RESULTS / f'{stem}.md'}")

    summary = {
        "ours_s": round(ours_s, 3),
        "ours_reader": ours_reader,
        "ours_pymssql_s": round(ours["pymssql"], 3),
        "ours_mssql_python_s": round(ours["mssql-python"], 3),
        "drain_ceiling_s": round(drain_s, 3),
        "drain_client": drain_client,
        "drain_mssql_python_s": round(drain["mssql-python"], 3),
        "drain_pymssql_s": round(drain["pymssql"], 3),
        "pgloader_s": None if pgl.seconds is None else round(pgl.seconds, 3),
        "pgloader_error": pgl.error,
        "current_method_s": round(current_s, 3),
        "drain_over_ours": round(drain_s / ours_s, 3),
        "ours_over_pgloader_speedup": None if pgl.seconds is None else round(pgl.seconds / ours_s, 3),
        "ours_over_current_speedup": round(current_s / ours_s, 3),
        "current_method_damage": current_dmg.__dict__,
        "pgloader_damage": None if pgl_dmg is None else pgl_dmg.__dict__,
        "ours_exact": exact,
        "rows": rows,
        "scale": args.scale,
        "seed": args.seed,
        "ray_start_s": round(ray_start_s, 3),
        "repeat": args.repeat,
        "drain_runs_s": {client: [round(x, 3) for x in runs] for client, runs in drains.items()},
        "ours_runs_s": {reader: [round(x, 3) for x in runs] for reader, runs in ours_runs.items()},
        "worker_peak_rss_mb": max(rss.values()) if rss else None,
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in load_end],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
