"""The Ray a run starts for itself: loopback only, token required, gone soon after its driver (kill -9 included).

Every process here is real: the CLI or a driver in a subprocess, Ray's own GCS, raylet, agents and workers. The
environment of each subprocess is cleaned of what the other tests set (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` would
hide the binding bug this guards against).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from ray_replicator.reaper import marked_pids

ROOT = Path(__file__).resolve().parents[2]
RAY_ENV = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
           "RAY_AUTH_TOKEN_PATH", "RAY_REPLICATOR_LOCAL_RAY")  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    env.update(extra)
    return env


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def listening(pids: list[int]) -> dict[tuple[str, int], str]:
    """(address, port) -> process name, for every listening TCP socket and bound UDP socket of the processes."""
    found: dict[tuple[str, int], str] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            name = proc.name()
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN or (conn.type == 2 and not conn.raddr):  # SOCK_DGRAM
                found[(conn.laddr.ip, conn.laddr.port)] = name
    return found


@pytest.fixture
def held_ray() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("hold_ray.py"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    info = json.loads(line)
    yield proc, info
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_local_ray_listens_on_loopback_only(held_ray: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, info = held_ray
    # Ray's agents (python processes) bind seconds after the worker runs, minutes on a box at load 10 (seen: more
    # than 90 s): every sample is checked, and the test waits until the agents are among them.
    deadline = time.monotonic() + 300
    while True:
        sockets = listening(marked_pids(info["marker"]))
        exposed = {addr: name for addr, name in sockets.items() if not loopback(addr[0])}
        assert not exposed, exposed
        names = set(sockets.values())
        if {"gcs_server", "raylet", "python"} <= names or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"gcs_server", "raylet", "python"} <= names, sockets  # GCS, raylet, the agents
    assert any(name.startswith("ray::") for name in names), sockets  # the worker


def test_client_without_the_token_is_refused(held_ray: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, info = held_ray
    assert info["token"] and len(info["token"]) >= 32
    probe = (
        "import ray\n"
        "try:\n"
        f"    ray.init(address={info['gcs']!r}, logging_level='ERROR')\n"
        "    print('CONNECTED', ray.cluster_resources().get('CPU'))\n"
        "except Exception as exc:\n"
        "    print('REFUSED', type(exc).__name__)\n"
    )
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 lets the probe reach 127.0.0.1 as given, so only the token can stop it.
    without = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0"),
        timeout=240,
    )
    assert "REFUSED" in without.stdout, without.stdout + without.stderr[-2000:]
    assert "InvalidAuthToken" in without.stderr, without.stderr[-2000:]
    with_token = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=info["token"]),
        timeout=240,
    )
    assert "CONNECTED 1.0" in with_token.stdout, with_token.stdout + with_token.stderr[-2000:]


def test_token_never_written_to_rays_logs(held_ray: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, info = held_ray
    logs = Path(info["session_dir"]) / "logs"
    assert logs.is_dir()
    leaked = [p for p in logs.rglob("*") if p.is_file() and info["token"].encode() in p.read_bytes()]
    assert not leaked


def test_driver_killed_with_sigkill_leaves_no_ray_process(
    held_ray: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    proc, info = held_ray
    assert len(marked_pids(info["marker"])) >= 4
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30  # Ray's agents alone linger 20-80 s; the reaper needs about 3
    while marked_pids(info["marker"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: psutil.Process(pid).name() for pid in marked_pids(info["marker"]) if psutil.pid_exists(pid)}
    assert not left


def test_cli_run_starts_ray_on_loopback_and_leaves_nothing(
    pg_base_url: str, make_database: Callable[[str], str], tmp_path: Path
) -> None:
    source = make_database("lr_src")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g")
    target = make_database("lr_dst")
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray_replicator",
            "run",
            "--source",
            source,
            "--target",
            target,
            "--report",
            str(tmp_path / "r.json"),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    seen: dict[tuple[str, int], str] = {}
    ray_pids: set[int] = set()
    while run.poll() is None:
        try:
            children = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        ray_pids.update(children)
        seen.update(listening(children))
        time.sleep(0.1)
    out, err = run.communicate()
    assert run.returncode == 0, err[-3000:]
    assert {"gcs_server", "raylet"} <= set(seen.values()), seen
    exposed = {addr: name for addr, name in seen.items() if not loopback(addr[0])}
    assert not exposed, exposed
    deadline = time.monotonic() + 30
    while any(running(p) for p in ray_pids):
        assert time.monotonic() < deadline, [p for p in ray_pids if running(p)]
        time.sleep(0.5)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
