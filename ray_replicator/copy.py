"""Copy ranges on Ray: one remote task per range, a bounded number in flight.

Remote tasks are plain functions over a CopyItem; they open (and cache, per worker process) their own source and
target connections from the resolved URLs, so nothing but the plan item crosses the wire.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

import ray

from ray_replicator.budget import BudgetConfig, BudgetedStream, node_budget
from ray_replicator.catalog import Table
from ray_replicator.diagnostics import log, plain, ray_logs_dir
from ray_replicator.engines import capabilities, capabilities_of, engine_of, open_source, open_target
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
            with contextlib.suppress(Exception):
                conn.abort()


T = TypeVar("T")
_KV_NAMESPACE = "ray_replicator"
STALL_RETRIES = 3
"""Times the driver starts a range again after force-cancelling its wedged task (as Ray retries a lost
connection max_retries times)."""


def stall_margin(stall_timeout_s: float) -> float:
    """How long past a stall the driver waits for the worker to end the task itself before it kills the task:
    cutting the sockets ends a blocked read or write at once, so this only matters for a call that ignores them
    or holds the interpreter (then the heartbeat, sent every few seconds, stops too)."""
    return max(30.0, stall_timeout_s / 10)


class _Progress:
    """When a range last moved a batch, and since when its reader has been waiting on the source."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.reading_since: float | None = None


class _Tap(Generic[T]):
    """Passes items through and tells the range's progress when one arrives; on the reader's side also while it
    waits for the source. A class, not a generator, so close() reaches the inner iterator even before the first
    item (a raw reader's COPY thread stops on close)."""

    def __init__(
        self, inner: Iterable[T], progress: _Progress, reader: bool, on_wait: Callable[[], None] | None = None
    ) -> None:
        self._inner = iter(inner)
        self._progress = progress
        self._reader = reader
        self._on_wait = on_wait

    def __iter__(self) -> _Tap[T]:
        return self

    def __next__(self) -> T:
        if self._reader:
            self._progress.reading_since = time.monotonic()
            if self._on_wait is not None:
                self._on_wait()
        try:
            item = next(self._inner)
        finally:
            if self._reader:
                self._progress.reading_since = None
        self._progress.last = time.monotonic()
        return item

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


def _endpoint_addresses(url: str) -> set[tuple[str, int]]:
    """The (ip, port) pairs a URL's connections go to; empty for a unix socket (its peer has no address)."""
    parts = urlsplit(url)
    query = {k.lower(): v for k, v in parse_qsl(parts.query)}
    if query.get("host", "").startswith("/") or not parts.hostname:
        return set()
    port = int(query.get("port") or parts.port or capabilities(engine_of(url)).default_port)
    found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return {(str(info[4][0]).removeprefix("::ffff:"), port) for info in found}


def cut_connections(urls: Iterable[str]) -> int:
    """Shut down (not close: another thread is inside a call on them) this process's TCP sockets to the given
    endpoints, so a read or write blocked on a silent server returns an error at once, whatever the driver.
    Returns how many were cut."""
    import psutil

    wanted: set[tuple[str, int]] = set()
    for url in urls:
        with contextlib.suppress(OSError, ValueError):
            wanted |= _endpoint_addresses(url)
    cut = 0
    for conn in psutil.Process().net_connections(kind="inet"):
        if conn.fd < 0 or not conn.raddr or (conn.raddr.ip.removeprefix("::ffff:"), conn.raddr.port) not in wanted:
            continue
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(conn.fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
            finally:
                sock.close()  # the duplicate only; the driver still owns (and later closes) its descriptor
    return cut


def stall_line(range_id: str, side: str, seconds: float, silent_worker: bool = False) -> str:
    """The one line a stalled range fails with: the range, the side it waited on and what to check."""
    if side == "reader":
        what, check = "no rows from the source", "the source server"
    else:
        what, check = "the target took no rows", "the target server"
    if silent_worker:  # the driver's view: the worker itself fell silent while it waited on that side
        return (
            f"range {range_id} stalled: {what} and no sign of life from its worker for {seconds:g} s ({side}); "
            f"check {check}, or raise stall_timeout_s"
        )
    return f"range {range_id} stalled: {what} for {seconds:g} s ({side}); check {check}, or raise stall_timeout_s"


def _beat_key(run_id: str, range_id: str) -> bytes:
    return f"beat:{run_id}:{range_id}".encode()


class _Watchdog:
    """One per running range: when neither its reader nor its writer moved a batch for stall_timeout_s, name the
    side that stalled, cut the range's connections (the blocked call then fails and the task raises the stall as
    a lost connection, which Ray retries), and keep telling the driver through Ray's key-value store, so the
    driver can kill a task whose call ignored the cut (see StallMonitor)."""

    def __init__(self, item: CopyItem, timeout: float) -> None:
        self.item = item
        self.timeout = timeout
        self.progress = _Progress()
        self.stalled: str | None = None
        self._done = threading.Event()
        self._key = _beat_key(item.options.run_id, item.rng.range_id) if _kv_ready() else None
        self._beats = 0
        self._beat_lock = threading.Lock()
        self._beaten: tuple[str, float] = ("", 0.0)  # side and time of the last heartbeat
        self._beat(None)  # at once: a driver call that takes the interpreter first must not leave the range unseen
        self._thread = threading.Thread(target=self._watch, name=f"watchdog {item.rng.range_id}", daemon=True)
        self._thread.start()

    def reads(self, items: Iterable[T]) -> _Tap[T]:
        return _Tap(items, self.progress, reader=True, on_wait=self._reading)

    def _reading(self) -> None:
        """The reader is about to wait on the source: say so now, from its own thread, when the last heartbeat said
        otherwise; a driver that holds the interpreter while it waits (mssql-python) silences the watchdog thread,
        and the driver then blames the side of the last heartbeat. At most one put per thread heartbeat, as the
        thread's heartbeats are what flip the side back."""
        side, at = self._beaten
        if side != "reader" and time.monotonic() - at >= 0.05:
            self._beat(self.stalled)

    def writes(self, items: Iterable[T]) -> _Tap[T]:
        return _Tap(items, self.progress, reader=False)

    def _waiting_on(self) -> str:
        return "reader" if self.progress.reading_since is not None else "writer"

    def _reason(self) -> str:
        return stall_line(self.item.rng.range_id, self._waiting_on(), self.timeout)

    def _watch(self) -> None:
        tick = min(1.0, self.timeout / 4)
        beat_every = min(5.0, self.timeout / 2)
        next_beat = 0.0
        while not self._done.wait(tick):
            now = time.monotonic()
            if self.stalled is None and now - self.progress.last >= self.timeout:
                self.stalled = self._reason()
                with contextlib.suppress(Exception):
                    cut_connections([self.item.source_url, self.item.target_url])
            if now >= next_beat:
                self._beat(self.stalled)
                next_beat = now + beat_every

    def _beat(self, stalled: str | None) -> None:
        """pid:count|side|stall line: the side the range waits on tells the driver whom to blame should the
        worker fall silent (a driver call holding the interpreter while it waits on the network, as mssql-python's
        arrow_batch does, stops this thread too)."""
        if self._key is None:
            return
        from ray.experimental.internal_kv import _internal_kv_put

        with self._beat_lock:
            self._beats += 1
            side = self._waiting_on()
            beat = f"{os.getpid()}:{self._beats}|{side}|{stalled or ''}"
            self._beaten = (side, time.monotonic())
            with contextlib.suppress(Exception):
                _internal_kv_put(self._key, beat.encode(), namespace=_KV_NAMESPACE)

    def stop(self) -> None:
        """The task is ending on its own: no more cuts, and the driver need not wait for it."""
        self._done.set()
        self._thread.join()
        if self._key is not None:  # no heartbeat: not running (the driver never kills a task that is not running)
            from ray.experimental.internal_kv import _internal_kv_del

            with contextlib.suppress(Exception):
                _internal_kv_del(self._key, namespace=_KV_NAMESPACE)


def _kv_ready() -> bool:
    if not ray.is_initialized():
        return False
    from ray.experimental.internal_kv import _internal_kv_initialized

    return bool(_internal_kv_initialized())


class StallMonitor:
    """The driver's side of the watchdog: a copy task whose worker reported a stall and still runs stall_margin
    later, or whose heartbeat stopped changing for stall_timeout_s plus that margin (its process wedged in a C call
    that holds the interpreter), is force-cancelled and started again, up to STALL_RETRIES times; then the run
    fails with the stall's one line. A task without a heartbeat (not started yet) is never killed. Heartbeats are
    compared by content, never by clock, so nodes may disagree on time."""

    def __init__(self, run_id: str, stall_timeout_s: float, margin: float | None = None) -> None:
        self.run_id = run_id
        self.timeout = stall_timeout_s
        self.margin = stall_margin(stall_timeout_s) if margin is None else margin
        self.poll_s = min(5.0, stall_timeout_s / 2)
        self._seen: dict[str, tuple[bytes | None, float, float | None]] = {}
        self._next_look = 0.0

    def due(self) -> bool:
        """Look at heartbeats once per poll interval, not after every finished range (one GCS read per task)."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self.poll_s
        return True

    def started(self, range_id: str) -> None:
        self._forget(range_id)
        self._seen[range_id] = (None, time.monotonic(), None)

    def ended(self, range_id: str) -> None:
        self._seen.pop(range_id, None)
        self._forget(range_id)

    def _forget(self, range_id: str) -> None:
        from ray.experimental.internal_kv import _internal_kv_del

        with contextlib.suppress(Exception):
            _internal_kv_del(_beat_key(self.run_id, range_id), namespace=_KV_NAMESPACE)

    def wedged(self, range_id: str) -> str | None:
        """The line to fail with when the range's task must be killed now, else None."""
        from ray.experimental.internal_kv import _internal_kv_get

        try:
            beat = _internal_kv_get(_beat_key(self.run_id, range_id), namespace=_KV_NAMESPACE)
        except Exception:  # noqa: BLE001 - a GCS hiccup: look again on the next poll
            return None
        last, changed, stalled_at = self._seen.get(range_id, (None, time.monotonic(), None))
        now = time.monotonic()
        if beat != last:
            changed = now
        if beat is None:  # queued behind other tasks, between Ray's retries, or done: nothing runs to be stuck
            self._seen[range_id] = (None, now, None)
            return None
        _, side, reason = (beat.decode(errors="replace").split("|", 2) + ["", ""])[:3]
        stalled_at = (stalled_at or now) if reason else None
        self._seen[range_id] = (beat, changed, stalled_at)
        if stalled_at is not None and now - stalled_at > self.margin:
            return reason
        if now - changed > self.timeout + self.margin:
            return reason or stall_line(range_id, side, self.timeout + self.margin, silent_worker=True)
        return None


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
    watch = _Watchdog(item, item.stall_timeout_s) if item.stall_timeout_s else None

    def reads(items: Iterator[Any]) -> Iterator[Any]:
        return watch.reads(items) if watch is not None else items

    def writes(items: Iterator[Any]) -> Iterator[Any]:
        return watch.writes(items) if watch is not None else items

    try:
        if watch is not None:  # a source that never completes the connection stalls the reader
            watch.progress.reading_since = time.monotonic()
        source = _cached_source(item.source_url)
        if watch is not None:
            watch.progress.reading_since = None
        target = _cached_target(item.target_url)
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
            batches = source.read_range(item.source_table, item.rng, item.batch_rows, item.batch_bytes)
            stream = _budgeted(reads(batches), item, 0, item.batch_bytes)
            written = target.write_range(item.target_table, item.rng, writes(_counting(stream, seen)), item.options)
            moved_bytes = written.bytes or seen[0]
            source_rows = seen[1]
    except BaseException as exc:  # also Ray's cancel (KeyboardInterrupt): never keep a connection mid-transaction
        stalled = watch.stalled if watch is not None else None
        if isinstance(stream, BudgetedStream):
            stream.close()
        _drop_cached(item.source_url)
        _drop_cached(item.target_url)
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
        if is_transient(exc, capabilities_of(url)):
            raise TransientError(str(exc)) from None
        raise


def run_bounded(
    items: list[Any],
    submit: Callable[[Any], ray.ObjectRef],
    in_flight: int,
    on_done: Callable[[Any, Any], None],
    is_ready: Callable[[Any], bool] | None = None,
    monitor: StallMonitor | None = None,
    name: Callable[[Any], str] = str,
) -> None:
    """Submit items in order with at most `in_flight` outstanding; call on_done(item, result) as each ends.

    A task that lost its connection is submitted again after the waits of ray_replicator.retry (its siblings go
    on meanwhile); a stalled one at most STALL_RETRIES times. A task that fails otherwise, or whose tries are used
    up, raises an EngineError naming it (`name(item)`) and the cause in one line, after the other in-flight tasks
    were cancelled, so the caller can record the failure in the ledger. With a monitor (items have a range_id), a
    task whose worker stalled beyond the cut is killed and tried again like a lost connection, so no task is
    waited for for ever.
    """
    from ray_replicator.signals import reclaim

    reclaim()  # Ray's driver took SIGTERM over when it started: every Ray phase passes here first
    pending: dict[ray.ObjectRef, tuple[int, Any]] = {}
    forced: dict[ray.ObjectRef, str] = {}
    queue = list(enumerate(items))
    failures: dict[int, int] = {}
    later: list[tuple[float, int, Any]] = []
    killed = (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)

    def start(index: int, item: Any) -> None:
        if monitor is not None:
            monitor.started(item.range_id)
        pending[submit(item)] = (index, item)

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
                start(*queue.pop(pick))
            wake = min((entry[0] for entry in later), default=None)
            if not pending:
                time.sleep(max(0.0, (wake or now) - time.monotonic()))
                continue
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            if monitor is not None:
                timeout = monitor.poll_s if timeout is None else min(timeout, monitor.poll_s)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if monitor is not None and monitor.due():
                for ref, (_, item) in pending.items():
                    reason = None if ref in forced else monitor.wedged(item.range_id)
                    if reason is not None:
                        forced[ref] = reason
                        ray.cancel(ref, force=True)
            for ref in ready:
                index, item = pending.pop(ref)
                reason = forced.pop(ref, None)
                if monitor is not None:
                    monitor.ended(item.range_id)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - every way a Ray task can fail ends in one line
                    cause = TransientError(reason) if reason and isinstance(exc, killed) else _unwrap(exc)
                    failures[index] = failures.get(index, 0) + 1
                    stalled = _is_stall(cause)
                    wait = backoff_wait(failures[index]) if is_transient(cause) else None
                    if stalled and failures[index] > STALL_RETRIES:
                        wait = None
                    if wait is not None:
                        log.warning(
                            "%s %s (%s); try %d in %.0f s",
                            name(item),
                            "stalled" if stalled else "lost its connection",
                            _first_line(cause),
                            failures[index] + 1,
                            wait,
                        )
                        later.append((time.monotonic() + wait, index, item))
                        continue
                    if stalled:
                        raise EngineError(_first_line(cause)) from None
                    raise _failure(name(item), cause, failures[index]) from None
                on_done(item, result)
    except Exception:
        # Not on Ctrl-C/SIGTERM: the CLI shuts Ray down then, and a cancel racing that shutdown crashed the driver
        # in Ray's task manager (seen: "Tried to complete task that was not pending", a C++ abort).
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)
        raise


def _is_stall(exc: BaseException) -> bool:
    """A stall the watchdog reported (its line names the range and says 'stalled')."""
    return " stalled: " in _first_line(exc)


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
