"""Running many Ray tasks with a bound on how many are in flight, trying lost ones again, and saying in one line
why a task failed for good.

Copy, count and checksum tasks all pass through run_bounded: it resubmits a task that lost its connection after
the waits of ray_replicator.retry, kills and restarts a wedged copy (a StallMonitor says which), and turns Ray's
wrapped errors into one line without its task header, traceback or colour codes.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import ray

from ray_replicator.diagnostics import log, plain, ray_logs_dir
from ray_replicator.engines.base import EngineError
from ray_replicator.retry import TransientError, backoff_wait, is_transient
from ray_replicator.stall import STALL_RETRIES, StallMonitor

SYSTEM_RETRIES = 3
"""Ray runs a task again at once when its worker process or node died (max_retries): 4 tries in all. Lost
connections are not retried by Ray but by run_bounded, after the waits of ray_replicator.retry."""
_KILLED = (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)
"""How a task the driver force-cancelled ends."""


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
    _Bounded(items, submit, in_flight, on_done, is_ready, monitor, name).run()


class _Bounded:
    """One run_bounded call: the queue, the tasks in flight and the tries waiting for their time."""

    def __init__(
        self,
        items: list[Any],
        submit: Callable[[Any], ray.ObjectRef],
        in_flight: int,
        on_done: Callable[[Any, Any], None],
        is_ready: Callable[[Any], bool] | None,
        monitor: StallMonitor | None,
        name: Callable[[Any], str],
    ) -> None:
        self.submit = submit
        self.in_flight = in_flight
        self.on_done = on_done
        self.is_ready = is_ready
        self.monitor = monitor
        self.name = name
        self.queue: list[tuple[int, Any]] = list(enumerate(items))
        self.pending: dict[ray.ObjectRef, tuple[int, Any]] = {}
        self.forced: dict[ray.ObjectRef, str] = {}
        """Tasks the driver force-cancelled as wedged, with the line to fail them with."""
        self.failures: dict[int, int] = {}
        self.later: list[tuple[float, int, Any]] = []
        """(when, index, item): tries waiting out their backoff."""

    def run(self) -> None:
        try:
            while self.queue or self.pending or self.later:
                now = time.monotonic()
                self._requeue_due(now)
                self._fill()
                wake = min((entry[0] for entry in self.later), default=None)
                if not self.pending:
                    time.sleep(max(0.0, (wake or now) - time.monotonic()))
                    continue
                ready = self._wait(wake)
                self._kill_wedged()
                for ref in ready:
                    self._finish(ref)
        except Exception:
            # Not on Ctrl-C/SIGTERM: the CLI shuts Ray down then, and a cancel racing that shutdown crashed the
            # driver in Ray's task manager (seen: "Tried to complete task that was not pending", a C++ abort).
            for ref in self.pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=False)
            raise

    def _requeue_due(self, now: float) -> None:
        due = [entry for entry in self.later if entry[0] <= now]
        if due:
            self.later = [entry for entry in self.later if entry[0] > now]
            self.queue[:0] = [(index, item) for _, index, item in sorted(due, key=lambda e: e[0])]

    def _fill(self) -> None:
        """Start queued items, the first ready one first; an item that is not ready waits while others run."""
        while self.queue and len(self.pending) < self.in_flight:
            pick = next((i for i, (_, it) in enumerate(self.queue) if self.is_ready is None or self.is_ready(it)), None)
            if pick is None:
                if self.pending or self.later:
                    break
                pick = 0
            index, item = self.queue.pop(pick)
            if self.monitor is not None:
                self.monitor.started(item.range_id)
            self.pending[self.submit(item)] = (index, item)

    def _wait(self, wake: float | None) -> list[ray.ObjectRef]:
        timeout = None if wake is None else max(0.0, wake - time.monotonic())
        if self.monitor is not None:
            timeout = self.monitor.poll_s if timeout is None else min(timeout, self.monitor.poll_s)
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        return list(ready)

    def _kill_wedged(self) -> None:
        if self.monitor is None or not self.monitor.due():
            return
        for ref, (_, item) in self.pending.items():
            reason = None if ref in self.forced else self.monitor.wedged(item.range_id)
            if reason is not None:
                self.forced[ref] = reason
                ray.cancel(ref, force=True)

    def _finish(self, ref: ray.ObjectRef) -> None:
        index, item = self.pending.pop(ref)
        reason = self.forced.pop(ref, None)
        if self.monitor is not None:
            self.monitor.ended(item.range_id)
        try:
            result = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - every way a Ray task can fail ends in one line
            cause = TransientError(reason) if reason and isinstance(exc, _KILLED) else _unwrap(exc)
            self._try_again_later(index, item, cause)
            return
        self.on_done(item, result)

    def _try_again_later(self, index: int, item: Any, cause: BaseException) -> None:
        """Schedule another try of a failed task, or raise its one-line error when it gets none."""
        tries = self.failures[index] = self.failures.get(index, 0) + 1
        stalled = _is_stall(cause)
        wait = backoff_wait(tries) if is_transient(cause) else None
        if stalled and tries > STALL_RETRIES:
            wait = None
        if wait is None:
            if stalled:
                raise EngineError(_first_line(cause)) from None
            raise _failure(self.name(item), cause, tries) from None
        log.warning(
            "%s %s (%s); try %d in %.0f s",
            self.name(item),
            "stalled" if stalled else "lost its connection",
            _first_line(cause),
            tries + 1,
            wait,
        )
        self.later.append((time.monotonic() + wait, index, item))


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
