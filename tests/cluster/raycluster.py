"""A real two-node Ray cluster on loopback, started with Ray's own `ray start`, for job-submission tests.

What it takes to keep two Ray nodes of one machine on 127.0.0.1 (Ray 2.60):
- the head runs with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 and --node-ip-address=127.0.0.1: every server it starts
  then binds 127.0.0.1 (with the variable at 1, Ray rewrites 127.0.0.1 to the machine's outward address and
  binds all interfaces);
- `ray start --address=…` refuses to add a node while that variable is 0, and with it at 1 rewrites the head's
  127.0.0.1 to the outward address, where nothing listens. The second node is therefore started by the same
  `ray start` code with exactly that rewrite turned off (see _START_NODE), and binds 127.0.0.1 like the head;
- token authentication on (RAY_AUTH_MODE=token) with a fresh token passed by environment, never written to
  ~/.ray, so nothing outside this cluster can talk to it and other Ray instances on the box are unaffected;
- a short private --temp-dir (the worker node takes it from the head), and explicit free ports for every
  fixed default (dashboard agent 52365, client server 10001) another Ray on the box may hold.

Teardown kills exactly the processes this fixture started (their session ids, plus anything whose command line
names the private temp dir), never `ray stop`, which would kill every Ray on the machine, other tests' included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_START_NODE = (
    "import sys\n"
    "import ray._private.services as services\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', *sys.argv[1:]]\n"
    "main()\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_of(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class LocalRayCluster:
    """Head plus one worker node, 1 CPU each, all on 127.0.0.1, token auth on."""

    ray_bin: Path
    temp_dir: Path
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    sessions: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def env(self, cluster_flag: str = "0") -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": cluster_flag,
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": self.token,
                "RAY_USAGE_STATS_ENABLED": "0",
                # The job's `python` and `ray-replicator` are the ones on the PATH `ray start` saw.
                "PATH": f"{self.ray_bin.parent}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
            env.pop(name, None)
        return env

    def _start(self, argv: list[str], env: dict[str, str], timeout: float) -> None:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.sessions.add(proc.pid)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise RuntimeError(f"`{' '.join(argv[:3])}` did not finish in {timeout:.0f} s:\n{output[-3000:]}") from None
        self.log.append(output)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv[:3])}` failed ({proc.returncode}):\n{output[-3000:]}")

    def start(self, timeout: float = 120) -> None:
        common = ["--num-cpus=1", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
        self._start(
            [
                str(self.ray_bin),
                "start",
                "--head",
                f"--port={self.gcs_port}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
                *common,
            ],
            self.env("0"),
            timeout,
        )
        self._start(
            [
                sys.executable,
                "-c",
                _START_NODE,
                "start",
                f"--address={self.gcs_address}",
                f"--dashboard-agent-listen-port={free_port()}",
                *common,
            ],
            self.env("1"),
            timeout,
        )
        self.wait_for_nodes(2, timeout=60)

    def api(self, path: str, token: str | None = "default", timeout: float = 10) -> tuple[int, str]:
        """GET a dashboard path with the cluster's token (or another, or none): (status, body)."""
        request = urllib.request.Request(self.dashboard_url + path)
        use = self.token if token == "default" else token
        if use is not None:
            request.add_header("Authorization", f"Bearer {use}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")

    def alive_nodes(self) -> list[str]:
        status, body = self.api("/api/v0/nodes?detail=1&limit=100")
        if status != 200:
            return []
        payload = json.loads(body)
        nodes = payload.get("data", {}).get("result", {}).get("result", [])
        return [n["node_id"] for n in nodes if n.get("state") == "ALIVE"]

    def wait_for_nodes(self, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        nodes: list[str] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                nodes = self.alive_nodes()
                if len(nodes) >= count:
                    return nodes
            time.sleep(1)
        raise RuntimeError(f"only {len(nodes)} of {count} Ray nodes alive after {timeout:.0f} s")

    def own_pids(self) -> list[int]:
        mine = []
        marker = str(self.temp_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid == os.getpid():
                continue
            if _session_of(pid) in self.sessions or marker in _cmdline(pid):
                mine.append(pid)
        return mine

    def stop(self, grace: float = 10) -> None:
        """SIGTERM every process of this cluster, SIGKILL what is left after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            for pid in self.own_pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(not _is_zombie(p) for p in self.own_pids()):
                time.sleep(0.2)
