"""A run as an object: catalog → plan → prepare → copy → finalize → verify → report, one method per stage over
one RunState.

Everything that decides runs here, on the driver; Ray tasks only move, finalize or count one thing each.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator

import ray

from ray_replicator import diagnostics, local_ray
from ray_replicator.catalog import copy_computed
from ray_replicator.choices import (
    choose_method,
    choose_tables,
    compare_tables,
    copy_slots,
    ensure_ray,
    load_catalog,
    make_plan,
    map_table,
    ray_slots,
)
from ray_replicator.config import Settings, known_secrets
from ray_replicator.copy_stage import CopyStage, counted_checks
from ray_replicator.engines import ENGINE_MODULES, capabilities_of, engine_of, open_source, open_target, source_url_for
from ray_replicator.engines.base import EngineError
from ray_replicator.events import (
    Event,
    FinalizeStarted,
    OnEvent,
    PlanMade,
    RayStarted,
    RunDone,
    RunFailed,
    TablePlan,
    VerifyStarted,
    failure_line,
)
from ray_replicator.ledger import find_resume, plan_document
from ray_replicator.plan import schema_hash
from ray_replicator.preflight import check_report_path, check_spill_dir, check_target_shape
from ray_replicator.redact import scrub
from ray_replicator.report import RunReport
from ray_replicator.retry import retrying
from ray_replicator.run_record import (
    name_target_constraints,
    plan_with_changes,
    record_tables,
    resumed_changes,
    stopped_report,
    stored_changes,
    write_options,
)
from ray_replicator.run_state import RunState, fresh_target
from ray_replicator.signals import Interrupted
from ray_replicator.typemap import apply_type_policy
from ray_replicator.verify import TableCheck, target_read_url


def ignore(_event: Event) -> None:
    """The on_event of a caller that watches nothing."""


class Run:
    """One replication.

    will_save_report: the caller saves the report to settings.report_path afterwards (the CLI does), so that
    path is probed before the target changes; the Python API returns the report and writes no file."""

    def __init__(self, settings: Settings, emit: OnEvent = ignore, will_save_report: bool = True) -> None:
        self.settings = settings
        self.emit = emit
        self.will_save_report = will_save_report
        self.state = RunState(settings=settings, run_id=settings.run_id or uuid.uuid4().hex[:12])
        self.plan_slots = 0
        self.chosen: tuple[list[tuple[str, str]], list[str]] | None = None
        self.ray_start: local_ray.RayStart | None = None
        """A local Ray starting in the background until prepare has waited for it."""

    def execute(self) -> RunReport:
        """Run every stage and return the report; raises EngineError/UsageError with one-line messages.

        However the run stops after the ledger knows it, the ledger says how: `interrupted` (Ctrl-C, SIGTERM) or
        `failed` (any error, also one that is not ours, which then becomes a one-line EngineError), so `--resume`
        finds it and `status` does not show a run `running` that no process runs any more.

        A run that stops after its plan still has a report: status failed or interrupted, the reason, each table's
        state and what the target needs next. It rides on the exception as `report` (the CLI saves it)."""
        ledger = self.state.ledger
        try:
            return self._stages()
        except KeyboardInterrupt as exc:
            in_ledger = ledger.run_id is not None
            exc.in_ledger = in_ledger  # type: ignore[attr-defined]
            ledger.note("interrupted")
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            self._stopped(exc, "interrupted", f"interrupted by {signal.Signals(signum).name}", in_ledger)
            raise
        except EngineError as exc:
            in_ledger = ledger.run_id is not None
            ledger.note("failed")
            line = scrub(failure_line(exc), known_secrets(self.settings))
            self.emit(RunFailed(error=line))
            self._stopped(exc, "failed", line, in_ledger)
            raise
        except Exception as exc:
            in_ledger = ledger.run_id is not None
            ledger.note("failed")
            diagnostics.log.error("the run failed unexpectedly", exc_info=True)
            line = scrub(failure_line(exc), known_secrets(self.settings))
            error = EngineError(f"unexpected {type(exc).__name__}: {line}")
            self.emit(RunFailed(error=str(error)))
            self._stopped(error, "failed", str(error), in_ledger)
            raise error from exc

    def _stopped(self, exc: BaseException, status: str, reason: str, in_ledger: bool) -> None:
        """The report of a run that stopped, on the exception (never hides the run's own error)."""
        try:
            report = stopped_report(self.state, status, reason, in_ledger)
        except Exception:  # noqa: BLE001 - the run's own error is the one to show
            diagnostics.log.warning("could not make the report of the stopped run", exc_info=True)
            return
        if report is not None:
            report.phases = self.state.phases
            report.seconds = time.perf_counter() - self.state.started
            exc.report = report  # type: ignore[attr-defined]

    def _stages(self) -> RunReport:
        state, settings = self.state, self.settings
        state.target_url = settings.target_endpoint.resolved_url()
        state.source_url = source_url_for(settings.source.resolved_url(), state.target_url)
        self.plan_slots = copy_slots(settings)  # before Ray is up, however fast it comes up
        with contextlib.ExitStack() as endpoints:
            state.source = open_source(state.source_url)
            endpoints.callback(state.source.close)
            state.target = open_target(state.target_url)
            endpoints.callback(state.target.close)
            # Before Ray starts, both servers answer and the filters choose: a wrong URL, password, database or
            # table filter fails at once, with no Ray to wait for and shut down. Reading creates nothing.
            self.chosen = choose_tables(settings, state.source)
            state.target.ledger.runs()
            self.ray_start = self._start_ray()
            try:
                self.catalog()
                self.plan()
                self.prepare()
            except BaseException:
                if self.ray_start is not None:  # failed before it needed Ray
                    self.ray_start.cancel()
                raise
            self.copy()
            self.finalize()
            self.verify()
            return self.report()

    def _start_ray(self) -> local_ray.RayStart | None:
        """A private local Ray starts now, in the background, its workers importing the copy path and the two
        engines; a named cluster (--address, RAY_ADDRESS) is joined in prepare, as before."""
        settings, state = self.settings, self.state
        if not local_ray.starts_local(settings.ray_address):
            return None
        engines = {ENGINE_MODULES[engine_of(url)][0] for url in (state.source_url, state.target_url)}
        modules = ["ray_replicator.copy", *sorted(engines)]
        return local_ray.RayStart(settings.ray_num_cpus, modules, settings.parallelism)

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        """The seconds a phase took, in the report (a phase that fails records none)."""
        started = time.perf_counter()
        yield
        self.state.phases[phase] = time.perf_counter() - started

    def catalog(self) -> None:
        """The chosen tables' details, each column's type mapped to one the target takes."""
        state, settings = self.state, self.settings
        with self._timed("catalog"):
            catalog, state.excluded = load_catalog(settings, state.source, self.chosen)
            state.catalog, changes = apply_type_policy(
                catalog, state.source.capabilities, state.target.capabilities, settings.unsupported_types
            )
            state.schema_changes = list(changes)
        state.mapped = {(t.schema, t.name): map_table(t, settings.schema_map, changes) for t in state.catalog.tables}
        state.warnings = state.target.write_notes(list(state.mapped.values()))

    def plan(self) -> None:
        """A new plan, or the plan of the run --resume continues, with the ranges it already committed."""
        state, settings = self.state, self.settings
        with self._timed("plan"):
            if settings.resume:
                state.resumed = find_resume(state.target, settings, state.catalog)
                state.run_id, state.plan = state.resumed.run_id, state.resumed.plan
            else:
                caps = state.target.capabilities
                state.plan = make_plan(settings, state.source, state.catalog, caps, self.plan_slots)
            state.options = write_options(settings, state.run_id)
            self._schema_changes()
        state.method = choose_method(settings, state.source.capabilities, state.target.capabilities)
        state.report = RunReport(
            run_id=state.run_id,
            source=settings.source.display(),
            target=settings.target_endpoint.display(),
            method=state.method,
            excluded=state.excluded,
            warnings=state.warnings,
        )
        self.emit(self._plan_made())

    def _schema_changes(self) -> None:
        """How the target tables will differ from the source's: the type policy's changes and the target's own
        (Target.schema_changes). A resumed run reports the ones kept with its plan, and the value changes of the
        ranges it finds done. Computed columns the target keeps plain are then copied like any column."""
        state = self.state
        stored = None
        if state.resumed is not None:
            stored = stored_changes(state.target.ledger.load_plan(state.run_id))
            state.resumed_changes = resumed_changes(state, state.target.ledger.value_changes(state.run_id))
        if stored is not None:
            state.schema_changes = stored
        else:
            target_changes = state.target.schema_changes(state.target_catalog, state.source.engine, state.options)
            state.schema_changes = [*state.schema_changes, *target_changes]
        name_target_constraints(state)
        self._copy_plain_computed()

    def _plan_made(self) -> PlanMade:
        state, done = self.state, self.state.done_before
        per_table = []
        for table in state.catalog.tables:
            ranges = state.plan.ranges_of(table)
            resumed = [done[r.range_id] for r in ranges if r.range_id in done]
            names = {table.qualified, state.mapped[(table.schema, table.name)].qualified}
            per_table.append(
                TablePlan(
                    table=state.mapped[(table.schema, table.name)].qualified,
                    ranges=len(ranges),
                    estimated_rows=sum(r.estimated_rows for r in ranges),
                    estimated_bytes=sum(r.estimated_bytes for r in ranges),
                    resumed_ranges=len(resumed),
                    resumed_rows=sum(int(info.get("rows") or 0) for info in resumed),
                    schema_changes=sum(1 for c in state.schema_changes if c.table in names),
                )
            )
        return PlanMade(
            run_id=state.run_id,
            method=state.method,
            tables=len(state.catalog.tables),
            ranges=len(state.plan.ranges),
            per_table=tuple(per_table),
        )

    def prepare(self) -> None:
        """Everything that can refuse the run is checked before the target changes: the spill directory, the
        report path, the shape of tables kept by existing = truncate, and Ray itself. Then the target gets its
        tables and the ledger the run."""
        state, settings = self.state, self.settings
        check_spill_dir(settings)
        check_report_path(settings.report_path if self.will_save_report else None)
        if state.resumed is None and settings.existing == "truncate":
            # read with the source's value policies, so the target's own sql_variant column is described, not refused
            target_read = target_read_url(state.source_url, state.target_url)
            check_target_shape(target_read, state.target_catalog.tables, state.source.engine, state.target.engine)
        with self._timed("ray start"):  # what is left of a background start
            if self.ray_start is not None:
                self.ray_start.wait()
                self.ray_start = None
            else:
                ensure_ray(settings)
        state.in_flight = ray_slots(settings)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        self.emit(RayStarted(nodes=nodes, in_flight=state.in_flight, dashboard_url=local_ray.dashboard_url()))
        with self._timed("prepare"):
            state.target_touched = True
            if state.resumed is None:
                state.target.prepare(state.target_catalog, state.source.engine, state.options)
            state.target.ledger.init(
                state.run_id, state.plan.plan_hash(), schema_hash(state.catalog), state.plan.ranges
            )
            state.ledger.target_url, state.ledger.run_id = state.target_url, state.run_id
            if state.resumed is None:
                document = plan_with_changes(plan_document(state.plan, settings), state.schema_changes)
                state.target.ledger.save_plan(state.run_id, document)

    def _copy_plain_computed(self) -> None:
        """A computed column the target keeps plain (its expression does not translate there) is read from the
        source and written like any column; the target's schema_changes say which."""
        state = self.state
        changes = state.schema_changes
        for i, table in enumerate(state.catalog.tables):
            key = (table.schema, table.name)
            mapped = state.mapped[key]
            plain = {c.column for c in changes if c.kind == "computed_plain" and c.table == mapped.qualified}
            names = {name for name in plain if name is not None}
            if names:
                state.catalog.tables[i] = copy_computed(table, names)
                state.mapped[key] = copy_computed(mapped, names)

    def copy(self) -> None:
        """Every range not committed yet, and each table's own finalize as soon as its last range is in."""
        copying = CopyStage(self.state, self.emit)
        with self._timed("copy+finalize"):
            copying.run()

    def finalize(self) -> None:
        """Foreign keys and sequences of the whole run, on a fresh connection per try (the copy may have outlived
        the driver's own connection, and a server restart may come in the middle: every step checks what
        exists)."""
        state = self.state
        with self._timed("foreign keys"):
            self.emit(FinalizeStarted(tables=len(state.catalog.tables), step="foreign keys"))

            def attempt() -> None:
                with fresh_target(state.target_url) as target:
                    target.finalize(state.target_catalog, state.source.engine, state.options)

            retrying("adding foreign keys and sequences", attempt, capabilities_of(state.target_url))

    def verify(self) -> None:
        """Checks taken during the copy where there are, the others now; every difference is a report error."""
        state, settings = self.state, self.settings
        if settings.verify == "none":
            return
        with self._timed("verify"):
            tables = state.catalog.tables
            self.emit(VerifyStarted(tables=len(tables), ranges=len(state.plan.ranges), kind=settings.verify))
            counted = counted_checks(state)
            pairs = [
                (t, state.mapped[(t.schema, t.name)], state.plan.ranges_of(t))
                for t in tables
                if (t.schema, t.name) not in counted
            ]
            rechecked = iter(compare_tables(settings, state.source_url, state.target_url, pairs) if pairs else [])
            checks = [counted.get((t.schema, t.name)) or next(rechecked) for t in tables]
        for check, table_report in zip(checks, state.report.tables, strict=True):
            self._record(check, table_report.table)
            table_report.source_rows = check.source_rows
            table_report.verified = f"yes ({settings.verify})" if check.ok else "MISMATCH"

    def _record(self, check: TableCheck, table: str) -> None:
        """A check's differences, as errors of the report."""
        errors = self.state.report.errors
        errors.extend(f"{table} {m}" for m in check.mismatched_ranges)
        if check.source_rows != check.target_rows and not check.mismatched_ranges:
            errors.append(f"{table}: source {check.source_rows} rows, target {check.target_rows} rows")

    def report(self) -> RunReport:
        """The run's end, in the ledger and in the report."""
        state = self.state
        report = state.report
        record_tables(state)
        report.status = "ok" if not report.errors else "verify failed"
        retrying(
            "recording the run's end in the ledger",
            lambda: _finish_in_ledger(state.target_url, state.run_id, report.status),
            capabilities_of(state.target_url),
        )
        state.ledger.run_id = None
        report.phases = state.phases
        report.seconds = time.perf_counter() - state.started
        self.emit(
            RunDone(
                status=report.status,
                rows=report.total_rows,
                seconds=round(report.seconds, 3),
                schema_changes=report.schema_change_count,
                changed_values=report.changed_values,
            )
        )
        return report


def _finish_in_ledger(target_url: str, run_id: str, status: str) -> None:
    with fresh_target(target_url) as target:
        target.ledger.finish(run_id, "done" if status == "ok" else "verify failed")
