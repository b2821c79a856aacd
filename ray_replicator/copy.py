"""Copy ranges on Ray: one remote task per range, a bounded number in flight (schedule.run_bounded).

Remote tasks are plain functions over a CopyItem; they open (and cache, per worker process: endpoints) their own
source and target connections from the resolved URLs, so nothing but the plan item crosses the wire.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

from ray_replicator.budget import BudgetConfig, BudgetedStream, node_budget
from ray_replicator.catalog import Table
from ray_replicator.endpoints import cached_source, cached_target, drop_cached
from ray_replicator.engines import capabilities_of, open_target
from ray_replicator.engines.base import KeyRange, Source, Target, WriteOptions
from ray_replicator.record import ValueChanges, value_changes_from_json, value_changes_json
from ray_replicator.retry import TransientError, is_transient
from ray_replicator.schedule import SYSTEM_RETRIES
from ray_replicator.stall import Watchdog

if TYPE_CHECKING:  # only the Arrow path needs it, and its engines import it themselves
    import pyarrow as pa


@dataclass(frozen=True)
class CopyItem:
    source_url: str
    target_url: str
    source_table: Table
    target_table: Table
    rng: KeyRange
    batch_rows: int
    batch_bytes: int
    method: str
    options: WriteOptions
    budget: BudgetConfig | None = None
    stall_timeout_s: float | None = None
    """Seconds without a batch read or written before the range's connections are cut (None: no watchdog)."""


@dataclass(frozen=True)
class RangeResult:
    range_id: str
    schema: str
    table: str
    rows: int
    bytes: int
    seconds: float
    node_id: str
    pid: int
    peak_rss_mb: float
    error: str | None = None
    peak_buffer_mb: float = 0.0
    spilled_mb: float = 0.0
    source_rows: int = -1
    """Rows the source produced for the range (-1: the reader cannot tell); compared with `rows` by verify."""
    value_changes: tuple[ValueChanges, ...] = ()
    """What lossy opt-in policies changed in the range (also in the ledger, saved before its done mark)."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _recorded(
    batches: Iterator[pa.RecordBatch], source: Source, item: CopyItem, changes: list[ValueChanges]
) -> Iterator[pa.RecordBatch]:
    """The range's batches; once the source has read them all, what its policies changed goes into `changes` and
    into the ledger, on a connection of its own (the writer's transaction holds the range's row) and before the
    writer can commit the done mark: a done range's changes are always on record, a retry replaces them."""
    yield from batches
    changes.extend(source.value_changes(item.rng))
    if changes and item.options.run_id:
        target = open_target(item.target_url)
        try:
            target.ledger.save_value_changes(item.options.run_id, item.rng.range_id, value_changes_json(changes))
        finally:
            target.close()


def _range_changes(read: list[ValueChanges], fresh: bool, target: Target, item: CopyItem) -> list[ValueChanges]:
    """The range's changes: those this attempt read, or, when it found the range done (fresh False), those the
    attempt that committed it saved in the ledger."""
    if fresh or not item.options.run_id:
        return read
    return value_changes_from_json(target.ledger.value_changes(item.options.run_id).get(item.rng.range_id))


def _counting(batches: Iterator[pa.RecordBatch], seen: list[int]) -> Iterator[pa.RecordBatch]:
    """Tally bytes and rows as they pass: seen = [bytes, rows]."""
    for batch in batches:
        seen[0] += batch.nbytes
        seen[1] += batch.num_rows
        yield batch


_NODE_BUDGET: list[Any] = []
RAW_CHUNK_BYTES = 2 << 20
"""Raw COPY moves in chunks this big. Each chunk held costs its size in worker RSS, and a raw copy holds ~5 of
them (filling, queued in the reader, read ahead, being written): 8 MB chunks measured ~40-50 MB more per worker."""
RAW_READ_AHEAD = 2
"""Raw chunks the budget reads ahead of the writer (when it waits rather than spills). The writer (COPY FROM with
its index and WAL work) is the slower side of a PostgreSQL→PostgreSQL copy: a deeper queue only fills up, adding
memory but no speed."""
ARROW_READ_AHEAD = 2
"""Arrow batches the budget reads ahead of the writer when it waits rather than spills, as on the raw path: the
writer is the slower side, so a deeper queue would only hold more of the task cap."""
RAW_NODE_GRANT_CHUNKS = 8
"""Raw chunks reserve node bytes in grants of this many chunks: one budget-actor round trip (~3 ms of CPU, 5-15 ms
of latency on a loaded 2-core box) per 2 MB chunk made the reader the slow side (copy phase ~20-40% longer)."""


def _budget_actor(config: BudgetConfig) -> Any:
    """This worker's handle on its node's budget actor (None outside Ray)."""
    if not ray.is_initialized() or not config.node_actor:
        return None
    if not _NODE_BUDGET:
        _NODE_BUDGET.append(node_budget(config))
    return _NODE_BUDGET[0]


def _budgeted(stream: Iterator[Any], item: CopyItem, held: int, chunk: int) -> Iterator[Any]:
    """Wrap a batch (or raw chunk) iterator in the byte budget; raw readers keep `held` chunks of their own, so
    the budget leaves room for them."""
    config = item.budget
    if config is None:
        return stream
    raw = held > 0
    if raw:
        config = replace(config, task_cap=max(chunk, config.task_cap - held * chunk))
    try:
        node = _budget_actor(config)
    except ray.exceptions.RayActorError:
        _NODE_BUDGET.clear()
        node = _budget_actor(config)
    size_of: Callable[[Any], int] = len if raw else (lambda b: int(b.nbytes))
    ahead = RAW_READ_AHEAD if raw else ARROW_READ_AHEAD
    grant = RAW_NODE_GRANT_CHUNKS * chunk if raw else 0
    return BudgetedStream(stream, size_of, chunk, config, item.rng.range_id, node, ahead, grant)


def _watchdog(item: CopyItem) -> Watchdog | None:
    """The range's stall watchdog, when the run set a stall timeout."""
    if not item.stall_timeout_s:
        return None
    return Watchdog(item.options.run_id, item.rng.range_id, (item.source_url, item.target_url), item.stall_timeout_s)


def copy_range_local(item: CopyItem) -> RangeResult:
    """Move one range; the body of the Ray task, callable in-process for tests and debugging."""
    started = time.perf_counter()
    stream: Iterator[Any] | None = None
    changes: list[ValueChanges] = []
    watch = _watchdog(item)

    def reads(items: Iterator[Any]) -> Iterator[Any]:
        return watch.reads(items) if watch is not None else items

    def writes(items: Iterator[Any]) -> Iterator[Any]:
        return watch.writes(items) if watch is not None else items

    try:
        if watch is not None:  # a source that never completes the connection stalls the reader
            watch.progress.reading_since = time.monotonic()
        source = cached_source(item.source_url)
        if watch is not None:
            watch.progress.reading_since = None
        target = cached_target(item.target_url)
        if item.options.run_id:
            target.ledger.claim_copying(item.options.run_id, item.rng.range_id, f"{_node_id()}:{os.getpid()}")
        if item.method == "raw":
            held = source.capabilities.raw_chunks_held
            chunk = min(item.batch_bytes, RAW_CHUNK_BYTES)
            if item.budget is not None:  # the reader's own chunks take at most half the cap
                chunk = max(1 << 20, min(chunk, item.budget.task_cap // (2 * held)))
            stats: dict[str, int] = {}
            raw = source.read_range_raw(item.source_table, item.rng, chunk, stats)
            stream = _budgeted(reads(raw), item, held, chunk)
            written = target.write_range_raw(item.target_table, item.rng, writes(stream), item.options)
            moved_bytes = written.bytes
            source_rows = stats.get("rows", -1)
        else:
            seen = [0, 0]
            read = source.read_range(item.source_table, item.rng, item.batch_rows, item.batch_bytes)
            batches = _recorded(read, source, item, changes)
            stream = _budgeted(reads(batches), item, 0, item.batch_bytes)
            written = target.write_range(item.target_table, item.rng, writes(_counting(stream, seen)), item.options)
            moved_bytes = written.bytes or seen[0]
            source_rows = seen[1]
    except BaseException as exc:  # also Ray's cancel (KeyboardInterrupt): never keep a connection mid-transaction
        stalled = watch.stalled if watch is not None else None
        if isinstance(stream, BudgetedStream):
            stream.close()
        drop_cached(item.source_url)
        drop_cached(item.target_url)
        if watch is not None:
            watch.stop()
        if stalled is not None:  # the driver waits before the next try (run_bounded)
            raise TransientError(stalled) from None
        if is_transient(exc, capabilities_of(item.source_url, item.target_url)):
            # The range's transaction is gone with its connection, so a retry starts clean; the driver waits
            # before it (run_bounded), so no worker sits idle on a CPU slot meanwhile.
            raise TransientError(str(exc)) from None
        raise
    if watch is not None:
        watch.stop()
    changes = _range_changes(changes, written.fresh, target, item)
    buffered = stream if isinstance(stream, BudgetedStream) else None
    if buffered is not None:
        buffered.close()
    return RangeResult(
        range_id=item.rng.range_id,
        schema=item.rng.schema,
        table=item.rng.table,
        rows=written.rows,
        bytes=moved_bytes,
        seconds=time.perf_counter() - started,
        node_id=_node_id(),
        pid=os.getpid(),
        peak_rss_mb=_peak_rss_mb(),
        peak_buffer_mb=(buffered.peak_bytes / 1048576) if buffered else 0.0,
        spilled_mb=(buffered.spilled_bytes / 1048576) if buffered else 0.0,
        source_rows=source_rows if written.fresh else -1,
        value_changes=tuple(changes),
    )


def _node_id() -> str:
    if not ray.is_initialized():  # get_runtime_context() would start a whole local Ray
        return "local"
    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - outside Ray there is no node
        return "local"


def _copy_range(item: CopyItem) -> RangeResult:
    return copy_range_local(item)


_COPY_RANGE_TASKS: dict[int, Any] = {}


def copy_range_task(worker_max_ranges: int = 0) -> Any:
    """The Ray task that copies one range. worker_max_ranges > 0 is Ray's max_calls: a worker process that has
    copied that many ranges exits and Ray starts a fresh one. That is the only way to hand back the native memory
    glibc keeps after the drivers' large allocations (its mmap threshold rises after the first large free, so
    later buffers come from arenas that never shrink): measured +50-80 MB a run per worker on the SQL Server
    Arrow path when workers are reused. max_calls can only be given to ray.remote, so one task per value."""
    task = _COPY_RANGE_TASKS.get(worker_max_ranges)
    if task is None:
        options: dict[str, Any] = {"max_retries": SYSTEM_RETRIES, "retry_exceptions": False}
        if worker_max_ranges > 0:
            options["max_calls"] = worker_max_ranges
        task = ray.remote(**options)(_copy_range)
        _COPY_RANGE_TASKS[worker_max_ranges] = task
    return task
