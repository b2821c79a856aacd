"""The run's diagnostics log: retry notices, Ray's own notices (a worker died, a task will be retried) and the
tracebacks behind one-line errors. They help whoever looks into a failure, but on stdout/stderr they would bury the
one line that says what failed, and Ray colours them for a terminal even when the output is a file or a pipe.

The CLI writes them beside the report (`<report>.log`), or in Ray's session log directory when there is no
report path, as plain text without colour codes and without passwords.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("ray_replicator.diagnostics")
log.propagate = False
log.addHandler(logging.NullHandler())
"""Diagnostics never reach stderr: not through the root logger, nor through Python's last resort for loggers
without a handler. A library caller who wants them adds a handler."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """Text without terminal colour/cursor codes."""
    return _ANSI.sub("", text)


class _LazyFile(logging.Handler):
    """Opens its file at the first record, so a run that has nothing to say leaves no file behind."""

    def __init__(self, choose: Callable[[], Path], scrub: Callable[[str], str]) -> None:
        super().__init__(logging.INFO)
        self.choose = choose
        self.scrub = scrub
        self.path: Path | None = None
        self._file: Any = None
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._file is None:
                self.path = self.choose()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(self.scrub(plain(self.format(record))) + "\n")
            self._file.flush()
        except Exception:  # noqa: BLE001 - a log that cannot be written must not fail the run
            return

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        super().close()


_handler: list[_LazyFile] = []
_lock = threading.Lock()


def start(report_path: Path | None, scrub: Callable[[str], str]) -> None:
    """Send diagnostics, and Ray's driver notices, to the run's log file."""
    with _lock:
        for old in _handler:
            log.removeHandler(old)
            old.close()
        handler = _LazyFile(lambda: _choose(report_path), scrub)
        _handler[:] = [handler]
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    _divert_ray_notices()


def path() -> Path | None:
    """Where diagnostics went, once something was written."""
    return _handler[0].path if _handler else None


def _choose(report_path: Path | None) -> Path:
    if report_path is not None and report_path.suffix and not report_path.is_dir():
        return report_path.with_suffix(".log")
    logs = ray_logs_dir()
    if logs is not None:
        return Path(logs) / "ray-replicator.log"
    return Path("ray-replicator.log")


def ray_logs_dir() -> str | None:
    """This driver's Ray session log directory (worker stdout/stderr and tracebacks are there), once Ray runs."""
    try:
        import ray

        node = ray._private.worker._global_node
        return str(node.get_logs_dir_path()) if node is not None else None
    except Exception:  # noqa: BLE001 - a private attribute; messages are still useful without it
        return None


def _divert_ray_notices() -> None:
    """Ray's driver prints what the cluster reports about this job ("(raylet) A worker died…", "Task … failed.
    There are 3 retries remaining…") to stdout, coloured, from a thread of its own (listen_error_messages ->
    print_to_stdstream), whatever log_to_driver says. Route those lines to the diagnostics log instead."""
    try:
        import ray._private.worker as ray_worker
    except ImportError:
        return
    if getattr(ray_worker.print_to_stdstream, "_ray_replicator", False):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        source = str(data.get("pid", "ray"))
        for line in data.get("lines", []):
            log.info("(%s) %s", source, line)

    to_log._ray_replicator = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_log
