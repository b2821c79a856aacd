"""`ray-replicator demo`: the mission from a pip install, nothing else to set up.

A SQL Server stand-in (TDS server over DuckDB, shipped as `mssql_standin`) loaded with a generated
StackOverflow2010 is replicated on a local Ray into an embedded PostgreSQL and into a second stand-in acting as
the SQL Server target; both copies are verified by checksums and reported. Every server it starts is stopped.

The stand-in helpers live here, not in benchmarks/, because the package must never import benchmarks/ and the
benchmarks reuse them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ray_replicator.config import Settings, known_secrets
from ray_replicator.embedded import DEFAULT_DIR, recreate_database, start_embedded_postgres
from ray_replicator.engines.base import EngineError
from ray_replicator.redact import scrub
from ray_replicator.report import RunReport

STANDIN_USER = "sa"
STANDIN_PASSWORD = "Demo!Passw0rd"
STANDIN_DATABASE = "StackOverflow2010"


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def load_stackoverflow(engine: Any, scale: float | None, seed: int) -> None:
    """Runs inside the stand-in's process before clients are let in: generate and load every table vectorised,
    so no row crosses a socket before a measurement starts (scale None: leave it empty).

    It also makes the process skip interpreter teardown once the server has stopped, as `python -m
    mssql_standin` does: destroying DuckDB/Arrow objects at exit intermittently aborts ("terminate called …
    exception not rethrown"), which serve_process's child does not guard against yet.
    """
    atexit.register(_exit_now)
    if scale is None:
        return
    from mssql_standin.types import parse_type
    from ray_replicator.synth import stackoverflow as so

    started = time.perf_counter()
    for t in so.TABLES:
        specs = [parse_type(c.sql_type).column_spec(c.name, nullable=c.nullable) for c in t.columns]
        engine.load_arrow(
            t.name,
            specs,
            so.generate_batches(t.name, scale, seed, batch_rows=so.CHUNK_ROWS),
            primary_key=list(t.pk_columns),
            identity=(1, 1),
        )
    rows = sum(so.row_counts(scale).values())
    elapsed = time.perf_counter() - started
    print(f"stand-in: StackOverflow2010 scale {scale} seed {seed}, {rows:,} rows loaded in {elapsed:.1f} s",
          file=sys.stderr, flush=True)  # fmt: skip


@dataclass(frozen=True)
class StandIn:
    """A running stand-in: where it listens and the mssql:// URL ray-replicator reaches it by."""

    host: str
    port: int
    pid: int
    bulk_dir: str | None = None

    def url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        base = f"mssql://{STANDIN_USER}:{STANDIN_PASSWORD}@{self.host}:{self.port}/{STANDIN_DATABASE}"
        return base + (f"?{query}" if query else "")


@contextlib.contextmanager
def stackoverflow_standin(
    scale: float | None, seed: int = 42, *, bulk_dir: str | None = None, start_timeout: float = 900.0
) -> Iterator[StandIn]:
    """A stand-in on 127.0.0.1 holding StackOverflow2010 at `scale` (None: empty, a target), stopped on exit.

    It runs in a child process: pymssql, mssql-python's bulk copy and ConnectorX hold the GIL while they wait on
    the socket, so a server thread in their own process would starve. The stand-in keeps its data in memory and
    cannot save it, so there is nothing to cache between runs.
    """
    from mssql_standin import serve_process

    with serve_process(
        STANDIN_DATABASE,
        setup=functools.partial(load_stackoverflow, scale=scale, seed=seed),
        start_timeout=start_timeout,
        user=STANDIN_USER,
        password=STANDIN_PASSWORD,
        host="127.0.0.1",
        bulk_dir=bulk_dir,
    ) as srv:
        yield StandIn(srv.host, srv.port, srv.pid, bulk_dir)


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

    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    results: dict[str, RunReport | None] = {}
    with contextlib.ExitStack() as stack:
        rows = sum(row_counts(scale).values())
        console.print(
            f"starting a SQL Server stand-in with a generated StackOverflow2010 (scale {scale}, {rows:,} rows), "
            "a second one as target, and PostgreSQL …"
        )
        source = stack.enter_context(stackoverflow_standin(scale, 42))
        target = stack.enter_context(stackoverflow_standin(None))
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
