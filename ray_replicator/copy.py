"""Copy ranges on Ray: one remote task per range, a bounded number in flight.

Remote tasks are plain functions over a CopyItem; they open (and cache, per worker process) their own source and
target connections from the resolved URLs, so nothing but the plan item crosses the wire.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray

from ray_replicator.catalog import Table
from ray_replicator.engines import open_source, open_target
from ray_replicator.engines.base import EngineError, KeyRange, Source, Target, WriteOptions


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


_SOURCES: dict[str, Source] = {}
_TARGETS: dict[str, Target] = {}


def _cached_source(url: str) -> Source:
    if url not in _SOURCES:
        _SOURCES[url] = open_source(url)
    return _SOURCES[url]


def _cached_target(url: str) -> Target:
    if url not in _TARGETS:
        _TARGETS[url] = open_target(url)
    return _TARGETS[url]


def _drop_cached(url: str) -> None:
    """A failed connection is not reused: a retry opens a fresh one."""
    for cache in (_SOURCES, _TARGETS):
        conn = cache.pop(url, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _counting(batches: Iterator[pa.RecordBatch], seen: list[int]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        seen[0] += batch.nbytes
        yield batch


def copy_range_local(item: CopyItem) -> RangeResult:
    """Move one range; the body of the Ray task, callable in-process for tests and debugging."""
    started = time.perf_counter()
    try:
        source = _cached_source(item.source_url)
        target = _cached_target(item.target_url)
        raw_reader = getattr(source, "read_range_raw", None)
        raw_writer = getattr(target, "write_range_raw", None)
        if item.method == "raw" and raw_reader is not None and raw_writer is not None:
            chunks = raw_reader(item.source_table, item.rng, item.batch_bytes)
            written = raw_writer(item.target_table, item.rng, chunks, item.options)
            moved_bytes = written.bytes
        else:
            seen = [0]
            batches = source.read_range(item.source_table, item.rng, item.batch_rows, item.batch_bytes)
            written = target.write_range(item.target_table, item.rng, _counting(batches, seen), item.options)
            moved_bytes = written.bytes or seen[0]
    except Exception:
        _drop_cached(item.source_url)
        _drop_cached(item.target_url)
        raise
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
    )


def _node_id() -> str:
    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - outside Ray there is no node
        return "local"


@ray.remote(max_retries=3, retry_exceptions=[ConnectionError, OSError])  # type: ignore[call-overload]
def copy_range(item: CopyItem) -> RangeResult:
    return copy_range_local(item)


@ray.remote(max_retries=2)
def finalize_table_task(target_url: str, table: Table, source_engine: str, options: WriteOptions) -> float:
    started = time.perf_counter()
    target = _cached_target(target_url)
    try:
        target.finalize_table(table, source_engine, options)
    except Exception:
        _drop_cached(target_url)
        raise
    return time.perf_counter() - started


@ray.remote
def count_range_task(url: str, is_source: bool, table: Table, rng: KeyRange) -> int:
    conn: Source | Target = _cached_source(url) if is_source else _cached_target(url)
    return conn.count_range(table, rng)


def run_bounded(
    items: list[Any],
    submit: Callable[[Any], ray.ObjectRef],
    in_flight: int,
    on_done: Callable[[Any, Any], None],
) -> None:
    """Submit items in order with at most `in_flight` outstanding; call on_done(item, result) as each ends.

    A task that fails after its retries raises here with the range named, after the other in-flight tasks
    were cancelled, so the caller can record the failure in the ledger.
    """
    pending: dict[ray.ObjectRef, Any] = {}
    queue = list(items)
    while queue or pending:
        while queue and len(pending) < in_flight:
            item = queue.pop(0)
            pending[submit(item)] = item
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            item = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:
                for other in pending:
                    ray.cancel(other, force=False)
                raise _unwrap(exc) from None
            on_done(item, result)


def _unwrap(exc: Exception) -> Exception:
    """Ray wraps task errors; surface the engine's own one-line error when there is one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, EngineError):
        return cause
    if isinstance(exc, ray.exceptions.RayTaskError):
        inner = exc.as_instanceof_cause()
        if isinstance(inner, EngineError):
            return inner
        return EngineError(str(cause or exc).strip().splitlines()[-1])
    return exc
