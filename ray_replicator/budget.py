"""Keep the bytes a copy task has read but not yet written under a cap, per task and per node.

A reader thread fetches batches (or raw COPY chunks) ahead of the writer. Before each fetch it reserves an
estimate (batch_bytes) against the task's own cap and against the node's cap, kept by one small Ray actor per
node; after the fetch it trues the reservation up to the real size, and the bytes are released once the writer
has taken the next item (so the previous one is written). When the target is slower than the source the reader
waits. With a spill directory it writes what does not fit to Arrow IPC (or raw) files under their own byte cap
instead, and the writer reads them back in order, so the source query finishes early and memory stays flat.

Holders are keyed by worker PID: a worker killed mid-range (kill -9, OOM) cannot leak its reservation, because
the node actor drops holders whose process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import ray

from ray_replicator.engines.base import EngineError

T = TypeVar("T")
MB = 1024 * 1024
NAMESPACE = "ray_replicator"
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class BudgetConfig:
    """The caps a copy task runs under (bytes); spill_dir None means readers wait instead of spilling."""

    task_cap: int
    node_cap: int
    spill_dir: str | None = None
    spill_cap: int = 0
    node_actor: bool = True
    """False when the node cap cannot be reached (every node's CPUs × task_cap fit under it and nothing spills):
    then the task caps alone keep it, and no actor process has to start (about a CPU-second on a small box)."""


@ray.remote(num_cpus=0)
class NodeBudget:
    """Bytes reserved by copy tasks on one node, in memory and in spill files (an async actor: waits are cheap)."""

    def __init__(self, cap: int, spill_cap: int) -> None:
        self.cap = cap
        self.spill_cap = spill_cap
        self.held: dict[str, int] = {}
        self.spilled: dict[str, int] = {}
        self.peak = 0
        self.waits = 0
        self._changed: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _reap(self) -> None:
        """Forget holders whose worker process died; their bytes are gone with them."""
        for book in (self.held, self.spilled):
            for holder in list(book):
                pid = int(holder.split(":", 1)[0])
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    book.pop(holder, None)
                except PermissionError:
                    pass

    async def configure(self, cap: int, spill_cap: int) -> None:
        self.cap, self.spill_cap = cap, spill_cap

    async def reserve(self, holder: str, nbytes: int, timeout: float) -> bool:
        """Take nbytes for holder, waiting up to timeout; a lone reservation always fits, so one batch larger
        than the cap cannot deadlock."""
        cond = self._cond()
        deadline = time.monotonic() + timeout
        async with cond:
            while True:
                used = sum(self.held.values())
                if used == 0 or used + nbytes <= self.cap:
                    self.held[holder] = self.held.get(holder, 0) + nbytes
                    self.peak = max(self.peak, used + nbytes)
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    self.waits += 1
                    self._reap()
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait(), left)

    async def adjust(self, holder: str, delta: int) -> None:
        """True a reservation up (never waits: the bytes are already in memory) or down."""
        cond = self._cond()
        async with cond:
            left = self.held.get(holder, 0) + delta
            if left > 0:
                self.held[holder] = left
            else:
                self.held.pop(holder, None)
            self.peak = max(self.peak, sum(self.held.values()))
            cond.notify_all()

    async def reserve_spill(self, holder: str, nbytes: int) -> bool:
        used = sum(self.spilled.values())
        if used + nbytes > self.spill_cap:
            self._reap()
            used = sum(self.spilled.values())
            if used + nbytes > self.spill_cap:
                return False
        self.spilled[holder] = self.spilled.get(holder, 0) + nbytes
        return True

    async def release_spill(self, holder: str, nbytes: int) -> None:
        left = self.spilled.get(holder, 0) - nbytes
        if left > 0:
            self.spilled[holder] = left
        else:
            self.spilled.pop(holder, None)

    async def release_all(self, holder: str) -> None:
        cond = self._cond()
        async with cond:
            self.held.pop(holder, None)
            self.spilled.pop(holder, None)
            cond.notify_all()

    async def stats(self) -> dict[str, int]:
        return {
            "cap": self.cap,
            "used": sum(self.held.values()),
            "peak": self.peak,
            "waits": self.waits,
            "spilled": sum(self.spilled.values()),
        }


def node_budget(config: BudgetConfig) -> Any:
    """This node's budget actor, created on first use and pinned to the node (detached, so a killed worker that
    happened to create it does not take it down for everyone else)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = ray.get_runtime_context().get_node_id()
    actor = NodeBudget.options(  # type: ignore[attr-defined]
        name=f"budget-{node_id}",
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        max_concurrency=1000,
    ).remote(config.node_cap, config.spill_cap)
    ray.get(actor.configure.remote(config.node_cap, config.spill_cap))
    return actor


def budget_stats() -> list[dict[str, int]]:
    """Stats of every node's budget actor that exists (for reports and tests)."""
    found: list[dict[str, int]] = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        try:
            actor = ray.get_actor(f"budget-{node['NodeID']}", namespace=NAMESPACE)
        except ValueError:
            continue
        found.append(cast(dict[str, int], ray.get(actor.stats.remote())))
    return found


def _is_raw(item: Any) -> bool:
    """Raw COPY chunks are plain bytes; telling them apart this way keeps Arrow out of raw-path workers."""
    return isinstance(item, bytes | bytearray | memoryview)


def _write_spill(path: Path, item: Any) -> int:
    if _is_raw(item):
        path.write_bytes(item)
    else:
        import pyarrow as pa

        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, item.schema) as writer:
            writer.write_batch(item)
    return path.stat().st_size


def _read_spill(path: Path, kind: str) -> Any:
    if kind == "arrow":
        import pyarrow as pa

        # A plain file read (not a memory map) so the batch owns its memory and the file can go at once.
        with pa.OSFile(str(path), "rb") as source:
            return pa.ipc.open_file(source).get_batch(0)
    return path.read_bytes()


def _remove_orphaned_spills(root: Path) -> None:
    """Delete spill folders of workers that died (kill -9, OOM) before they could clean up after themselves."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name.split("-", 1)[0]
        if not entry.is_dir() or not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue


_END = object()


class BudgetedStream(Generic[T]):
    """An iterator over `produce` that reads ahead on a thread within the byte budget (see module doc)."""

    _ids = itertools.count()

    def __init__(
        self,
        produce: Iterator[T],
        size_of: Callable[[T], int],
        estimate: int,
        config: BudgetConfig,
        label: str,
        node: Any = None,
        max_ahead: int | None = None,
        node_grant: int = 0,
    ) -> None:
        self._produce = produce
        self._size_of = size_of
        self._estimate = max(1, min(estimate, config.task_cap))
        self._config = config
        self._label = label
        self._node = node
        self.holder = f"{os.getpid()}:{label}:{next(self._ids)}"
        self._entries: deque[tuple[str, Any, int]] = deque()
        self._cond = threading.Condition()
        self._local = 0  # bytes this task holds in memory
        self._stop = False
        self._last: int = 0  # size of the item handed out last, released when the next is asked for
        self._max_ahead = max_ahead
        self._queued = 0  # items in memory the writer has not taken yet
        # Node bytes are reserved in grants of at least node_grant: small items then cost one actor round trip per
        # grant, not per item. _credit is what this task holds at the node but has not given to an item yet.
        self._grant = max(node_grant, self._estimate)
        self._credit = 0
        self._credit_lock = threading.Lock()
        self.peak_bytes = 0
        self.spilled_bytes = 0
        self.spill_files = 0
        self._on_disk = 0  # bytes reserved for spill files not read back yet
        self._failed: BaseException | None = None
        self._spill_dir: Path | None = None
        if config.spill_dir is not None:
            _remove_orphaned_spills(Path(config.spill_dir))
            self._spill_dir = Path(config.spill_dir) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._thread = threading.Thread(target=self._read, name=f"budget {label}", daemon=True)
        self._thread.start()

    # -- reader thread ------------------------------------------------------------------------------------
    def _node_reserve(self, nbytes: int, wait: bool) -> bool:
        if self._node is None:
            return True
        with self._credit_lock:
            if self._credit >= nbytes:
                self._credit -= nbytes
                return True
            need = nbytes - self._credit
            grant = max(self._grant, nbytes) - self._credit
        if grant > need and ray.get(self._node.reserve.remote(self.holder, grant, 0.0)):
            with self._credit_lock:
                self._credit += grant - nbytes
            return True
        ask = need  # the node has no room for a whole grant now: wait for just what this item needs, as before
        while not self._stop:
            if ray.get(self._node.reserve.remote(self.holder, ask, _POLL_SECONDS if wait else 0.0)):
                with self._credit_lock:
                    self._credit += ask - nbytes
                return True
            if not wait:
                return False
        return False

    def _node_adjust(self, delta: int) -> None:
        """True up (delta > 0: from credit first) or give back (delta < 0: into credit, the part beyond one grant to
        the node)."""
        if self._node is None or not delta:
            return
        with self._credit_lock:
            if delta > 0:
                taken = min(delta, self._credit)
                self._credit -= taken
                delta -= taken
            else:
                self._credit -= delta
                delta = min(0, self._grant - self._credit)
                self._credit += delta
        if delta:
            self._node.adjust.remote(self.holder, delta)

    def _local_fits(self, nbytes: int, spill: bool) -> bool:
        """Within the task's cap, and (when the reader would wait rather than spill) no more than max_ahead items
        ahead of the writer: once the writer is the slower side, a deeper queue adds memory, not speed."""
        if self._local == 0:
            return True
        if not spill and self._max_ahead is not None and self._queued >= self._max_ahead:
            return False
        return self._local + nbytes <= self._config.task_cap

    def _reserve_memory(self, spill: bool) -> bool:
        """Reserve the estimate in memory; False means 'spill this one' (only when spilling is possible)."""
        est = self._estimate
        with self._cond:
            while not self._stop and not self._local_fits(est, spill):
                if spill:
                    return False
                self._cond.wait(_POLL_SECONDS)
            if self._stop:
                return True
        if not self._node_reserve(est, wait=not spill):
            return False
        with self._cond:
            self._local += est
        return True

    def _can_spill(self, nbytes: int) -> bool:
        if self._spill_dir is None:
            return False
        if self._node is None:
            fits = self._on_disk + nbytes <= self._config.spill_cap
        else:
            fits = bool(ray.get(self._node.reserve_spill.remote(self.holder, nbytes)))
        if fits:
            with self._cond:
                self._on_disk += nbytes
        return fits

    def _spill(self, item: T, reserved: int) -> None:
        assert self._spill_dir is not None
        kind = "raw" if _is_raw(item) else "arrow"
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"{self.spill_files:06d}.{kind}"
        try:
            written = _write_spill(path, item)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise EngineError(
                    f"spill directory {self._config.spill_dir} is full ({exc.strerror}) while copying {self._label}; "
                    "free space there, lower spill_cap_mb, or unset spill_dir so readers wait instead, "
                    "then run again with --resume"
                ) from None
            raise EngineError(
                f"cannot write spill file in {self._config.spill_dir} while copying {self._label}: {exc.strerror}; "
                "fix the directory or unset spill_dir, then run again with --resume"
            ) from None
        self.spill_files += 1
        self.spilled_bytes += written
        with self._cond:
            self._entries.append((kind, path, reserved))
            self._cond.notify_all()

    def _read(self) -> None:
        try:
            while not self._stop:
                spill_ok = self._spill_dir is not None
                in_memory = self._reserve_memory(spill=spill_ok)
                if not in_memory and not self._can_spill(self._estimate):
                    in_memory = self._reserve_memory(spill=False)  # spill cap reached too: wait for the writer
                if self._stop:
                    break
                item = next(self._produce, _END)
                if item is _END:
                    if in_memory:
                        self._give_back(self._estimate)
                    break
                size = self._size_of(item)  # type: ignore[arg-type]
                if in_memory:
                    with self._cond:
                        self._local += size - self._estimate
                        self.peak_bytes = max(self.peak_bytes, self._local)
                        self._entries.append(("mem", item, size))
                        self._queued += 1
                        self._cond.notify_all()
                    self._node_adjust(size - self._estimate)
                else:
                    self._spill(item, self._estimate)  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the writer, which raises it in the task without draining first
            with self._cond:
                self._failed = exc
                self._entries.append(("error", exc, 0))
        finally:
            with self._cond:
                self._entries.append(("end", None, 0))
                self._cond.notify_all()
            close = getattr(self._produce, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def _give_back(self, nbytes: int) -> None:
        with self._cond:
            self._local -= nbytes
            self._cond.notify_all()
        self._node_adjust(-nbytes)

    # -- writer side --------------------------------------------------------------------------------------
    def __iter__(self) -> BudgetedStream[T]:
        return self

    def __next__(self) -> T:
        if self._failed is not None:
            self._finish()
            raise self._failed
        if self._last:
            self._give_back(self._last)
            self._last = 0
        with self._cond:
            while not self._entries:
                self._cond.wait(_POLL_SECONDS)
            kind, payload, size = self._entries.popleft()
            if kind == "mem":
                self._queued -= 1
                self._cond.notify_all()
        if kind == "end":
            self._finish()
            raise StopIteration
        if kind == "error":
            self._finish()
            raise payload
        if kind == "mem":
            self._last = size
            return payload
        item = _read_spill(payload, kind)
        with contextlib.suppress(OSError):
            payload.unlink()
        with self._cond:
            self._on_disk -= size
        if self._node is not None:
            self._node.release_spill.remote(self.holder, size)
        return item

    def _finish(self) -> None:
        self._stop = True
        with self._cond:
            self._cond.notify_all()
        self._thread.join()
        for kind, payload, _ in self._entries:
            if kind in ("arrow", "raw"):
                with contextlib.suppress(OSError):
                    payload.unlink()
        self._entries.clear()
        self._queued = 0
        if self._spill_dir is not None:
            with contextlib.suppress(OSError):
                self._spill_dir.rmdir()
        if self._node is not None:
            with contextlib.suppress(Exception):
                ray.get(self._node.release_all.remote(self.holder))
        self._local = 0
        self._credit = 0

    def close(self) -> None:
        """Stop reading (a range found already done, or the writer failed) and give everything back."""
        if self._thread.is_alive() or self._entries:
            self._finish()
