"""The whole StackOverflow2010 (scale 1.0: 19,310,703 rows), every path ray-replicator covers, in one invocation.

  mssql_to_pg       SQL Server stand-in → PostgreSQL: `--verify counts` cold and warm, `--verify checksums` cold
                    and warm (the checksum runs are the verification of every value: a run whose checksums differ
                    fails the benchmark); the database size of the copy;
  pipeline_ceiling  the fastest drain of the stand-in and server-side COPY FROM files of the same rows at the same
                    time, 2 at a time each (benchmarks/pipeline_ceiling.py; its files come from the cold counts copy,
                    which is made even when only pipeline_ceiling is asked for);
  mssql_to_mssql    stand-in → a second, empty stand-in, writer=bulkcopy, cold and warm, `--verify counts`;
  pg_to_pg          PostgreSQL → PostgreSQL (the source generated as benchmarks/pg_to_pg.py does, after the stand-in
                    is stopped): the server-side ceiling, `pgcopydb clone --table-jobs 2 --index-jobs 2`, ours cold
                    and warm, `--verify counts`.
Ours is always `ray-replicator run` as a process (benchmarks/ours_cli.py): cold starts and stops its own Ray, so its
time is what a user waits for; warm joins, with `--address`, a Ray head this benchmark started beforehand (`ray start
--head` on 127.0.0.1), as a job submitted to a cluster that is already up: it still starts its driver and workers.

Like for like: PostgreSQL's default storage on both sides of every PostgreSQL comparison (the generator writes
PostgreSQL with default storage, and ours' `large_values` default `compress` leaves storage to PostgreSQL, as
pgcopydb does); the same durability on both sides: pgcopydb's defaults set `synchronous_commit = off` and
`maintenance_work_mem = 1GB` in its target sessions, so ours' pg_to_pg targets get `synchronous_commit = off` as
their database default (benchmarks.pg_to_pg.like_pgcopydb). SQL Server → PostgreSQL has no peer here: ours and its
pipeline ceiling (loaded into the same database) run with the server's defaults, as a user's copy would. fsync,
full_page_writes and wal_level are the shared server's, and every method writes logged tables.

Measured per run with benchmarks/procstats.py (sampled every 0.2 s over process trees): CPU-seconds of the stand-in(s),
PostgreSQL (postmaster and every backend), our driver, Ray workers (children of raylet) and Ray's own processes
(raylet, GCS, agents; for warm runs those of the shared head), pgcopydb and the drain clients.
  peak_rss_mb               the largest sum of resident set sizes of all our processes at one sampling instant —
                            driver + Ray workers + Ray's own processes (raylet, gcs_server, agents, ray-replicator's
                            reaper; for warm runs the shared head's) — over every run of ours here. RSS counts a
                            shared page in each process mapping it, so this overstates, never understates.
  worker_cpu_s_per_m_rows   Ray workers' CPU-seconds per million rows in the SQL Server → PostgreSQL cold counts run
                            (worker_cpu_s_per_gb: per GB of the run report's bytes).
  pipeline_ceiling_over_ours  the pipeline ceiling's seconds over ours warm with counts (neither pays Ray's start).
  pgcopydb_over_ours_cold   pgcopydb's seconds over ours cold PostgreSQL → PostgreSQL.
Per table rows/s come from each run's own report.

Memory and disk: at scale 1.0 the stand-in holds about 8 GB in RAM. Nothing here holds two copies of the source at
once: the SQL Server target stand-in keeps its tables in a DuckDB file (`data_dir`, on disk), and the PostgreSQL
source of pg_to_pg is generated only after the stand-ins are stopped. Disk: about 25 GB free under --work-dir at
scale 1.0 (a copy, the ceiling's COPY files and their load); every copy is measured, then dropped.

    python benchmarks/so2010_full.py --data-dir /var/tmp/so2010-1.0            # all of it, scale 1.0
    python benchmarks/so2010_full.py --scale 0.01 --only mssql_to_pg,pg_to_pg  # a subset, smaller

Prints markdown tables, writes them and a PNG bar chart to benchmarks/results/, and prints as its last line one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser, subset  # noqa: E402
from benchmarks.charts import seconds_chart  # noqa: E402
from benchmarks.mssql_to_pg import largest_first, run_ours, warm_up  # noqa: E402
from benchmarks.ours_cli import OursRun, WarmRay, run_cli, warm_ray  # noqa: E402
from benchmarks.pg_to_pg import (  # noqa: E402
    database_mb,
    drop_database,
    like_pgcopydb,
    make_source,
    quiesce,
    run_ceiling,
    run_pgcopydb,
)
from benchmarks.pipeline_ceiling import export_copy_files, run_pipeline_ceiling  # noqa: E402
from benchmarks.procstats import Usage, cpu_table, postmaster_pid  # noqa: E402
from benchmarks.standin_so import StandIn, standin  # noqa: E402
from ray_replicator.embedded import recreate_database, start_embedded_postgres  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("mssql_to_pg", "pipeline_ceiling", "mssql_to_mssql", "pg_to_pg")
DRAIN_CLIENT = "mssql-python"  # the fastest drain in benchmarks/mssql_to_pg.py


class Timed(NamedTuple):
    seconds: float
    usage: Usage
    ours: OursRun | None = None
    """ray-replicator's runs only: the run with its report."""


class Results:
    """Every method's run by key (LABELS), and the sizes of the databases."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.runs: dict[str, Timed] = {}
        self.target_mb: dict[str, float] = {}

    def add(self, key: str, seconds: float, usage: Usage, ours: OursRun | None = None) -> None:
        self.runs[key] = Timed(seconds, usage, ours)
        print(f"{key}: {seconds:.1f} s", file=sys.stderr, flush=True)

    @property
    def ours(self) -> dict[str, OursRun]:
        return {key: run.ours for key, run in self.runs.items() if run.ours is not None}


def _dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def mssql_to_pg(src: StandIn, head: WarmRay, base_url: str, parts: set[str], work: Path, res: Results) -> None:
    """Ours from the stand-in into PostgreSQL, cold and warm, counts and checksums; then the pipeline ceiling from
    the cold counts copy."""
    rows = sum(so.row_counts(res.scale).values())
    postmaster = postmaster_pid(base_url)
    servers = {"stand-in": [src.pid], "postgres": [postmaster]}
    kept = ""
    for verify in ("counts", "checksums") if "mssql_to_pg" in parts else ("counts",):
        for mode in ("cold", "warm") if "mssql_to_pg" in parts else ("cold",):
            url = recreate_database(base_url, f"bench_so_mssql_{verify}_{mode}")
            quiesce(base_url)
            run = run_ours(src, url, None, rows, head if mode == "warm" else None, servers, verify=verify)
            res.add(f"mssql_to_pg {verify} {mode}", run.seconds, run.usage, run)
            if verify == "counts" and mode == "cold":
                res.target_mb["mssql_to_pg"] = database_mb(url)
                kept = url
            else:
                drop_database(base_url, url)
    if "pipeline_ceiling" in parts:
        files = export_copy_files(kept, "dbo", largest_first(res.scale), work / "copyfiles")
        quiesce(base_url)
        res.add("pipeline ceiling", *run_pipeline_ceiling(src, DRAIN_CLIENT, kept, "dbo", files, postmaster, rows))
        shutil.rmtree(work / "copyfiles", ignore_errors=True)
    drop_database(base_url, kept)


def mssql_to_mssql(src: StandIn, head: WarmRay, work: Path, res: Results) -> None:
    """Ours from the stand-in into a second, empty stand-in (its tables in a DuckDB file), cold and warm."""
    rows = sum(so.row_counts(res.scale).values())
    target_dir = work / "mssql-target"
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        with standin(None, data_dir=str(target_dir)) as dst:
            servers = {"stand-in source": [src.pid], "stand-in target": [dst.pid]}
            for mode in ("cold", "warm"):
                run = run_cli(src.url(), dst.url(writer="bulkcopy"), warm=head if mode == "warm" else None,
                              other_roots=servers)  # fmt: skip
                if run.rows != rows:
                    raise SystemExit(f"SQL Server → SQL Server copied {run.rows} rows, expected {rows}")
                res.add(f"mssql_to_mssql {mode}", run.seconds, run.usage, run)
        res.target_mb["mssql_to_mssql (DuckDB file)"] = _dir_mb(target_dir)
    finally:
        shutil.rmtree(target_dir, ignore_errors=True)


def pg_to_pg(args: argparse.Namespace, head: WarmRay, base_url: str, work: Path, res: Results) -> None:
    """The generated PostgreSQL source: the server-side ceiling, pgcopydb, ours cold and warm."""
    source_url, rows = make_source(base_url, args.scale, args.seed)
    res.target_mb["pg source"] = database_mb(source_url)
    servers = {"postgres": [postmaster_pid(base_url)]}
    quiesce(base_url)
    res.add("pg_to_pg ceiling", *run_ceiling(source_url, base_url, work / "pgcopyfiles", servers))
    quiesce(base_url)
    sizes: dict[str, float] = {}
    if (done := run_pgcopydb(source_url, base_url, work / "pgcopydb", sizes, servers)) is not None:
        res.add("pgcopydb", *done)
        res.target_mb["pgcopydb"] = sizes["pgcopydb"]
    for mode in ("cold", "warm"):
        url = like_pgcopydb(recreate_database(base_url, f"bench_so_pg_{mode}"))
        quiesce(base_url)
        run = run_cli(source_url, url, warm=head if mode == "warm" else None, other_roots=servers)
        if run.rows != rows:
            raise SystemExit(f"PostgreSQL → PostgreSQL copied {run.rows} rows, expected {rows}")
        res.add(f"pg_to_pg {mode}", run.seconds, run.usage, run)
        res.target_mb[f"pg_to_pg {mode}"] = database_mb(url)
        drop_database(base_url, url)
    drop_database(base_url, source_url)


def measure(args: argparse.Namespace, parts: set[str], work: Path, res: Results) -> None:
    pg_server, base_url = start_embedded_postgres(work / "pgdata")
    try:
        with warm_ray() as head:
            if parts & {"mssql_to_pg", "pipeline_ceiling", "mssql_to_mssql"}:
                options = {"data_dir": args.data_dir} if args.data_dir else {}
                with standin(args.scale, args.seed, **options) as src:
                    warm_up(src, base_url)
                    if parts & {"mssql_to_pg", "pipeline_ceiling"}:
                        mssql_to_pg(src, head, base_url, parts, work, res)
                    if "mssql_to_mssql" in parts:
                        mssql_to_mssql(src, head, work, res)
            if "pg_to_pg" in parts:  # the stand-in is stopped: one copy of the source in memory at a time
                pg_to_pg(args, head, base_url, work, res)
    finally:
        pg_server.cleanup()


LABELS = {
    "pipeline ceiling": "pipeline ceiling: fastest drain + server-side COPY FROM files, at once, 2 at a time each",
    "mssql_to_pg counts cold": "SQL Server → PostgreSQL, ours cold (Ray start and shutdown included), verify counts",
    "mssql_to_pg counts warm": "SQL Server → PostgreSQL, ours warm (Ray up), verify counts",
    "mssql_to_pg checksums cold": "SQL Server → PostgreSQL, ours cold, verify checksums",
    "mssql_to_pg checksums warm": "SQL Server → PostgreSQL, ours warm, verify checksums",
    "mssql_to_mssql cold": "SQL Server → SQL Server (bulkcopy), ours cold, verify counts",
    "mssql_to_mssql warm": "SQL Server → SQL Server (bulkcopy), ours warm, verify counts",
    "pg_to_pg ceiling": "PostgreSQL → PostgreSQL ceiling: server-side COPY out and in (FREEZE, logged), 2 at a time",
    "pgcopydb": "PostgreSQL → PostgreSQL, pgcopydb clone --table-jobs 2 --index-jobs 2",
    "pg_to_pg cold": "PostgreSQL → PostgreSQL, ours cold, verify counts",
    "pg_to_pg warm": "PostgreSQL → PostgreSQL, ours warm, verify counts",
}


def tables_markdown(args: argparse.Namespace, res: Results, rows: int) -> list[str]:
    keys = [k for k in LABELS if k in res.runs]
    lines = [
        f"StackOverflow2010 scale {args.scale}, {rows:,} rows, one run each",
        "",
        "| method | seconds | rows/s |",
        "|---|---:|---:|",
        *(f"| {LABELS[k]} | {res.runs[k].seconds:.2f} | {rows / res.runs[k].seconds:,.0f} |" for k in keys),
        "",
        "CPU-seconds and peak RSS per process role:",
        "",
        *cpu_table({LABELS[k]: res.runs[k].usage for k in keys}),
        "",
        "Per table rows/s (from each run's report):",
        "",
    ]
    by_name = {k: {t.split(".")[-1]: v for t, v in r.tables.items()} for k, r in res.ours.items()}
    names = list(dict.fromkeys(name for tables in by_name.values() for name in tables))
    lines.append("| table | " + " | ".join(by_name) + " |")
    lines.append("|---|" + "---:|" * len(by_name))
    for name in names:
        cells = [f"{t[name]:,.0f}" if name in t else "" for t in by_name.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Database sizes (MB): " + ", ".join(f"{k} {v:,.1f}" for k, v in res.target_mb.items())]
    return lines


def summary(args: argparse.Namespace, res: Results, rows: int) -> dict[str, object]:
    def s(key: str) -> float | None:
        return round(res.runs[key].seconds, 3) if key in res.runs else None

    def ratio(top: str, bottom: str) -> float | None:
        if top not in res.runs or bottom not in res.runs:
            return None
        return round(res.runs[top].seconds / res.runs[bottom].seconds, 3)

    base = res.ours.get("mssql_to_pg counts cold")
    workers = base.usage.cpu_s.get("ray workers", 0.0) if base else None
    gb = base.report.get("total_bytes", 0) / 1e9 if base else 0.0
    return {
        "mssql_to_pg_cold_s": s("mssql_to_pg counts cold"),
        "mssql_to_pg_warm_s": s("mssql_to_pg counts warm"),
        "mssql_to_pg_checksums_cold_s": s("mssql_to_pg checksums cold"),
        "mssql_to_pg_checksums_warm_s": s("mssql_to_pg checksums warm"),
        "mssql_to_mssql_cold_s": s("mssql_to_mssql cold"),
        "mssql_to_mssql_warm_s": s("mssql_to_mssql warm"),
        "pg_to_pg_cold_s": s("pg_to_pg cold"),
        "pg_to_pg_warm_s": s("pg_to_pg warm"),
        "pgcopydb_s": s("pgcopydb"),
        "pg_ceiling_s": s("pg_to_pg ceiling"),
        "pipeline_ceiling_s": s("pipeline ceiling"),
        "pgcopydb_over_ours_cold": ratio("pgcopydb", "pg_to_pg cold"),
        "pgcopydb_over_ours_warm": ratio("pgcopydb", "pg_to_pg warm"),
        "pipeline_ceiling_over_ours": ratio("pipeline ceiling", "mssql_to_pg counts warm"),
        "pipeline_ceiling_over_ours_cold": ratio("pipeline ceiling", "mssql_to_pg counts cold"),
        "worker_cpu_s_per_m_rows": None if workers is None else round(workers / (rows / 1e6), 3),
        "worker_cpu_s_per_gb": None if workers is None or not gb else round(workers / gb, 3),
        "peak_rss_mb": round(max((r.usage.peak_ours_mb for r in res.ours.values()), default=0.0), 1) or None,
        "rows": rows,
        "scale": args.scale,
        "seed": args.seed,
        "database_mb": res.target_mb,
        "usage": {k: run.usage.to_json() for k, run in res.runs.items()},
        "tables_rows_per_s": {k: r.tables for k, r in res.ours.items()},
    }


def main() -> None:
    parser = scale_parser(__doc__, 1.0)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    parser.add_argument("--data-dir", help="the stand-in's load kept there and reopened by the next run")
    parser.add_argument("--work-dir", help="where PostgreSQL, COPY files and the target stand-in go (default: temp)")
    args = parser.parse_args()
    parts = set(subset(parser, args.only, PARTS))

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    work = Path(tempfile.mkdtemp(prefix="bench-so2010-", dir=args.work_dir))
    os.chmod(work, 0o755)
    res = Results(args.scale)
    try:
        measure(args, parts, work, res)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = sum(so.row_counts(args.scale).values())
    markdown = "\n".join(tables_markdown(args, res, rows))
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    stem = f"so2010_full_scale{args.scale:g}"
    (RESULTS / f"{stem}.md").write_text(markdown + "\n")
    keys = [k for k in LABELS if k in res.runs]
    colors = ["#4d4d4d" if "ceiling" in k else "#ff7f0e" if k == "pgcopydb" else "#2ca02c" for k in keys]
    png = RESULTS / f"{stem}.png"
    seconds_chart(png, [LABELS[k] for k in keys], [res.runs[k].seconds for k in keys], colors,
                  f"ray-replicator, StackOverflow2010 scale {args.scale}, {rows:,} rows", row_height=0.5)  # fmt: skip
    print(f"\nchart: {png}\nmarkdown: {RESULTS / f'{stem}.md'}")
    print(json.dumps(summary(args, res, rows)))


if __name__ == "__main__":
    main()
