"""The `ray-replicator` command: run, plan, verify, generate, demo, status.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config, 130 after SIGINT (Ctrl-C), 143 after SIGTERM. Every
failure prints one line on stderr, no traceback (unless --debug), and never a password; what helps to look into it
(retry notices, Ray's notices, tracebacks) goes to the run's diagnostics log (see ray_replicator.diagnostics).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from ray_replicator import diagnostics, signals
from ray_replicator.config import Settings, known_secrets, load_settings, parse_endpoint
from ray_replicator.engines.base import EngineError, UsageError
from ray_replicator.errors import with_hint
from ray_replicator.events import Event, RayStarted, failure_line
from ray_replicator.progress import plain_console
from ray_replicator.record import SchemaChange
from ray_replicator.redact import hide_secrets_in_process_title, scrub
from ray_replicator.report import RunReport

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
err = plain_console(stderr=True)
out = plain_console()

SourceOpt = Annotated[str | None, typer.Option("--source", help="source URL (postgresql://… or mssql://…)")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="target URL")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file")]
TablesOpt = Annotated[list[str] | None, typer.Option("--tables", help="glob over schema.table (repeatable)")]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", help="glob to leave out (repeatable)")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
JsonLogsOpt = Annotated[bool, typer.Option("--json-logs", help="print one JSON object per pipeline event to stderr")]
ChecksumsOpt = Annotated[
    bool, typer.Option("--checksums", help="compare checksums of every value, not only row counts")
]


def _fail(exc: BaseException, debug: bool, settings: Settings | None = None, secrets: list[str] | None = None) -> None:
    """Stop the local Ray, print the one line, exit with the documented code."""
    known = [*known_secrets(settings), *(secrets or [])]
    _stop_ray()
    if debug:
        err.print(scrub(traceback.format_exc(), known), markup=False, end="")
    if isinstance(exc, KeyboardInterrupt):
        code, text = _interrupted(exc)
    else:
        code = exc.exit_code if isinstance(exc, EngineError) else 1
        text = with_hint(failure_line(exc))
    err.print(f"error: {scrub(text, known)}", markup=False)
    raise typer.Exit(code)


class _OneLineFailures:
    """Inside a command: an EngineError or a signal ends it with the one line and the exit code (see _fail),
    scrubbed of the passwords of the settings or endpoint the command had read by then.

    usage_errors: exception types that mean bad input here (exit 2, as a UsageError)."""

    def __init__(self, debug: bool, usage_errors: tuple[type[Exception], ...] = ()) -> None:
        self.debug = debug
        self.usage_errors = usage_errors
        self.settings: Settings | None = None
        self.secrets: list[str] = []

    def __enter__(self) -> _OneLineFailures:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if isinstance(exc, self.usage_errors) and not isinstance(exc, EngineError):
            exc = UsageError(str(exc))
        if isinstance(exc, EngineError | KeyboardInterrupt):
            _fail(exc, self.debug, self.settings, self.secrets)


def _interrupted(exc: KeyboardInterrupt) -> tuple[int, str]:
    """130 after SIGINT, 143 after SIGTERM (128 + the signal, as shells report a process a signal ended)."""
    signum = exc.signum if isinstance(exc, signals.Interrupted) else signal.SIGINT
    text = f"interrupted by {signal.Signals(signum).name}"
    if getattr(exc, "in_ledger", False):
        text += (
            "; ranges already committed are recorded in the target's ledger: "
            "run the same command with --resume to continue"
        )
    return 128 + signum, text


def _stop_ray() -> None:
    """Shut down the Ray this process started (or leave the cluster it joined) before the process ends, so no
    local Ray process outlives the run, whichever way it ends."""
    ray = sys.modules.get("ray")
    if ray is None:
        return
    with contextlib.suppress(Exception):
        if ray.is_initialized():
            ray.shutdown()


def _settings(
    config: Path | None,
    source: str | None,
    target: str | None,
    tables: list[str] | None,
    exclude: list[str] | None,
    **flags: Any,
) -> Settings:
    """The command's settings: its flags (None where not given) over the config file and the environment."""
    return load_settings(config, {"source": source, "target": target, "tables": tables, "exclude": exclude, **flags})


@app.command()
def run(
    source: SourceOpt = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    exclude: ExcludeOpt = None,
    existing: Annotated[str | None, typer.Option(help="fail | truncate | drop")] = None,
    keys: Annotated[str | None, typer.Option(help="after-load | before-load")] = None,
    parallelism: Annotated[int | None, typer.Option(help="copy tasks in flight (0 = CPUs)")] = None,
    copy_method: Annotated[str | None, typer.Option("--method", help="auto | arrow | raw")] = None,
    verify: Annotated[str | None, typer.Option(help="checksums | counts | none")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the last unfinished run in the target")] = False,
    spill_dir: Annotated[
        Path | None, typer.Option("--spill-dir", help="spill batches here when the target is slower than the source")
    ] = None,
    memory_cap_mb: Annotated[int | None, typer.Option("--memory-cap-mb", help="bytes in flight per copy task")] = None,
    report: Annotated[Path | None, typer.Option(help="where to write the JSON report (.md beside it)")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address")] = None,
    json_logs: JsonLogsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Copy schema, data, keys, indexes and sequences; verify; print and save the report."""
    with _OneLineFailures(debug) as failures:
        failures.settings = settings = _settings(
            config,
            source,
            target,
            tables,
            exclude,
            existing=existing,
            keys=keys,
            parallelism=parallelism,
            copy_method=copy_method,
            verify=verify,
            resume=resume or None,
            spill_dir=spill_dir,
            memory_cap_mb=memory_cap_mb,
            report_path=report,
            ray_address=address,
        )
        _start_diagnostics(settings, settings.report_path)
        _run(settings, json_logs)
    _stop_ray()


def _start_diagnostics(settings: Settings, beside: Path | None) -> None:
    """Diagnostics beside the report when there is one, else in Ray's session log directory."""
    diagnostics.start(beside, lambda text: scrub(text, known_secrets(settings)))


def _run(settings: Settings, json_logs: bool = False) -> None:
    from ray_replicator.pipeline import replicate
    from ray_replicator.progress import progress_for_cli

    with progress_for_cli(json_logs, out) as progress:

        def on_event(event: Event) -> None:
            if isinstance(event, RayStarted):  # emitted right after Ray started, which took SIGTERM over
                signals.reclaim()
            progress(event)

        try:
            result = replicate(settings, on_event=on_event)
        except EngineError as exc:
            progress.fail(scrub(failure_line(exc), known_secrets(settings)))
            _stopped_report(exc, settings)
            raise
        except KeyboardInterrupt as exc:
            _stopped_report(exc, settings)
            raise
    result.print(out)
    if settings.report_path is not None:
        try:
            json_path, md_path = result.save(settings.report_path)
        except OSError as exc:
            raise UsageError(
                f"cannot write the report to {settings.report_path} ({exc.strerror}); pass --report FILE.json"
            ) from None
        out.print(f"report: {json_path} and {md_path}")
    if result.status != "ok":
        raise EngineError(f"verification ({settings.verify}) failed: {'; '.join(result.errors)[:500]}")


def _stopped_report(exc: BaseException, settings: Settings) -> None:
    """A run that stopped after its plan: its report (status, reason, each table's state, what to do next) on
    stdout and in the report file; stderr keeps its one line. A report that cannot be written is logged only."""
    report: RunReport | None = getattr(exc, "report", None)
    if report is None:
        return
    report.print(out)
    if settings.report_path is None:
        return
    try:
        json_path, md_path = report.save(settings.report_path)
    except OSError as error:
        diagnostics.log.warning("could not write the report to %s: %s", settings.report_path, error.strerror)
        return
    out.print(f"report ({report.status}): {json_path} and {md_path}", markup=False)


@app.command()
def plan(
    source: SourceOpt = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    exclude: ExcludeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    debug: DebugOpt = False,
) -> None:
    """Print the partition plan (tables, ranges, estimated rows/bytes) and, with a target, how each target table
    will differ from its source (schema changes); moves nothing."""
    with _OneLineFailures(debug) as failures:
        failures.settings = settings = _settings(config, source, target, tables, exclude)
        from ray_replicator.pipeline import plan_only

        the_plan, excluded, changes = plan_only(settings)
    if as_json:
        rows = [
            {
                "range": r.range_id,
                "kind": r.kind,
                "columns": list(r.columns),
                "lower": r.lower,
                "upper": r.upper,
                "estimated_rows": r.estimated_rows,
                "estimated_bytes": r.estimated_bytes,
                "lead": r.lead,
            }
            for r in the_plan.ranges
        ]
        document = {"plan_hash": the_plan.plan_hash(), "ranges": rows, "schema_changes": [c.to_json() for c in changes]}
        out.print_json(json.dumps(document, default=str))
        return
    from rich.table import Table as RichTable

    table = RichTable(title=f"plan {the_plan.plan_hash()}: {len(the_plan.ranges)} ranges, largest first")
    for name in ("order", "range", "kind", "from", "to", "est. rows", "est. MB"):
        table.add_column(name)
    for order, r in enumerate(the_plan.ranges, 1):
        table.add_row(
            str(order),
            r.range_id,
            f"{r.kind} (lead)" if r.lead else r.kind,
            "" if r.lower is None else str(r.lower),
            "" if r.upper is None else str(r.upper),
            f"{r.estimated_rows:,}",
            f"{r.estimated_bytes / 1e6:,.1f}",
        )
    out.print(table)
    if excluded:
        out.print("excluded by filters: " + ", ".join(excluded))
    if settings.target is not None:
        _print_schema_changes(changes)


def _print_schema_changes(changes: list[SchemaChange]) -> None:
    """Per table, how the target table will differ from its source."""
    out.print(f"schema changes: {len(changes)}" + ("" if changes else " (every table is created as its source)"))
    tables: dict[str, list[SchemaChange]] = {}
    for change in changes:
        tables.setdefault(change.table, []).append(change)
    for name, table_changes in tables.items():
        out.print(f"  {name}:", markup=False)
        for change in table_changes:
            out.print(f"    {change.line()}", markup=False)


@app.command("verify")
def verify_cmd(
    source: SourceOpt = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    exclude: ExcludeOpt = None,
    checksums: ChecksumsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compare source and target range by range (row counts, or checksums); exit 1 on any mismatch."""
    with _OneLineFailures(debug) as failures:
        level = "checksums" if checksums else "counts"
        failures.settings = settings = _settings(config, source, target, tables, exclude, verify=level)
        from ray_replicator.pipeline import verify_only

        _start_diagnostics(settings, None)
        results = verify_only(settings)
    _stop_ray()
    bad = 0
    for name, src, dst, mismatches in results:
        ok = src == dst and not mismatches
        bad += not ok
        out.print(f"{'ok  ' if ok else 'DIFF'} {name}: source {src:,} rows, target {dst:,} rows", markup=False)
        for m in mismatches:
            out.print(f"     {m}", markup=False)
    what = "row counts of every range" if level == "counts" else "checksums of every value"
    out.print(f"verify ({level}): compared {what} in {len(results)} table(s), {bad} differ", markup=False)
    if bad:
        err.print(f"error: {bad} table(s) differ between source and target ({level})", markup=False)
        raise typer.Exit(1)


@app.command()
def generate(
    target: Annotated[str, typer.Option("--target", help="database URL to write into")],
    scale: Annotated[float, typer.Option(help="1.0 = 19.3 M rows")] = 0.01,
    seed: Annotated[int, typer.Option(help="same seed, same data")] = 42,
    debug: DebugOpt = False,
) -> None:
    """Write a synthetic StackOverflow2010 database."""
    with _OneLineFailures(debug, usage_errors=(ValueError,)) as failures:
        if scale <= 0:
            raise UsageError(f"--scale must be positive, got {scale}")
        endpoint = parse_endpoint(target, "target")
        failures.secrets = endpoint.secrets()
        from ray_replicator.synth.stackoverflow import generate as generate_db

        counts = generate_db(endpoint.resolved_url(), scale, seed)
    for name, rows in counts.items():
        out.print(f"{name}: {rows:,} rows", markup=False)


@app.command()
def demo(
    scale: Annotated[float, typer.Option(help="size of the generated StackOverflow2010")] = 0.01,
    debug: DebugOpt = False,
) -> None:
    """Embedded default: a SQL Server stand-in with a generated StackOverflow2010, replicated into embedded
    PostgreSQL and into a second stand-in, verified and reported."""
    with _OneLineFailures(debug):
        from ray_replicator.demo import run_demo

        run_demo(scale, out)
    _stop_ray()


@app.command()
def status(
    target: TargetOpt = None,
    config: ConfigOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
    debug: DebugOpt = False,
) -> None:
    """Show the ledger of the latest (or a given) run kept in the target database."""
    with _OneLineFailures(debug) as failures:
        from ray_replicator.engines import open_target

        if target is None and config is None:
            raise UsageError("status needs --target URL or --config FILE")
        endpoint = (
            parse_endpoint(target, "target")
            if target
            else load_settings(config, {"source": "postgresql://unused"}).target_endpoint
        )
        failures.secrets = endpoint.secrets()
        tgt = open_target(endpoint.resolved_url())
        try:
            runs = tgt.ledger.runs()
            if not runs:
                out.print("no runs recorded in this target")
                return
            run = next((r for r in runs if r["run_id"] == run_id), None) if run_id else runs[0]
            if run is None:
                raise UsageError(f"no run {run_id!r} in this target's ledger")
            ranges = tgt.ledger.ranges(run["run_id"])
        finally:
            tgt.close()
    states: dict[str, int] = {}
    for info in ranges.values():
        states[info["state"]] = states.get(info["state"], 0) + 1
    out.print(
        f"run {run['run_id']}: {run['state']} (plan {run['plan_hash']}), ranges: "
        + ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
        markup=False,
    )


def main() -> None:
    signals.install()
    hide_secrets_in_process_title()
    try:
        app()
    except KeyboardInterrupt as exc:  # a signal outside a command's own handling (parsing its options)
        _stop_ray()
        code, text = _interrupted(exc)
        err.print(f"error: {text}", markup=False)
        _exit_now(code)
    except SystemExit as done:
        if _busy_threads():
            _exit_now(done.code if isinstance(done.code, int) else 1)
        raise


def _busy_threads() -> bool:
    """Threads the interpreter would wait for at exit: a finalize job left running by a failed or interrupted run
    (an index build can take minutes, longer than systemd or Kubernetes wait after SIGTERM)."""
    return any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate())


def _exit_now(code: int) -> None:
    """Exit without waiting for abandoned threads: their connections close with the process, the server rolls
    their statements back, and `--resume` redoes what they did not finish (every finalize step checks what
    exists). The ledger already says how the run ended."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
