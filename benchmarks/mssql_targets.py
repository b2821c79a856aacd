"""SQL Server as a target: ray-replicator's three writers side by side, from one stand-in into another.

A loaded stand-in (source) and an empty one (target, with a bulk directory BULK INSERT may read) run in their own
processes on 127.0.0.1; the target's tables are dropped and recreated for each writer:
  bulkcopy      mssql-python TDS bulk load of Arrow batches (INSERT BULK, KEEP_IDENTITY, KEEP_NULLS, TABLOCK);
  bulk-insert   CSV files written into the shared bulk directory, loaded by BULK INSERT … FROM;
  insert        1,000-row INSERT … VALUES statements under IDENTITY_INSERT.
Each copy is then checked outside the clock: row counts, and an order-independent sum of an MD5 of every row,
read back from both servers with mssql-python. Prints a markdown table, writes it and a PNG bar chart to
benchmarks/results/, and prints as its last line one JSON object.

    python benchmarks/mssql_targets.py --scale 0.05
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser, subset  # noqa: E402
from benchmarks.charts import seconds_chart  # noqa: E402
from benchmarks.standin_so import StandIn, mssql_python_connect, standin  # noqa: E402
from benchmarks.timed import timed_replicate  # noqa: E402
from ray_replicator.config import Settings  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WRITERS = {
    "bulkcopy": "bulk load (mssql-python bulkcopy, TDS INSERT BULK)",
    "bulk-insert": "BULK INSERT of CSV files from a shared directory",
    "insert": "INSERT … VALUES, 1,000 rows a statement",
}
JSON_KEYS = {"bulkcopy": "bulk_load_s", "bulk-insert": "bulk_insert_files_s", "insert": "insert_values_s"}


def table_digest(srv: StandIn, table: so.SynthTable) -> tuple[int, int]:
    """(rows, sum of the first 8 bytes of MD5(repr(row)) mod 2**64): equal only if every row is equal."""
    conn = mssql_python_connect(srv)
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join(f'[{c}]' for c in table.column_names)} FROM dbo.[{table.name}]")
    rows, total = 0, 0
    while (batch := cur.arrow_batch(65_536)).num_rows:
        for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
            total += int.from_bytes(hashlib.md5(repr(row).encode()).digest()[:8], "little")
        rows += batch.num_rows
    conn.close()
    return rows, total % 2**64


def database_digest(srv: StandIn) -> dict[str, tuple[int, int]]:
    return {t.name: table_digest(srv, t) for t in so.TABLES}


def run_writer(src: StandIn, dst: StandIn, writer: str, expected: int) -> float:
    options = {"writer": writer, **({"bulk_dir": dst.bulk_dir} if writer == "bulk-insert" and dst.bulk_dir else {})}
    report, elapsed = timed_replicate(
        {
            "source": {"url": src.url()},
            "target": {"url": dst.url(**options)},
            "existing": "drop",
            "verify": "counts",
            "report_path": None,
        }
    )
    if report.status != "ok" or report.total_rows != expected:
        raise SystemExit(f"writer={writer}: {report.status}, {report.total_rows} rows: {report.errors}")
    return elapsed


def warm_ray_workers(src: StandIn, dst: StandIn) -> None:
    """Copy one tiny table with each writer first, so no timed run pays the workers' first imports."""
    from ray_replicator.pipeline import replicate

    for writer in WRITERS:
        options = {"writer": writer, **({"bulk_dir": dst.bulk_dir} if writer == "bulk-insert" and dst.bulk_dir else {})}
        settings = Settings.model_validate(
            {"source": {"url": src.url()}, "target": {"url": dst.url(**options)}, "tables": ["dbo.LinkTypes"],
             "existing": "drop", "verify": "counts", "report_path": None}
        )  # fmt: skip
        replicate(settings)


def main() -> None:
    parser = scale_parser(__doc__, 0.05)
    parser.add_argument("--writers", default=",".join(WRITERS), help="comma-separated subset of " + ",".join(WRITERS))
    parser.add_argument("--bulk-dir", help="directory shared by this process and the target stand-in (default: temp)")
    args = parser.parse_args()
    writers = subset(parser, args.writers, list(WRITERS))

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    load_start = os.getloadavg()
    bulk_dir = args.bulk_dir or tempfile.mkdtemp(prefix="bench-mssql-bulk-")
    os.makedirs(bulk_dir, exist_ok=True)
    os.chmod(bulk_dir, 0o777)
    rows = sum(so.row_counts(args.scale).values())
    import ray

    seconds: dict[str, float] = {}
    exact: dict[str, str] = {}
    try:
        with standin(args.scale, args.seed) as src, standin(None, bulk_dir=bulk_dir) as dst:
            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
            ray_start_s = time.perf_counter() - t0
            want = database_digest(src)
            warm_ray_workers(src, dst)
            for writer in writers:
                seconds[writer] = run_writer(src, dst, writer, rows)
                print(f"{writer}: {seconds[writer]:.1f} s", file=sys.stderr)
                got = database_digest(dst)
                bad = [t for t in want if want[t] != got.get(t)]
                exact[writer] = "exact: counts and row hashes equal" if not bad else "DIFFERS in " + ", ".join(bad)
            load_end = os.getloadavg()
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if not args.bulk_dir:
            shutil.rmtree(bulk_dir, ignore_errors=True)

    slowest = seconds.get("insert", max(seconds.values()))
    best = min(seconds, key=lambda w: seconds[w])
    title = f"SQL Server stand-in → SQL Server stand-in, StackOverflow2010 scale {args.scale}, {rows:,} rows"
    lines = [
        f"{title}, one run each, load average {load_start[0]:.2f} before / {load_end[0]:.2f} after",
        "",
        "| writer | seconds | rows/s | speed-up over INSERT | result |",
        "|---|---:|---:|---:|---|",
    ]
    for writer, took in seconds.items():
        lines.append(
            f"| writer={writer}: {WRITERS[writer]} | {took:.2f} | {rows / took:,.0f} | {slowest / took:.2f} "
            f"| {exact[writer]} |"
        )
    lines.append(f"| (Ray start-up, not included above) | {ray_start_s:.2f} | | | |")
    markdown = "\n".join(lines)
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    stem = f"mssql_targets_scale{args.scale:g}"
    (RESULTS / f"{stem}.md").write_text(markdown + "\n")
    png = RESULTS / f"{stem}.png"
    labels = [f"writer={w}" for w in seconds]
    colors = ["#2ca02c", "#1f77b4", "#d62728"][: len(labels)]
    seconds_chart(
        png, labels, list(seconds.values()), colors, f"{title}, load average {load_end[0]:.1f}", row_height=0.6
    )
    print(f"\nchart: {png}\nmarkdown: {RESULTS / f'{stem}.md'}")

    summary: dict[str, object] = {JSON_KEYS[w]: round(s, 3) for w, s in seconds.items()}
    summary.update(
        {
            "best_writer": best,
            "best_over_insert": round(seconds["insert"] / seconds[best], 3) if "insert" in seconds else None,
            "exact": exact,
            "rows": rows,
            "scale": args.scale,
            "seed": args.seed,
            "ray_start_s": round(ray_start_s, 3),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in load_end],
        }
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
