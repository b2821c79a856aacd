"""The copy stage of a run: every range not committed yet on Ray, and each table's keys, indexes and count on a
driver thread as soon as its last range is in."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import ray

from ray_replicator import diagnostics
from ray_replicator.catalog import Table
from ray_replicator.choices import budget_config
from ray_replicator.copy import CopyItem, RangeResult, copy_range_task
from ray_replicator.engines import capabilities_of
from ray_replicator.engines.base import EngineError, KeyRange, WriteOptions
from ray_replicator.events import (
    CopyStarted,
    OnEvent,
    RangeCopied,
    RangeStarted,
    TableCopied,
    TableFinalized,
    failure_line,
)
from ray_replicator.report import TableReport
from ray_replicator.retry import retrying
from ray_replicator.run_state import RunState, TableKey, TableProgress, fresh_target
from ray_replicator.schedule import run_bounded
from ray_replicator.stall import StallMonitor
from ray_replicator.verify import TableCheck, database_check


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
        with fresh_target(target_url) as target:
            target.finalize_table(table, source_engine, options)
            if not count:
                return None
            return target.count_range(table, KeyRange(schema=table.schema, table=table.name, index=0, kind="full"))

    return retrying(f"finalizing {table.qualified}", attempt, capabilities_of(target_url))


def _finalized(job: Future[None], table: Table) -> None:
    """Wait for a table's finalize thread; its error, whatever it is, as one line naming the table."""
    try:
        job.result()
    except EngineError:
        raise
    except Exception as exc:
        diagnostics.log.error("finalizing %s failed", table.qualified, exc_info=True)
        raise EngineError(f"finalizing {table.qualified} failed: {type(exc).__name__}: {failure_line(exc)}") from exc


class CopyStage:
    """The copy of one run: fills state.tables as ranges end, and the report's tables and workers at the end."""

    def __init__(self, state: RunState, emit: OnEvent) -> None:
        self.state = state
        self.emit = emit
        settings, plan, done_before = state.settings, state.plan, state.done_before
        self.todo = [r for r in plan.ranges if r.range_id not in done_before]
        for key, target_table in state.mapped.items():
            ranges = plan.ranges_of(state.catalog.table(*key))
            state.tables[key] = TableProgress(
                report=TableReport(table=target_table.qualified, ranges=len(ranges)),
                remaining=sum(1 for r in ranges if r.range_id not in done_before),
            )
        for rng in plan.ranges:
            if rng.range_id in done_before:
                entry = state.tables[(rng.schema, rng.table)]
                entry.report.rows += int(done_before[rng.range_id].get("rows") or 0)
                entry.report.bytes += int(done_before[rng.range_id].get("bytes") or 0)
                entry.counted = False
                entry.value_changes[rng.range_id] = state.resumed_changes.get(rng.range_id, [])
        self.worker_rss: dict[str, float] = {}
        self.peak_buffer_mb = 0.0
        self.spilled_mb = 0.0
        self.budget = budget_config(settings)
        self.copy_task = copy_range_task(settings.worker_max_ranges)
        self.waiting_for_lead = {(r.schema, r.table) for r in self.todo if r.lead}
        self.table_jobs = ThreadPoolExecutor(max_workers=settings.index_jobs, thread_name_prefix="finalize")

    def run(self) -> None:
        state = self.state
        self.emit(CopyStarted(ranges=len(self.todo), in_flight=state.in_flight, resumed=len(state.done_before)))
        for key, entry in state.tables.items():
            if entry.remaining == 0:
                self.finish_table(key)
        try:
            run_bounded(
                self.todo,
                self.submit,
                state.in_flight,
                self.done,
                self.ready,
                StallMonitor(state.run_id, state.settings.stall_timeout_s),
                name=lambda rng: f"range {rng.range_id}",
            )
            for key, entry in state.tables.items():
                if entry.finalized is not None:
                    _finalized(entry.finalized, state.mapped[key])
        finally:
            self.table_jobs.shutdown(wait=False, cancel_futures=True)
        self.tabulate()

    def ready(self, rng: KeyRange) -> bool:
        """A table's other ranges start once its lead range has committed (see KeyRange.lead)."""
        return rng.lead or (rng.schema, rng.table) not in self.waiting_for_lead

    def submit(self, rng: KeyRange) -> ray.ObjectRef:
        state, settings = self.state, self.state.settings
        key = (rng.schema, rng.table)
        entry = state.tables[key]
        if entry.started is None:
            entry.started = time.perf_counter()
        self.emit(RangeStarted(table=entry.report.table, range=rng.range_id))
        item = CopyItem(
            source_url=state.source_url,
            target_url=state.target_url,
            source_table=state.catalog.table(*key),
            target_table=state.mapped[key],
            rng=rng,
            batch_rows=settings.batch_rows,
            batch_bytes=settings.batch_bytes,
            method=state.method,
            options=state.options,
            budget=self.budget,
            stall_timeout_s=settings.stall_timeout_s,
        )
        return self.copy_task.remote(item)

    def done(self, rng: KeyRange, result: RangeResult) -> None:
        key = (rng.schema, rng.table)
        if rng.lead:
            self.waiting_for_lead.discard(key)
        entry = self.state.tables[key]
        entry.report.rows += result.rows
        entry.report.bytes += result.bytes
        entry.value_changes[rng.range_id] = list(result.value_changes)
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
        self.measure(result)
        self.emit(
            RangeCopied(
                table=entry.report.table,
                range=rng.range_id,
                rows=result.rows,
                bytes=result.bytes,
                seconds=round(result.seconds, 3),
                node=result.node_id,
                left=entry.remaining,
                changed_values=sum(c.count for c in result.value_changes),
            )
        )
        if entry.remaining == 0:
            entry.finished = time.perf_counter()
            seconds = round(entry.finished - (entry.started or entry.finished), 3)
            self.emit(TableCopied(table=entry.report.table, rows=entry.report.rows, seconds=seconds))
            self.finish_table(key)

    def measure(self, result: RangeResult) -> None:
        """The peaks of each worker's memory and of the buffers, and what was spilled."""
        worker = f"{result.node_id[:8]}:{result.pid}"
        self.worker_rss[worker] = max(self.worker_rss.get(worker, 0.0), result.peak_rss_mb)
        self.peak_buffer_mb = max(self.peak_buffer_mb, result.peak_buffer_mb)
        self.spilled_mb += result.spilled_mb

    def finish_table(self, key: TableKey) -> None:
        """Finalize the table on a driver thread; with verify = checksums, take its checksums right after."""
        state = self.state
        entry = state.tables[key]

        def job() -> None:
            started = time.perf_counter()
            count = state.settings.verify == "counts" and entry.counted
            entry.target_rows = finalize_and_count(
                state.target_url, state.mapped[key], state.source.engine, state.options, count
            )
            if state.settings.verify == "checksums":
                entry.checked = self.checksums(key)
            self.emit(TableFinalized(table=entry.report.table, seconds=round(time.perf_counter() - started, 3)))

        entry.finalized = self.table_jobs.submit(job)

    def checksums(self, key: TableKey) -> TableCheck | None:
        state = self.state
        table, target_table = state.catalog.table(*key), state.mapped[key]
        return retrying(
            f"checksumming {target_table.qualified}",
            lambda: database_check(
                state.source_url, state.target_url, table, target_table, state.plan.ranges_of(table)
            ),
            capabilities_of(state.source_url, state.target_url),
        )

    def tabulate(self) -> None:
        """What the copy did, into the report."""
        state = self.state
        for entry in state.tables.values():
            if entry.started is not None and entry.finished is not None:
                entry.report.seconds = entry.finished - entry.started
        state.report.tables = [state.tables[(t.schema, t.name)].report for t in state.catalog.tables]
        state.report.workers = {
            "peak_rss_mb": self.worker_rss,
            "peak_buffer_mb": round(self.peak_buffer_mb, 1),
            "spilled_mb": round(self.spilled_mb, 1),
            "memory_cap_mb": state.settings.memory_cap_mb,
        }


def counted_checks(state: RunState) -> dict[TableKey, TableCheck]:
    """Checks taken while the copy ran. checksums: the servers' digests of every range, right after the table's
    finalize. counts, for tables copied whole in this run: each range's rows read at the source (COPY tag or
    batches) against rows committed at the target (in the range's own transaction), and the target table's count
    after finalize against their sum, which also catches rows that were there before or came twice."""
    checks: dict[TableKey, TableCheck] = {}
    for key, entry in state.tables.items():
        if entry.checked is not None:
            checks[key] = entry.checked
            continue
        target_rows = entry.target_rows
        if not entry.counted or target_rows is None:
            continue
        checks[key] = TableCheck(
            schema=state.mapped[key].schema,
            table=state.mapped[key].name,
            source_rows=entry.source_rows,
            target_rows=target_rows,
            mismatched_ranges=list(entry.range_mismatches),
        )
    return checks
