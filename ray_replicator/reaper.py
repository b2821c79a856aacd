"""`python -m ray_replicator.reaper DRIVER_PID MARKER`: end a local Ray once its driver is gone.

Started detached by local_ray for a Ray the driver started itself. It polls the driver; once it has exited (kill -9
included), it kills every process whose environment carries the marker (see local_ray.MARKER_ENV), then exits.
Linux only: it reads /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 2.0
"""After the driver ends, how long Ray's own shutdown may take before its stragglers are killed."""
KILL_SECONDS = 10.0
"""How long the reaper keeps killing stragglers that appear after its first sweep."""


def marked_pids(marker: str, env_name: str = "RAY_REPLICATOR_LOCAL_RAY") -> list[int]:
    """Processes whose initial environment holds env_name=marker (readable for our own user's processes)."""
    needle = f"{env_name}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def reap(driver_pid: int, marker: str) -> None:
    while _alive(driver_pid):
        time.sleep(POLL_SECONDS)
    deadline = time.monotonic() + GRACE_SECONDS
    while marked_pids(marker) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 5)
    # A raylet killed while it (re)starts an agent can leave one born after the first sweep: sweep until none has
    # been seen for a whole poll, for at most KILL_SECONDS.
    deadline = time.monotonic() + KILL_SECONDS
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        left = marked_pids(marker)
        if left:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= POLL_SECONDS:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(POLL_SECONDS / 5)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python -m ray_replicator.reaper DRIVER_PID MARKER", file=sys.stderr)
        return 2
    reap(int(argv[0]), argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
