"""Copy ranges on Ray: one remote task per range, a bounded number in flight.

Remote tasks are plain functions over a CopyItem; they open (and cache, per worker process) their own source and
target connections from the resolved URLs, so nothing but the plan item crosses the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

from ray_replicator.budget import BudgetConfig, BudgetedStream, node_budget
from ray_replicator.catalog import Table
from ray_replicator.diagnostics import log, plain, ray_logs_dir
from ray_replicator.engines import open_source, open_target
from ray_replicator.engines.base import EngineError, KeyRange, Source, Target, WriteOptions
from ray_replicator.retry import TransientError, backoff_wait, is_transient

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


_SOURCES: dict[str, Source] = {}
_TARGETS: dict[str, Target] = {}
CACHED_ENDPOINTS = 2
"""Connections a worker keeps per side. A run uses one source and one target, but a worker outlives runs (a Ray
cluster serving many jobs, a benchmark making a database per run): without a bound, every earlier run's
connections stayed open and each worker's memory grew run after run."""


def _cached(cache: dict[str, Any], url: str, open_endpoint: Callable[[str], Any]) -> Any:
    if url in cache:
        cache[url] = cache.pop(url)  # most recently used last
        return cache[url]
    while len(cache) >= CACHED_ENDPOINTS:
        idle = cache.pop(next(iter(cache)))  # least recently used; no task is using it between tasks
        with contextlib.suppress(Exception):
            idle.close()
    cache[url] = open_endpoint(url)
    return cache[url]


def _cached_source(url: str) -> Source:
    return _cached(_SOURCES, url, open_source)


def _cached_target(url: str) -> Target:
    return _cached(_TARGETS, url, open_target)


def _drop_cached(url: str) -> None:
    """A failed connection is not reused: a retry opens a fresh one."""
    for cache in (_SOURCES, _TARGETS):
        conn = cache.pop(url, None)
        if conn is not None:
            # Cut the socket first: a graceful close waits on (or fails inside) an interrupted COPY, and until the
            # server sees the connection go, its transaction keeps the range's ledger row locked.
            control = getattr(conn, "_conn", None)
            terminate = getattr(control, "terminate", None)
            if callable(terminate):
                with contextlib.suppress(Exception):
                    terminate()
                    # asyncio closes an aborted socket on the loop's next turn: give it that turn.
                    conn._loop.run(asyncio.sleep(0.01))  # type: ignore[union-attr]
                conn._conn = None  # type: ignore[union-attr]
            with contextlib.suppress(Exception):
                conn.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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


def copy_range_local(item: CopyItem) -> RangeResult:
    """Move one range; the body of the Ray task, callable in-process for tests and debugging."""
    started = time.perf_counter()
    stream: Iterator[Any] | None = None
    try:
        source = _cached_source(item.source_url)
        target = _cached_target(item.target_url)
        claim = getattr(target, "ledger_claim_copying", None)
        if callable(claim) and item.options.run_id:
            claim(item.options.run_id, item.rng.range_id, f"{_node_id()}:{os.getpid()}")
        raw_reader = getattr(source, "read_range_raw", None)
        raw_writer = getattr(target, "write_range_raw", None)
        if item.method == "raw" and raw_reader is not None and raw_writer is not None:
            held = int(getattr(source, "raw_chunks_held", 2))
            chunk = min(item.batch_bytes, RAW_CHUNK_BYTES)
            if item.budget is not None:  # the reader's own chunks take at most half the cap
                chunk = max(1 << 20, min(chunk, item.budget.task_cap // (2 * held)))
            stats: dict[str, int] = {}
            stream = _budgeted(raw_reader(item.source_table, item.rng, chunk, stats), item, held, chunk)
            written = raw_writer(item.target_table, item.rng, stream, item.options)
            moved_bytes = written.bytes
            source_rows = stats.get("rows", -1)
        else:
            seen = [0, 0]
            batches = source.read_range(item.source_table, item.rng, item.batch_rows, item.batch_bytes)
            stream = _budgeted(batches, item, 0, item.batch_bytes)
            written = target.write_range(item.target_table, item.rng, _counting(stream, seen), item.options)
            moved_bytes = written.bytes or seen[0]
            source_rows = seen[1]
    except BaseException as exc:  # also Ray's cancel (KeyboardInterrupt): never keep a connection mid-transaction
        if isinstance(stream, BudgetedStream):
            stream.close()
        _drop_cached(item.source_url)
        _drop_cached(item.target_url)
        if is_transient(exc):
            # The range's transaction is gone with its connection, so a retry starts clean; the driver waits
            # before it (run_bounded), so no worker sits idle on a CPU slot meanwhile.
            raise TransientError(str(exc)) from None
        raise
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


SYSTEM_RETRIES = 3
"""Ray runs a task again at once when its worker process or node died (max_retries): 4 tries in all. Lost
connections are not retried by Ray but by run_bounded, after the waits of ray_replicator.retry."""
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


# Counts run inside the database: they take no Ray CPU slot.
@ray.remote(num_cpus=0, max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def count_range_task(url: str, is_source: bool, table: Table, rng: KeyRange) -> int:
    try:
        conn: Source | Target = _cached_source(url) if is_source else _cached_target(url)
        return conn.count_range(table, rng)
    except Exception as exc:
        _drop_cached(url)
        if is_transient(exc):
            raise TransientError(str(exc)) from None
        raise


def run_bounded(
    items: list[Any],
    submit: Callable[[Any], ray.ObjectRef],
    in_flight: int,
    on_done: Callable[[Any, Any], None],
    is_ready: Callable[[Any], bool] | None = None,
    name: Callable[[Any], str] = str,
) -> None:
    """Submit items in order with at most `in_flight` outstanding; call on_done(item, result) as each ends.

    A task that lost its connection is submitted again after the waits of ray_replicator.retry (its siblings go
    on meanwhile). A task that fails otherwise, or whose tries are used up, raises an EngineError naming it
    (`name(item)`) and the cause in one line, after the other in-flight tasks were cancelled, so the caller can
    record the failure in the ledger.
    """
    from ray_replicator.signals import reclaim

    reclaim()  # Ray's driver took SIGTERM over when it started: every Ray phase passes here first
    pending: dict[ray.ObjectRef, tuple[int, Any]] = {}
    queue = list(enumerate(items))
    failures: dict[int, int] = {}
    later: list[tuple[float, int, Any]] = []
    try:
        while queue or pending or later:
            now = time.monotonic()
            due = [entry for entry in later if entry[0] <= now]
            if due:
                later = [entry for entry in later if entry[0] > now]
                queue[:0] = [(index, item) for _, index, item in sorted(due, key=lambda e: e[0])]
            while queue and len(pending) < in_flight:
                pick = next((i for i, (_, it) in enumerate(queue) if is_ready is None or is_ready(it)), None)
                if pick is None:
                    if pending or later:
                        break
                    pick = 0
                index, item = queue.pop(pick)
                pending[submit(item)] = (index, item)
            wake = min((entry[0] for entry in later), default=None)
            if not pending:
                time.sleep(max(0.0, (wake or now) - time.monotonic()))
                continue
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            for ref in ready:
                index, item = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - every way a Ray task can fail ends in one line
                    cause = _unwrap(exc)
                    failures[index] = failures.get(index, 0) + 1
                    wait = backoff_wait(failures[index]) if is_transient(cause) else None
                    if wait is not None:
                        log.warning(
                            "%s lost its connection (%s); try %d in %.0f s",
                            name(item),
                            _first_line(cause),
                            failures[index] + 1,
                            wait,
                        )
                        later.append((time.monotonic() + wait, index, item))
                        continue
                    raise _failure(name(item), cause, failures[index]) from None
                on_done(item, result)
    except Exception:
        # Not on Ctrl-C/SIGTERM: the CLI shuts Ray down then, and a cancel racing that shutdown crashed the driver
        # in Ray's task manager (seen: "Tried to complete task that was not pending", a C++ abort).
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)
        raise


def _first_line(exc: BaseException) -> str:
    text = plain(str(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _failure(what: str, cause: BaseException, tries: int) -> EngineError:
    """The one-line error for a task that will not be tried again. An engine's own error on its first try is
    already the message the user needs; anything else says what failed, after how many tries, and why."""
    actor = _ACTOR_DIED.search(str(cause)) if isinstance(cause, EngineError) else None
    if actor is not None:  # an engine wrapped Ray's error from the budget stream its writer was reading
        return EngineError(f"{what} failed: {_actor_words(actor.group(1))} died{_logs_hint()}")
    if isinstance(cause, EngineError) and tries == 1 and not is_transient(cause):
        return cause
    attempts = tries + SYSTEM_RETRIES if isinstance(cause, _SYSTEM_FAILURES) else tries
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return EngineError(f"{what} failed{tried}: {describe_failure(cause)}")


_SYSTEM_FAILURES = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
)
"""Failures Ray itself retried (max_retries) before giving up. (Out-of-memory kills count against Ray's own
task_oom_retries instead.)"""


_ACTOR_DIED = re.compile(r"The actor died unexpectedly.*?class_name: (\w+)", re.DOTALL)


def _actor_words(class_name: str) -> str:
    return "the node's memory budget actor" if class_name == "NodeBudget" else f"a Ray actor it used ({class_name})"


def _logs_hint() -> str:
    logs = ray_logs_dir()
    return f"; worker logs in {logs}" if logs else ""


def describe_failure(exc: BaseException) -> str:
    """Why a Ray task failed, in words, without Ray's task header, traceback or colour codes."""
    where = _logs_hint()
    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        return (
            "Ray's memory monitor killed the worker because the node ran low on memory; lower parallelism or "
            "memory_cap_mb, or give the node more memory"
        )
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return f"the worker process died (killed, out of memory or crashed){where}"
    if isinstance(exc, ray.exceptions.NodeDiedError | ray.exceptions.LocalRayletDiedError):
        return f"the Ray node running it died{where}"
    if isinstance(exc, ray.exceptions.ObjectLostError):
        return f"Ray lost its result (the node or process holding it died){where}"
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return "the task was cancelled"
    if isinstance(exc, ray.exceptions.RayActorError):
        named = _ACTOR_DIED.search(str(exc))
        actor = _actor_words(named.group(1)) if named else "a Ray actor it used"
        return f"{actor} died{where}"
    if isinstance(exc, EngineError):
        return _first_line(exc)
    if isinstance(exc, ray.exceptions.RayError):
        return f"{type(exc).__name__}: {_first_line(exc)}{where}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _unwrap(exc: BaseException) -> BaseException:
    """The error a Ray task raised, without Ray's wrapper (its header, remote traceback and colour codes)."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return _unwrap(cause)
    return exc
