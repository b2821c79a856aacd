"""Stalled ranges: a watchdog in the copy task that cuts a silent range's connections, and the driver's monitor of
its heartbeats that kills a task whose worker ignored the cut.

A range stalls when neither its reader nor its writer moves a batch for stall_timeout_s: a server that stopped
answering without closing the connection. The worker names the side it waited on; the driver, which sees the
heartbeats through Ray's key-value store, names it too when the worker itself falls silent.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

import ray

from ray_replicator.engines import capabilities, engine_of

T = TypeVar("T")
KV_NAMESPACE = "ray_replicator"
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


def beat_key(run_id: str, range_id: str) -> bytes:
    return f"beat:{run_id}:{range_id}".encode()


class Watchdog:
    """One per running range: when neither its reader nor its writer moved a batch for stall_timeout_s, name the
    side that stalled, cut the range's connections (the blocked call then fails and the task raises the stall as
    a lost connection, which Ray retries), and keep telling the driver through Ray's key-value store, so the
    driver can kill a task whose call ignored the cut (see StallMonitor)."""

    def __init__(self, run_id: str, range_id: str, urls: tuple[str, ...], timeout: float) -> None:
        self.range_id = range_id
        self.urls = urls
        self.timeout = timeout
        self.progress = _Progress()
        self.stalled: str | None = None
        self._done = threading.Event()
        self._key = beat_key(run_id, range_id) if _kv_ready() else None
        self._beats = 0
        self._beat_lock = threading.Lock()
        self._beaten: tuple[str, float] = ("", 0.0)  # side and time of the last heartbeat
        self._beat(None)  # at once: a driver call that takes the interpreter first must not leave the range unseen
        self._thread = threading.Thread(target=self._watch, name=f"watchdog {range_id}", daemon=True)
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
        return stall_line(self.range_id, self._waiting_on(), self.timeout)

    def _watch(self) -> None:
        tick = min(1.0, self.timeout / 4)
        beat_every = min(5.0, self.timeout / 2)
        next_beat = 0.0
        while not self._done.wait(tick):
            now = time.monotonic()
            if self.stalled is None and now - self.progress.last >= self.timeout:
                self.stalled = self._reason()
                with contextlib.suppress(Exception):
                    cut_connections(self.urls)
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
                _internal_kv_put(self._key, beat.encode(), namespace=KV_NAMESPACE)

    def stop(self) -> None:
        """The task is ending on its own: no more cuts, and the driver need not wait for it."""
        self._done.set()
        self._thread.join()
        if self._key is not None:  # no heartbeat: not running (the driver never kills a task that is not running)
            from ray.experimental.internal_kv import _internal_kv_del

            with contextlib.suppress(Exception):
                _internal_kv_del(self._key, namespace=KV_NAMESPACE)


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
            _internal_kv_del(beat_key(self.run_id, range_id), namespace=KV_NAMESPACE)

    def wedged(self, range_id: str) -> str | None:
        """The line to fail with when the range's task must be killed now, else None."""
        from ray.experimental.internal_kv import _internal_kv_get

        try:
            beat = _internal_kv_get(beat_key(self.run_id, range_id), namespace=KV_NAMESPACE)
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
