"""`python -m mssql_standin` as a process of its own, for tests that stop, kill and restart it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import ROOT

from .conftest import PASSWORD, USER


def standin(*args: str) -> subprocess.Popen[str]:
    """Start the stand-in on a free port with the test login; read its port with listening_port."""
    cmd = [sys.executable, "-m", "mssql_standin", "--port", "0", "--user", USER, "--password", PASSWORD, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def listening_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert m, line + (proc.stderr.read() if proc.stderr else "")
    return int(m.group(1))


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, as a service manager stops it; returns its stderr after checking it exited 0."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    """Append started stand-ins; any still running at the end are stopped."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
