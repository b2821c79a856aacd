"""`ray-replicator demo`: everything from a pip install, nothing else.

Starts an embedded PostgreSQL, generates a small StackOverflow2010 into one database, replicates it into a
second one on a local Ray, verifies and prints the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from ray_replicator.config import Settings
from ray_replicator.embedded import recreate_database, start_embedded_postgres


def run_demo(scale: float, console: Console, report_path: Path | None = Path("demo-report.json")) -> None:
    from ray_replicator.pipeline import replicate
    from ray_replicator.synth.stackoverflow import generate

    console.print("starting embedded PostgreSQL …")
    _server, base_url = start_embedded_postgres()
    source_url = recreate_database(base_url, "so_source")
    target_url = recreate_database(base_url, "so_target")
    started = time.perf_counter()
    counts = generate(source_url, scale, 42)
    console.print(
        f"generated StackOverflow2010 at scale {scale}: {sum(counts.values()):,} rows in "
        f"{time.perf_counter() - started:.1f} s"
    )
    settings = Settings.model_validate(
        {
            "source": {"url": source_url},
            "target": {"url": target_url},
            "existing": "drop",
            "report_path": report_path,
        }
    )
    report = replicate(settings)
    report.print(console)
    if report_path is not None:
        json_path, md_path = report.save(report_path)
        console.print(f"report: {json_path} and {md_path}")
    if report.status != "ok":
        from ray_replicator.engines.base import EngineError

        raise EngineError("demo verification failed: " + "; ".join(report.errors))
