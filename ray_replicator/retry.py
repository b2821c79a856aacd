"""When a failure is worth another try, and how long to wait between tries: one policy for every step that talks
to a database (copy and verify tasks, finalize, foreign keys, the verify stage's own reads).

A server restarting, failing over or briefly unreachable comes back within a minute or so; waits that grow from
one second to half a minute ride out ~90 s in all, then the run fails with one line and `--resume` continues.
Data and usage errors are not retried: another try would only repeat them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from ray_replicator.diagnostics import log
from ray_replicator.engines.base import Capabilities, EngineError, is_transient

T = TypeVar("T")

BACKOFF_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)
"""Seconds to wait before each further try after a lost connection: 8 tries over 90 s."""
ATTEMPTS = len(BACKOFF_WAITS) + 1


class TransientError(ConnectionError):
    """A lost or refused connection: the step is tried again after a wait (see BACKOFF_WAITS)."""


def backoff_wait(failures: int) -> float | None:
    """Seconds to wait after the `failures`-th failed try in a row; None when the tries are used up."""
    return BACKOFF_WAITS[failures - 1] if 0 < failures <= len(BACKOFF_WAITS) else None


def retrying(
    what: str, step: Callable[[], T], engines: Iterable[Capabilities] = (), sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run a driver-side step against `engines`, trying again after lost connections. Each try must be safe to
    repeat (every step checks what already exists). After the last try the error says how many there were."""
    failures = 0
    while True:
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - classified below; anything else is raised unchanged
            if not is_transient(exc, engines):
                raise
            failures += 1
            wait = backoff_wait(failures)
            if wait is None:
                raise GaveUp(what, failures, exc) from None
            log.warning("%s: lost the connection (%s); try %d in %.0f s", what, _first_line(exc), failures + 1, wait)
            sleep(wait)


class GaveUp(EngineError):
    """A step whose every try lost its connection: fails the run (exit 1), and `--resume` continues it."""

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        self.what = what
        self.attempts = attempts
        self.last = last
        super().__init__(
            f"{what} failed after {attempts} attempts over ~{sum(BACKOFF_WAITS):.0f} s: {_first_line(last)}"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
