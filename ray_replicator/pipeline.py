"""The driver: catalog → plan → copy → finalize → verify → report.

Everything that decides runs here; Ray tasks only move, finalize or count one thing each.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray

from ray_replicator import diagnostics, local_ray
from ray_replicator.budget import MB, BudgetConfig
from ray_replicator.catalog import Catalog, Table, chosen_by, table_matches
from ray_replicator.config import Settings, known_secrets
from ray_replicator.copy import CopyItem, RangeResult, StallMonitor, copy_range_task, run_bounded
from ray_replicator.engines import capabilities, capabilities_of, engine_of, open_source, open_target
from ray_replicator.engines.base import Capabilities, EngineError, KeyRange, Source, UsageError, WriteOptions
from ray_replicator.ledger import Resume, find_resume, plan_document
from ray_replicator.plan import Plan, plan_catalog, schema_hash
from ray_replicator.redact import scrub, url_secrets
from ray_replicator.report import RunReport, TableReport
from ray_replicator.retry import retrying
from ray_replicator.typemap import apply_type_policy
from ray_replicator.verify import TableCheck, database_check, portable_order, verify_checksums, verify_counts

log = logging.getLogger("ray_replicator")


def ensure_ray(settings: Settings) -> None:
    """Join the cluster named by --address/RAY_ADDRESS, else start a private local Ray (see local_ray)."""
    local_ray.ensure_ray(settings.ray_address, settings.ray_num_cpus)


def select_tables(
    database: str, names: list[tuple[str, str]], include: list[str], exclude: list[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Apply glob filters over 'schema.table' and bare 'table' to the source's table names; an include pattern
    matching nothing is an error, so a typo never turns into a run that copies nothing and says it succeeded."""
    if not names:
        raise UsageError(f"the source database {database!r} has no tables; check the database name in the source URL")
    known = ", ".join(f"{s}.{n}" for s, n in names[:12]) + (", …" if len(names) > 12 else "")
    for pattern in include:
        if not any(table_matches(s, n, [pattern]) for s, n in names):
            raise UsageError(f"no source table matches --tables {pattern!r}; source tables are: {known}")
    chosen, excluded = [], []
    for schema, name in names:
        if chosen_by(schema, name, include, exclude):
            chosen.append((schema, name))
        else:
            excluded.append(f"{schema}.{name}")
    if not chosen:
        raise UsageError(
            f"--tables and --exclude leave no table to copy of the {len(names)} in {database!r}; "
            f"source tables are: {known}"
        )
    return chosen, excluded


def map_table(table: Table, schema_map: dict[str, str]) -> Table:
    """The target-side twin of a source table: same columns, schema renamed by schema_map."""
    fks = [replace(fk, ref_schema=schema_map.get(fk.ref_schema, fk.ref_schema)) for fk in table.foreign_keys]
    return replace(table, schema=schema_map.get(table.schema, table.schema), foreign_keys=fks)


def load_catalog(settings: Settings, source: Source) -> tuple[Catalog, list[str]]:
    """The filters go first, on table names alone; then only the chosen tables' details are read, so a table left
    out (a sql_variant column, no SELECT for this user, a type no policy takes) never stops the run."""
    database, names = source.table_names()
    chosen, excluded = select_tables(database, names, settings.tables, settings.exclude)
    catalog = source.catalog(settings.tables, settings.exclude)
    got = {(t.schema, t.name) for t in catalog.tables}
    missing = [f"{s}.{n}" for s, n in chosen if (s, n) not in got]
    if missing:
        raise EngineError(f"source tables {', '.join(missing[:5])} were dropped while the catalog was read; run again")
    return catalog, excluded


def copy_slots(settings: Settings) -> int:
    """Copy tasks expected in flight: the setting, else the cluster's CPUs once Ray runs, else this machine's."""
    if settings.parallelism:
        return settings.parallelism
    if ray.is_initialized():
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    return os.cpu_count() or 1


def make_plan(settings: Settings, source: Source, catalog: Catalog, target: Capabilities | None = None) -> Plan:
    """target: the engine the rows go to, when known. A raw PostgreSQL → PostgreSQL copy gets lead ranges unless it
    verifies checksums: the split table then finishes last, and its digest, taken after its finalize, can no
    longer overlap other tables' copies. Measured at scale 0.14 on 2 cores, interleaved runs: verify counts
    8.4-10.3 s (median 9.55) with lead ranges against 9.7-11.4 s (median 10.54) without; verify checksums
    16.9-19.0 s with against 14.3-17.2 s without.

    Into SQL Server, a range retried after a worker died is cleared with its own predicate, evaluated by SQL
    Server; so a keyless table is one range there (no physical range can be selected again), and so is a table
    from another engine whose key SQL Server orders otherwise (text under its collation, GUIDs; see plan_catalog).
    """
    lead = (
        target is not None
        and settings.verify != "checksums"
        and choose_method(settings, source.capabilities, target) == "raw"
    )
    refills = target is not None and target.refills_ranges_by_predicate
    split_by_key: Callable[[Table], bool] | None = None
    if target is not None and refills and source.engine != target.name:
        source_shown, target_shown = settings.source.display(), settings.target_endpoint.display()

        def split_by_key(table: Table) -> bool:
            return portable_order(table, source_shown, target_shown)

    return plan_catalog(
        source,
        catalog,
        settings.rows_per_range,
        settings.bytes_per_range,
        settings.max_ranges_per_table,
        slots=copy_slots(settings),
        lead=lead,
        physical=not refills,
        split_by_key=split_by_key,
    )


def choose_method(settings: Settings, source: Capabilities, target: Capabilities) -> str:
    """raw relays bytes when both engines share a raw format (else, even when asked for, rows go as Arrow)."""
    raw = source.raw_format is not None and source.raw_format == target.raw_format
    if settings.copy_method != "auto":
        return settings.copy_method if raw else "arrow"
    return "raw" if raw else "arrow"


def budget_config(settings: Settings) -> BudgetConfig:
    """The caps for copy tasks; the per-node actor only when the node cap can bind (copy tasks take one CPU each,
    so a node runs at most its CPU count of them at once) or when spill files need a shared cap."""
    task_cap = settings.memory_cap_mb * MB
    node_cap = settings.node_memory_cap_mb * MB
    widest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)
    return BudgetConfig(
        task_cap=task_cap,
        node_cap=node_cap,
        spill_dir=str(settings.spill_dir) if settings.spill_dir is not None else None,
        spill_cap=settings.spill_cap_mb * MB,
        node_actor=settings.spill_dir is not None or widest == 0 or widest * task_cap > node_cap,
    )


def check_spill_dir(settings: Settings) -> None:
    """A spill directory that cannot take files is a config error, found before anything is copied."""
    if settings.spill_dir is None:
        return
    path = settings.spill_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ray-replicator-probe-{os.getpid()}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"spill_dir {path} is not a writable directory ({exc.strerror}); fix it or unset spill_dir"
        ) from None


def check_report_path(path: Path | None) -> None:
    """The report is written when the run ends: a path that cannot take it is found before the target changes.

    Probes the JSON and the .md file next to it without touching an existing file's content; directories and
    files the probe had to create are removed again."""
    if path is None:
        return
    created: list[Path] = []
    try:
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        for file in (path, path.with_suffix(".md")):
            existed = file.exists()
            with file.open("a"):
                pass
            if not existed:
                created.append(file)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {path} ({exc.strerror or exc}); pass --report FILE.json"
        ) from None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                if made.is_dir():
                    made.rmdir()
                else:
                    made.unlink()


def check_target_shape(target_url: str, tables: list[Table], source_engine: str, target_engine: str) -> None:
    """With existing = truncate the target's own tables are kept: refuse, before truncating anything, tables whose
    columns do not take the source's rows (missing columns, extra NOT NULL columns without default, and between
    engines of one kind any type that differs: both binary COPY paths send the source's own types)."""
    wanted_names = {(t.schema, t.name) for t in tables}
    reader = open_source(target_url)
    try:
        # Only the tables this run writes: any other target table (its types, its permissions) is none of ours.
        present = [n for n in reader.table_names()[1] if n in wanted_names]
        patterns = [glob.escape(f"{schema}.{name}") for schema, name in present]
        found = reader.catalog(patterns, []).tables if patterns else []
        have = {(t.schema, t.name): t for t in found if (t.schema, t.name) in wanted_names}
    finally:
        reader.close()
    for table in tables:
        existing = have.get((table.schema, table.name))
        if existing is None:
            continue
        wanted = [c.name for c in table.copy_columns]
        got = {c.name: c for c in existing.columns}
        missing = [n for n in wanted if n not in got]
        extra = [
            c.name
            for c in existing.columns
            if c.name not in wanted and not c.nullable and c.default is None and c.identity is None and not c.computed
        ]
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra NOT NULL {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise UsageError(
                f"target table {table.qualified} exists with other columns ({what}); "
                "use existing = drop or make its columns match the source"
            )
        if source_engine == target_engine:
            for name in wanted:
                src_type, dst_type = table.column(name).native_type, got[name].native_type
                if src_type != dst_type:
                    raise UsageError(
                        f"target column {table.qualified}.{name} is {dst_type}, the source's is {src_type}: values "
                        "may not fit and binary COPY needs equal types; use existing = drop or alter the column"
                    )


def _note_in_ledger(target_url: str, run_id: str, state: str) -> None:
    """Record how a run ended on a fresh connection (the run's own may be mid-statement after Ctrl-C)."""
    try:
        target = open_target(target_url)
        try:
            target.ledger.finish(run_id, state)
        finally:
            target.close()
    except Exception as exc:  # noqa: BLE001 - the run's own error matters more than this note
        reason = scrub(str(exc), url_secrets(target_url))
        diagnostics.log.warning("could not record state %s of run %s in the ledger: %s", state, run_id, reason)


def _finish_in_ledger(target_url: str, run_id: str, status: str) -> None:
    target = open_target(target_url)
    try:
        target.ledger.finish(run_id, "done" if status == "ok" else "verify failed")
    finally:
        with contextlib.suppress(Exception):
            target.close()


def _finalized(job: Future[None], table: Table) -> None:
    """Wait for a table's finalize thread; its error, whatever it is, as one line naming the table."""
    try:
        job.result()
    except EngineError:
        raise
    except Exception as exc:
        diagnostics.log.error("finalizing %s failed", table.qualified, exc_info=True)
        raise EngineError(f"finalizing {table.qualified} failed: {type(exc).__name__}: {_first_line(exc)}") from exc


def _verify(
    settings: Settings, source_url: str, target_url: str, pairs: list[tuple[Table, Table, list[KeyRange]]]
) -> list[TableCheck]:
    if settings.verify == "checksums":
        in_flight = settings.parallelism or max(1, int(ray.cluster_resources().get("CPU", 2)))
        return verify_checksums(source_url, target_url, pairs, in_flight, settings.batch_rows, settings.batch_bytes)
    return verify_counts(source_url, target_url, pairs)


@dataclass
class _TableProgress:
    report: TableReport
    remaining: int
    started: float | None = None
    finished: float | None = None
    source_rows: int = 0
    counted: bool = True
    """Every range was written in this run by a reader that counted its rows (else verify recounts)."""
    range_mismatches: list[str] = field(default_factory=list)
    finalized: Future[None] | None = None
    target_rows: int | None = None
    """The target table's count after finalize (verify = counts)."""
    checked: TableCheck | None = None
    """The table's checksums, taken by the servers right after finalize (verify = checksums)."""


def finalize_and_count(
    target_url: str, table: Table, source_engine: str, options: WriteOptions, count: bool
) -> int | None:
    """Keys, indexes, identity, ANALYZE of one table, then its row count when asked; tried again on a fresh
    connection after a lost one (a restarting server: every step checks what already exists).

    Runs on a driver thread: the work happens inside the target database, so it needs no Ray worker (starting
    one costs more CPU than the job) and it overlaps with the copies of the other tables, as pgcopydb's index
    jobs do.
    """

    def attempt() -> int | None:
        target = open_target(target_url)
        try:
            target.finalize_table(table, source_engine, options)
            if not count:
                return None
            return target.count_range(table, KeyRange(schema=table.schema, table=table.name, index=0, kind="full"))
        finally:
            with contextlib.suppress(Exception):
                target.close()

    return retrying(f"finalizing {table.qualified}", attempt, capabilities_of(target_url))


def add_foreign_keys(target_url: str, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
    """Foreign keys and sequences of the whole run, on a fresh connection per try (the copy may have outlived the
    driver's own connection, and a server restart may come in the middle: every step checks what exists)."""

    def attempt() -> None:
        target = open_target(target_url)
        try:
            target.finalize(catalog, source_engine, options)
        finally:
            with contextlib.suppress(Exception):
                target.close()

    retrying("adding foreign keys and sequences", attempt, capabilities_of(target_url))


@dataclass
class _LedgerRun:
    """The run as the ledger knows it, once it does: how the run ended is noted there whatever stops it."""

    target_url: str | None = None
    run_id: str | None = None

    def note(self, state: str) -> None:
        if self.target_url is not None and self.run_id is not None:
            _note_in_ledger(self.target_url, self.run_id, state)
            self.run_id = None


def replicate(
    settings: Settings,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    will_save_report: bool = True,
) -> RunReport:
    """Run a whole replication and return its report; raises EngineError/UsageError with one-line messages.

    will_save_report: the caller saves the report to settings.report_path afterwards (the CLI does), so that
    path is probed before the target changes; the Python API returns the report and writes no file.

    However the run stops after the ledger knows it, the ledger says how: `interrupted` (Ctrl-C, SIGTERM) or
    `failed` (any error, also one that is not ours, which then becomes a one-line EngineError), so `--resume`
    finds it and `status` does not show a run `running` that no process runs any more."""
    emit = on_event or (lambda _kind, _data: None)
    ledger_run = _LedgerRun()
    try:
        return _replicate(settings, emit, ledger_run, will_save_report)
    except KeyboardInterrupt as exc:
        exc.in_ledger = ledger_run.run_id is not None  # type: ignore[attr-defined]
        ledger_run.note("interrupted")
        raise
    except EngineError as exc:
        ledger_run.note("failed")
        emit("failed", {"error": scrub(_first_line(exc), known_secrets(settings))})
        raise
    except Exception as exc:
        ledger_run.note("failed")
        diagnostics.log.error("the run failed unexpectedly", exc_info=True)
        error = EngineError(f"unexpected {type(exc).__name__}: {scrub(_first_line(exc), known_secrets(settings))}")
        emit("failed", {"error": str(error)})
        raise error from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def counted_checks(
    progress: dict[tuple[str, str], _TableProgress], mapped: dict[tuple[str, str], Table]
) -> dict[tuple[str, str], TableCheck]:
    """Checks taken while the copy ran. checksums: the servers' digests of every range, right after the table's
    finalize. counts, for tables copied whole in this run: each range's rows read at the source (COPY tag or
    batches) against rows committed at the target (in the range's own transaction), and the target table's count
    after finalize against their sum, which also catches rows that were there before or came twice."""
    checks: dict[tuple[str, str], TableCheck] = {}
    for key, entry in progress.items():
        if entry.checked is not None:
            checks[key] = entry.checked
            continue
        target_rows = entry.target_rows
        if not entry.counted or target_rows is None:
            continue
        checks[key] = TableCheck(
            schema=mapped[key].schema,
            table=mapped[key].name,
            source_rows=entry.source_rows,
            target_rows=target_rows,
            mismatched_ranges=list(entry.range_mismatches),
        )
    return checks


def _replicate(
    settings: Settings,
    emit: Callable[[str, dict[str, Any]], None],
    ledger_run: _LedgerRun,
    will_save_report: bool,
) -> RunReport:
    source_url = settings.source.resolved_url()
    target_url = settings.target_endpoint.resolved_url()
    started = time.perf_counter()
    phases: dict[str, float] = {}
    run_id = settings.run_id or uuid.uuid4().hex[:12]

    source = open_source(source_url)
    target = open_target(target_url)
    resumed: Resume | None = None
    try:
        t0 = time.perf_counter()
        catalog, excluded = load_catalog(settings, source)
        catalog, type_warnings = apply_type_policy(
            catalog, source.capabilities, target.capabilities, settings.unsupported_types
        )
        phases["catalog"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if settings.resume:
            resumed = find_resume(target, settings, catalog)
            run_id, plan = resumed.run_id, resumed.plan
        else:
            # Reach the target (a wrong password shows now, not after Ray started); reading creates nothing.
            target.ledger.runs()
            plan = make_plan(settings, source, catalog, target.capabilities)
        phases["plan"] = time.perf_counter() - t0
        method = choose_method(settings, source.capabilities, target.capabilities)
        report = RunReport(
            run_id=run_id,
            source=settings.source.display(),
            target=settings.target_endpoint.display(),
            method=method,
            excluded=excluded,
            warnings=type_warnings,
        )
        resumed_done = resumed.done if resumed is not None else {}
        emit(
            "plan",
            {
                "run_id": run_id,
                "method": method,
                "tables": len(catalog.tables),
                "ranges": len(plan.ranges),
                "per_table": [
                    {
                        "table": map_table(t, settings.schema_map).qualified,
                        "ranges": len(plan.ranges_of(t)),
                        "estimated_rows": sum(r.estimated_rows for r in plan.ranges_of(t)),
                        "estimated_bytes": sum(r.estimated_bytes for r in plan.ranges_of(t)),
                        "resumed_ranges": sum(1 for r in plan.ranges_of(t) if r.range_id in resumed_done),
                        "resumed_rows": sum(
                            int(resumed_done[r.range_id].get("rows") or 0)
                            for r in plan.ranges_of(t)
                            if r.range_id in resumed_done
                        ),
                    }
                    for t in catalog.tables
                ],
            },
        )

        options = WriteOptions(
            existing=settings.existing,
            keys_before_load=settings.keys == "before-load",
            unlogged=settings.unlogged,
            run_id=run_id,
            large_values_as_source=settings.large_values == "as-source",
        )
        mapped = {(t.schema, t.name): map_table(t, settings.schema_map) for t in catalog.tables}
        target_catalog = replace(catalog, tables=list(mapped.values()))
        # Everything that can refuse the run is checked before the target changes: the spill directory, the
        # report path, the shape of tables kept by existing = truncate, and Ray itself.
        check_spill_dir(settings)
        check_report_path(settings.report_path if will_save_report else None)
        if resumed is None and settings.existing == "truncate":
            check_target_shape(target_url, target_catalog.tables, source.engine, target.engine)
        t0 = time.perf_counter()
        ensure_ray(settings)
        phases["ray start"] = time.perf_counter() - t0
        in_flight = settings.parallelism or max(1, int(ray.cluster_resources().get("CPU", 2)))
        emit(
            "ray",
            {
                "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
                "in_flight": in_flight,
                "dashboard_url": local_ray.dashboard_url(),
            },
        )

        t0 = time.perf_counter()
        if resumed is None:
            target.prepare(target_catalog, source.engine, options)
        target.ledger.init(run_id, plan.plan_hash(), schema_hash(catalog), plan.ranges)
        ledger_run.target_url, ledger_run.run_id = target_url, run_id
        if resumed is None:
            target.ledger.save_plan(run_id, plan_document(plan, settings))
        phases["prepare"] = time.perf_counter() - t0
        done_before = resumed.done if resumed is not None else {}
        todo = [r for r in plan.ranges if r.range_id not in done_before]
        progress = {
            key: _TableProgress(
                report=TableReport(table=t.qualified, ranges=len(plan.ranges_of(catalog.table(*key)))),
                remaining=sum(1 for r in plan.ranges_of(catalog.table(*key)) if r.range_id not in done_before),
            )
            for key, t in mapped.items()
        }
        for rng in plan.ranges:
            if rng.range_id in done_before:
                earlier = progress[(rng.schema, rng.table)].report
                earlier.rows += int(done_before[rng.range_id].get("rows") or 0)
                earlier.bytes += int(done_before[rng.range_id].get("bytes") or 0)
                progress[(rng.schema, rng.table)].counted = False
        count_in_copy = settings.verify == "counts"
        table_jobs = ThreadPoolExecutor(max_workers=settings.index_jobs, thread_name_prefix="finalize")

        def finish_table(key: tuple[str, str]) -> None:
            entry = progress[key]

            def job() -> None:
                started = time.perf_counter()
                entry.target_rows = finalize_and_count(
                    target_url, mapped[key], source.engine, options, count_in_copy and entry.counted
                )
                if settings.verify == "checksums":
                    table = catalog.table(*key)
                    entry.checked = retrying(
                        f"checksumming {mapped[key].qualified}",
                        lambda: database_check(source_url, target_url, table, mapped[key], plan.ranges_of(table)),
                        capabilities_of(source_url, target_url),
                    )
                emit(
                    "table_finalized",
                    {"table": entry.report.table, "seconds": round(time.perf_counter() - started, 3)},
                )

            entry.finalized = table_jobs.submit(job)

        worker_rss: dict[str, float] = {}
        buffers: dict[str, float] = {"peak_buffer_mb": 0.0, "spilled_mb": 0.0}
        budget = budget_config(settings)
        copy_task = copy_range_task(settings.worker_max_ranges)
        waiting_for_lead = {(r.schema, r.table) for r in todo if r.lead}

        def ready(rng: KeyRange) -> bool:
            """A table's other ranges start once its lead range has committed (see KeyRange.lead)."""
            return rng.lead or (rng.schema, rng.table) not in waiting_for_lead

        def submit(rng: KeyRange) -> ray.ObjectRef:
            key = (rng.schema, rng.table)
            if progress[key].started is None:
                progress[key].started = time.perf_counter()
            emit("range_start", {"table": progress[key].report.table, "range": rng.range_id})
            item = CopyItem(
                source_url=source_url,
                target_url=target_url,
                source_table=catalog.table(*key),
                target_table=mapped[key],
                rng=rng,
                batch_rows=settings.batch_rows,
                batch_bytes=settings.batch_bytes,
                method=method,
                options=options,
                budget=budget,
                stall_timeout_s=settings.stall_timeout_s,
            )
            return copy_task.remote(item)

        def done(rng: KeyRange, result: RangeResult) -> None:
            key = (rng.schema, rng.table)
            if rng.lead:
                waiting_for_lead.discard(key)
            entry = progress[key]
            entry.report.rows += result.rows
            entry.report.bytes += result.bytes
            if result.source_rows < 0:
                entry.counted = False
            else:
                entry.source_rows += result.source_rows
                if result.source_rows != result.rows:
                    entry.range_mismatches.append(
                        f"{rng.range_id}: source {result.source_rows} rows, target {result.rows} rows"
                    )
            if result.node_id not in entry.report.nodes:
                entry.report.nodes.append(result.node_id)
            entry.remaining -= 1
            worker_rss[f"{result.node_id[:8]}:{result.pid}"] = max(
                worker_rss.get(f"{result.node_id[:8]}:{result.pid}", 0.0), result.peak_rss_mb
            )
            buffers["peak_buffer_mb"] = max(buffers["peak_buffer_mb"], result.peak_buffer_mb)
            buffers["spilled_mb"] += result.spilled_mb
            emit(
                "range",
                {
                    "table": entry.report.table,
                    "range": rng.range_id,
                    "rows": result.rows,
                    "bytes": result.bytes,
                    "seconds": round(result.seconds, 3),
                    "node": result.node_id,
                    "left": entry.remaining,
                },
            )
            if entry.remaining == 0:
                entry.finished = time.perf_counter()
                emit(
                    "table_done",
                    {
                        "table": entry.report.table,
                        "rows": entry.report.rows,
                        "seconds": round(entry.finished - (entry.started or entry.finished), 3),
                    },
                )
                finish_table(key)

        t0 = time.perf_counter()
        emit("copy", {"ranges": len(todo), "in_flight": in_flight, "resumed": len(done_before)})
        for key, entry in progress.items():
            if entry.remaining == 0:
                finish_table(key)
        try:
            run_bounded(
                todo,
                submit,
                in_flight,
                done,
                ready,
                StallMonitor(run_id, settings.stall_timeout_s),
                name=lambda rng: f"range {rng.range_id}",
            )
            for key, entry in progress.items():
                if entry.finalized is not None:
                    _finalized(entry.finalized, mapped[key])
        finally:
            table_jobs.shutdown(wait=False, cancel_futures=True)
        phases["copy+finalize"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        emit("finalize", {"tables": len(catalog.tables), "step": "foreign keys"})
        add_foreign_keys(target_url, target_catalog, source.engine, options)
        phases["foreign keys"] = time.perf_counter() - t0

        for entry in progress.values():
            if entry.started is not None and entry.finished is not None:
                entry.report.seconds = entry.finished - entry.started
        report.tables = [progress[(t.schema, t.name)].report for t in catalog.tables]
        report.workers = {"peak_rss_mb": worker_rss, **{k: round(v, 1) for k, v in buffers.items()}}
        report.workers["memory_cap_mb"] = settings.memory_cap_mb

        if settings.verify != "none":
            t0 = time.perf_counter()
            emit("verify", {"tables": len(catalog.tables), "ranges": len(plan.ranges), "kind": settings.verify})
            counted = counted_checks(progress, mapped)
            pairs = [
                (t, mapped[(t.schema, t.name)], plan.ranges_of(t))
                for t in catalog.tables
                if (t.schema, t.name) not in counted
            ]
            rechecked = iter(_verify(settings, source_url, target_url, pairs) if pairs else [])
            checks = [counted.get((t.schema, t.name)) or next(rechecked) for t in catalog.tables]
            phases["verify"] = time.perf_counter() - t0
            for check, table_report in zip(checks, report.tables, strict=True):
                table_report.source_rows = check.source_rows
                table_report.verified = f"yes ({settings.verify})" if check.ok else "MISMATCH"
                report.errors.extend(f"{table_report.table} {m}" for m in check.mismatched_ranges)
                if check.source_rows != check.target_rows and not check.mismatched_ranges:
                    report.errors.append(
                        f"{table_report.table}: source {check.source_rows} rows, target {check.target_rows} rows"
                    )
        report.status = "ok" if not report.errors else "verify failed"
        retrying(
            "recording the run's end in the ledger",
            lambda: _finish_in_ledger(target_url, run_id, report.status),
            capabilities_of(target_url),
        )
        ledger_run.run_id = None
        report.phases = phases
        report.seconds = time.perf_counter() - started
        emit(
            "done",
            {"status": report.status, "rows": report.total_rows, "seconds": round(report.seconds, 3)},
        )
        return report
    finally:
        source.close()
        target.close()


def plan_only(settings: Settings) -> tuple[Plan, list[str]]:
    source = open_source(settings.source.resolved_url())
    try:
        catalog, excluded = load_catalog(settings, source)
        target = capabilities(engine_of(settings.target.display())) if settings.target is not None else None
        return make_plan(settings, source, catalog, target), excluded
    finally:
        source.close()


def verify_only(settings: Settings) -> list[tuple[str, int, int, list[str]]]:
    """Compare every selected table range by range without copying: counts, or checksums when settings.verify
    says so."""
    source_url = settings.source.resolved_url()
    target_url = settings.target_endpoint.resolved_url()
    source = open_source(source_url)
    try:
        catalog, _ = load_catalog(settings, source)
        catalog, _ = apply_type_policy(
            catalog, source.capabilities, capabilities(engine_of(target_url)), settings.unsupported_types
        )
        plan = make_plan(settings, source, catalog)
    finally:
        source.close()
    ensure_ray(settings)
    pairs = [(t, map_table(t, settings.schema_map), plan.ranges_of(t)) for t in catalog.tables]
    checks = _verify(settings, source_url, target_url, pairs)
    return [(f"{c.schema}.{c.table}", c.source_rows, c.target_rows, c.mismatched_ranges) for c in checks]
