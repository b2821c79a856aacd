"""SIGINT and SIGTERM stop a run the same way: the exception unwinds the driver, the ledger records the run as
`interrupted`, the local Ray is shut down, one line is printed, and the exit code is 128 + the signal.

SIGTERM is what `timeout`, systemd, Airflow and Kubernetes send. A Ray driver loses it twice over once Ray runs:
`ray.init` and the local node each install a Python handler (exit 15, or kill Ray and exit 1), and the core worker
installs absl's failure handler (a stack dump on stderr) over both. So the CLI's handlers are installed again
after Ray started (reclaim, called where every Ray phase begins).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; a KeyboardInterrupt, so every `except KeyboardInterrupt` treats SIGTERM as
    it treats Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_HANDLED = (signal.SIGINT, signal.SIGTERM)
_installed: list[bool] = []
_received: list[int] = []


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _received:
        return  # a second signal while the first one's cleanup runs (ledger note, Ray shutdown): let it finish
    _received.append(signum)
    raise Interrupted(signum)


def install() -> None:
    """Take SIGINT and SIGTERM for this process (the CLI does; a library caller keeps its own handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _HANDLED:
        signal.signal(signum, _handler)
    _installed[:] = [True]


def reclaim() -> None:
    """Put the CLI's handlers back if Ray (or anything else) replaced them; a no-op unless install() ran."""
    if not _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in _HANDLED:
        # Always set again, even when Python still names our handler: absl's C-level handler may sit on top.
        signal.signal(signum, _handler)


def received() -> int | None:
    """The signal that stopped the run, if one did."""
    return _received[0] if _received else None
