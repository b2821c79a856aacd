"""Peak memory of copy workers and of the driver, at two sizes of a generated StackOverflow2010.

The byte budget (memory_cap_mb per copy task) should keep a copy worker's peak RSS flat as the database grows:
what a worker holds is a few batches, not a table. Each scale runs in a fresh driver process with a fresh local
Ray (workers are reused across runs, and ru_maxrss never goes down), so the figures of one scale do not leak into
the other. Generation happens beforehand in this process and is not measured.

    python benchmarks/memory.py                      # scales 0.05 and 0.25, default cap
    python benchmarks/memory.py --scales 0.01 0.05 --cap-mb 64

Prints a table, then as its last line one JSON object with worker_peak_mb_small/large, driver_peak_mb_small/large
and cap_mb.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
PGDATA = Path(os.environ.get("RAY_REPLICATOR_BENCH_PGDATA", "/tmp/ray-replicator-bench-memory-pg"))


def other_benchmarks() -> list[str]:
    """Benchmarks running now besides this one: their numbers and ours would both be wrong."""
    me = {os.getpid(), os.getppid()}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if proc.info["pid"] not in me and "benchmarks/" in cmd and "benchmarks/memory.py" not in cmd:
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def measure_one(source_url: str, target_url: str, cap_mb: int) -> dict[str, Any]:
    """One replication in this (fresh) process with a fresh local Ray; returns the peaks."""
    import ray

    from ray_replicator.config import Settings
    from ray_replicator.pipeline import replicate

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        started = time.perf_counter()
        report = replicate(
            Settings.model_validate(
                {
                    "source": {"url": source_url},
                    "target": {"url": target_url},
                    "existing": "drop",
                    "memory_cap_mb": cap_mb,
                    "verify": "counts",
                    "report_path": None,
                }
            )
        )
        seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    if report.status != "ok":
        raise SystemExit(f"replication failed: {report.errors}")
    workers: dict[str, float] = report.workers["peak_rss_mb"]
    return {
        "rows": report.total_rows,
        "mb": round(report.total_bytes / 1e6, 1),
        "seconds": round(seconds, 2),
        "worker_peak_mb": round(max(workers.values()), 1),
        "workers": {k: round(v, 1) for k, v in workers.items()},
        "peak_buffer_mb": report.workers.get("peak_buffer_mb", 0.0),
        "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs=2, default=[0.05, 0.25], metavar=("SMALL", "LARGE"))
    parser.add_argument("--cap-mb", type=int, default=None, help="memory_cap_mb per copy task (default: config's)")
    parser.add_argument("--one", nargs=3, metavar=("SOURCE", "TARGET", "CAP"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        source, target, cap = args.one
        print(json.dumps(measure_one(source, target, int(cap))))
        return

    busy = other_benchmarks()
    if busy:
        raise SystemExit("another benchmark is running; run this one alone:\n" + "\n".join(busy))

    from ray_replicator.config import Settings
    from ray_replicator.embedded import recreate_database, start_embedded_postgres
    from ray_replicator.synth.stackoverflow import generate

    cap = args.cap_mb or Settings.model_fields["memory_cap_mb"].default
    _server, base = start_embedded_postgres(PGDATA)
    results = {}
    for label, scale in zip(("small", "large"), args.scales, strict=True):
        source = recreate_database(base, f"mem_src_{label}")
        target = recreate_database(base, f"mem_dst_{label}")
        t0 = time.perf_counter()
        generate(source, scale, 42)
        print(f"generated scale {scale} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, __file__, "--one", source, target, str(cap)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"scale {scale} failed: {done.stderr[-2000:]}")
        results[label] = {"scale": scale, **json.loads(done.stdout.strip().splitlines()[-1])}

    print(f"| scale | rows | MB | seconds | worker peak RSS MB | driver peak RSS MB | peak buffered MB (cap {cap}) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(
            f"| {r['scale']} | {r['rows']:,} | {r['mb']:,} | {r['seconds']} | {r['worker_peak_mb']} "
            f"| {r['driver_peak_mb']} | {r['peak_buffer_mb']} |"
        )
    for label, r in results.items():
        print(f"{label}: per worker {r['workers']}")
    print(
        json.dumps(
            {
                "worker_peak_mb_small": results["small"]["worker_peak_mb"],
                "worker_peak_mb_large": results["large"]["worker_peak_mb"],
                "driver_peak_mb_small": results["small"]["driver_peak_mb"],
                "driver_peak_mb_large": results["large"]["driver_peak_mb"],
                "rows_small": results["small"]["rows"],
                "rows_large": results["large"]["rows"],
                "cap_mb": cap,
            }
        )
    )


if __name__ == "__main__":
    main()
