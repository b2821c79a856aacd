"""ray-replicator timed as a user runs it: `ray-replicator run` as a process, cold or warm.

  cold  `ray-replicator run …` (as `python -m ray_replicator run`, the entry point of the `ray-replicator` script)
        starts its own private Ray and shuts it down: the clock runs from the process's start to its exit, so it
        includes the interpreter, the imports, Ray's start and shutdown;
  warm  the same command with `--address` of a Ray this benchmark started beforehand (`ray start --head --block`
        on 127.0.0.1): Ray is already up, as on a cluster, so only Ray's start and shutdown are left out. Each run
        is a new Ray job, so its workers still start and import for it, as a job submitted to a cluster does.

Either way the run is sampled with benchmarks.procstats (roots: the driver, and for warm the Ray head's processes,
so "ray workers" and "ray system" are what this run made them spend) and its JSON report is read back for the
per-table rows/s. Settings that have no flag are passed as RAY_REPLICATOR_<FIELD> environment variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procstats import OURS, Usage, run_sampled

ROOT = Path(__file__).resolve().parents[1]


def bench_env(**settings: str) -> dict[str, str]:
    """This environment with the repository (and the stand-in's sources) first on the path, Ray on loopback, and
    settings as RAY_REPLICATOR_<FIELD> variables."""
    path = [str(ROOT), str(ROOT / "mssql_standin" / "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env.update({f"RAY_REPLICATOR_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class OursRun:
    seconds: float
    report: dict[str, Any]
    usage: Usage
    tables: dict[str, float] = field(default_factory=dict)
    """rows/s per table, from the run's report."""

    @property
    def rows(self) -> int:
        return int(self.report.get("total_rows", 0))


def run_cli(
    source_url: str,
    target_url: str,
    *,
    verify: str = "counts",
    warm: WarmRay | None = None,
    other_roots: Mapping[str, list[int]] | None = None,
    extra_args: tuple[str, ...] = (),
    **settings: str,
) -> OursRun:
    """One `ray-replicator run` into target_url (existing tables dropped), sampled; cold unless `warm` is given.
    other_roots are sampled beside ours (the stand-in, PostgreSQL) and come first in the usage."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    report_path = scratch / "report.json"
    command = [sys.executable, "-m", "ray_replicator", "run", "--source", source_url, "--target", target_url,
               "--existing", "drop", "--verify", verify, "--report", str(report_path), *extra_args]  # fmt: skip
    env = bench_env(**settings)
    if warm is not None:
        command += ["--address", warm.address]
        env.update(warm.env)
    roots = {**(other_roots or {}), OURS: [warm.head_pid] if warm else []}
    try:
        run = run_sampled(command, roots, OURS, env)
        if run.returncode != 0 or not report_path.exists():
            tail = "\n".join(run.output.strip().splitlines()[-8:]).replace(source_url, "<source>")
            raise SystemExit(f"ray-replicator run exited {run.returncode}:\n{tail}")
        report = json.loads(report_path.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if report.get("status") != "ok":
        raise SystemExit(f"ray-replicator run: {report.get('status')}: {report.get('errors')}")
    tables = {t["table"]: float(t.get("rows_per_s", 0.0)) for t in report.get("tables", [])}
    return OursRun(run.seconds, report, run.usage, tables)


@dataclass(frozen=True)
class WarmRay:
    """A Ray head already up: its address, the `ray start` process whose tree holds its processes, and the
    environment a driver needs to join it (its token)."""

    address: str
    head_pid: int
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def warm_ray(num_cpus: int = 2) -> Iterator[WarmRay]:
    """A Ray head on 127.0.0.1 for warm runs (`ray start --head --block`, its own temp dir); yields its address.
    It demands a token made here, as `ray start` does by default. Stopped by signalling its own processes: never
    `ray stop`, which would stop every Ray of this user on the box."""
    temp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port = _free_port()
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port", str(port),
               "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--include-dashboard", "false",
               "--disable-usage-stats", "--temp-dir", str(temp)]  # fmt: skip
    head = subprocess.Popen(command, env={**bench_env(), **auth}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if head.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start --head did not come up (exit {head.returncode})")
            time.sleep(0.5)
        time.sleep(2.0)  # the raylet registers after the GCS listens
        yield WarmRay(f"127.0.0.1:{port}", head.pid, auth)
    finally:
        _stop_tree(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_tree(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM to every process of the head (`ray start --block` alone takes a minute to stop them), SIGKILL to
    whatever is left after 15 s."""
    import psutil

    try:
        procs = [*psutil.Process(head.pid).children(recursive=True), psutil.Process(head.pid)]
    except psutil.NoSuchProcess:
        procs = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    head.wait()
