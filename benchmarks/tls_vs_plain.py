"""TLS against plain on the same data: SQL Server → PostgreSQL with encrypt=no and encrypt=yes, and drains.

One SQL Server stand-in (own process, 127.0.0.1, `--encryption off`: SQL Server's default, the login is always
encrypted and the client decides for the rest) holds a generated StackOverflow2010; one embedded PostgreSQL is
the target. Interleaved rounds of:
  drain     every table read and discarded, 2 tables at a time in 2 processes, with each reader
            (mssql-python Arrow batches, pymssql tuples), plain and with the whole session in TLS;
  copy      ray-replicator with each reader, `encrypt=no` and `encrypt=yes&trust_server_certificate=yes`
            (verify counts; Ray already running, as on a cluster).
Both sides ask for the same packet size (16,000 bytes, what ray-replicator asks for), so the difference is TLS.
Prints a markdown table (medians of the rounds) and, as its last line, one JSON object.

    python benchmarks/tls_vs_plain.py --scale 0.1 [--repeat 3]
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser  # noqa: E402
from benchmarks.mssql_drain import drain_tables  # noqa: E402
from benchmarks.pg_to_pg import drop_database, median, quiesce  # noqa: E402
from benchmarks.standin_so import StandIn, standin  # noqa: E402
from benchmarks.timed import timed_replicate  # noqa: E402
from ray_replicator.embedded import recreate_database, start_embedded_postgres  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

READERS = ("mssql-python", "pymssql")
MODES = ("plain", "tls")
PACKET_SIZE = 16000


def run_drain(src: StandIn, tables: list[str], client: str, tls: bool, expected: int) -> float:
    rows, elapsed = drain_tables(src, tables, client, tls, PACKET_SIZE)
    if rows != expected:
        raise SystemExit(f"drain with {client} ({'tls' if tls else 'plain'}) read {rows} rows, expected {expected}")
    return elapsed


def _source_url(src: StandIn, reader: str, tls: bool) -> str:
    extra = {"encrypt": "yes", "trust_server_certificate": "yes"} if tls else {"encrypt": "no"}
    return src.url(reader=reader, **extra)


def run_copy(src: StandIn, target_url: str, reader: str, tls: bool, expected: int, **extra: Any) -> float:
    report, elapsed = timed_replicate(
        {"source": {"url": _source_url(src, reader, tls)}, "target": {"url": target_url}, "verify": "counts",
         "report_path": None, **extra}
    )  # fmt: skip
    if report.status != "ok" or (expected and report.total_rows != expected):
        raise SystemExit(f"copy reader={reader} tls={tls}: {report.status}, {report.total_rows} rows: {report.errors}")
    return elapsed


def main() -> None:
    parser = scale_parser(__doc__, 0.1)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    scratch = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    os.chmod(scratch, 0o755)
    pg_server, base_url = start_embedded_postgres(scratch / "pgdata")
    counts = so.row_counts(args.scale)
    rows = sum(counts.values())
    tables = sorted(counts, key=lambda t: -counts[t] * {"Posts": 12.0, "Comments": 2.0, "Users": 2.0}.get(t, 1.0))
    load_start = os.getloadavg()
    import ray

    drains: dict[tuple[str, str], list[float]] = {(c, m): [] for c in READERS for m in MODES}
    copies: dict[tuple[str, str], list[float]] = {(r, m): [] for r in READERS for m in MODES}
    try:
        with standin(args.scale, args.seed, encryption="off") as src:
            ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
            for reader in READERS:  # the workers' first imports and TLS set-up are not timed
                for mode in MODES:
                    warm = recreate_database(base_url, f"bench_tls_warm_{reader.replace('-', '_')}_{mode}")
                    run_copy(src, warm, reader, mode == "tls", 0, tables=["dbo.LinkTypes"], existing="drop")
            for run in range(args.repeat):  # interleaved, so a noisy spell on the box hits every variant alike
                for client in READERS:
                    for mode in MODES:
                        quiesce(base_url)
                        drains[(client, mode)].append(run_drain(src, tables, client, mode == "tls", rows))
                for reader in READERS:
                    for mode in MODES:
                        # a fresh name each time: Ray workers keep connections to the databases they wrote
                        url = recreate_database(base_url, f"bench_tls_{reader.replace('-', '_')}_{mode}_{run}")
                        quiesce(base_url)
                        copies[(reader, mode)].append(run_copy(src, url, reader, mode == "tls", rows))
                        drop_database(base_url, url)
        load_end = os.getloadavg()
    finally:
        if ray.is_initialized():
            ray.shutdown()
        pg_server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)

    drain = {k: median(v) for k, v in drains.items()}
    copy = {k: median(v) for k, v in copies.items()}
    lines = [
        f"SQL Server stand-in → PostgreSQL, StackOverflow2010 scale {args.scale}, {rows:,} rows; median of "
        f"{args.repeat} interleaved rounds; packets of {PACKET_SIZE} bytes; load average {load_start[0]:.2f} "
        f"before / {load_end[0]:.2f} after",
        "",
        "| what | reader | plain s | TLS s | plain rows/s | TLS rows/s | TLS / plain |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for what, results in (("drain (2 tables at a time)", drain), ("ray-replicator copy, verify counts", copy)):
        for reader in READERS:
            plain, tls = results[(reader, "plain")], results[(reader, "tls")]
            lines.append(
                f"| {what} | {reader} | {plain:.2f} | {tls:.2f} | {rows / plain:,.0f} | {rows / tls:,.0f} "
                f"| {tls / plain:.2f} |"
            )
    print("\n".join(lines))
    summary = {
        "benchmark": "tls_vs_plain",
        "scale": args.scale,
        "rows": rows,
        "repeat": args.repeat,
        "packet_size": PACKET_SIZE,
        "drain_s": {f"{r} {m}": round(v, 3) for (r, m), v in drain.items()},
        "copy_s": {f"{r} {m}": round(v, 3) for (r, m), v in copy.items()},
        "drain_runs": {f"{r} {m}": [round(x, 3) for x in v] for (r, m), v in drains.items()},
        "copy_runs": {f"{r} {m}": [round(x, 3) for x in v] for (r, m), v in copies.items()},
        "load_average": [round(load_start[0], 2), round(load_end[0], 2)],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
