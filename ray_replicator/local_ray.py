"""Ray for a run: join the cluster named by --address/RAY_ADDRESS, else start a private one on this machine.

A Ray that ray-replicator starts itself is reachable by nobody else:
- every process of it listens on 127.0.0.1 only (Ray binds its node address, and resolves a loopback address to
  the machine's external one unless its cluster mode is off, which it reads when `ray` is first imported: both
  the variable and the constant it was read into are set);
- it demands a token made for this run (Ray's token authentication), so other local users cannot submit code;
- a reaper process kills what is left of it once the driver is gone (kill -9 included): Ray's agents otherwise
  outlive their raylet by up to a minute while they try to flush logs to a dead GCS.
Joining a cluster changes nothing: its own address, authentication and lifetime apply.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import socket
import subprocess
import sys
from typing import Any

from ray_replicator.engines.base import EngineError

LOOPBACK = "127.0.0.1"
MARKER_ENV = "RAY_REPLICATOR_LOCAL_RAY"
"""Set in the driver before Ray starts: every process of the local Ray inherits it, so the reaper (and tests) find
them in /proc/<pid>/environ even after Ray has renamed them (`ray::IDLE`) and the driver is gone."""
TOKEN_ENV = "RAY_AUTH_TOKEN"
_USER_TOKEN_ENVS = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def ensure_ray(ray_address: str | None, num_cpus: int | None) -> None:
    """Join the cluster named by ray_address/RAY_ADDRESS, else start a local Ray on loopback with a token."""
    import ray

    if ray.is_initialized():
        return
    address = ray_address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    # A failed range cancels its siblings; their errors are expected and must not spill tracebacks on stderr.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **common)
            return
        marker = _private_environment()
        # No dashboard reads this instance's metrics, and Ray's OpenTelemetry exporter can crash the driver as it
        # exits (seen once in CI: exit -11 in Meter::Collect instead of the run's own exit code).
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address=LOOPBACK,
            _system_config={"enable_metrics_collection": False},
            **common,
        )
        _start_reaper(marker)
    except (OSError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray instance"
        raise EngineError(
            f"cannot reach Ray at {where}: {str(exc).splitlines()[0]}; start it with `ray start --head` "
            "or unset RAY_ADDRESS to run locally"
        ) from None


def _private_environment() -> str:
    """Loopback only, token authentication, a marker; Ray's processes inherit all three from the driver."""
    import ray._private.ray_constants as ray_constants

    marker = secrets.token_hex(8)
    wanted = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        MARKER_ENV: marker,
    }
    if not any(os.environ.get(name) for name in _USER_TOKEN_ENVS):
        wanted[TOKEN_ENV] = secrets.token_hex(32)
    os.environ.update(wanted)
    ray_constants.ENABLE_RAY_CLUSTER = False
    _reload_ray_config()
    return marker


def _reload_ray_config() -> None:
    """Ray's native side caches its config and token from the environment it saw at import: read them again."""
    with contextlib.suppress(ImportError, AttributeError):
        raylet = importlib.import_module("ray._raylet")  # compiled: no stubs for mypy
        raylet.Config.initialize("")
        raylet.AuthenticationTokenLoader.instance().reset_cache()


def _start_reaper(marker: str) -> None:
    """A detached process that waits for this driver to end, then kills every process carrying the marker."""
    if not sys.platform.startswith("linux"):
        return
    subprocess.Popen(
        [sys.executable, "-m", "ray_replicator.reaper", str(os.getpid()), marker],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env={k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, MARKER_ENV)},
    )


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a closed port: Ray itself retries its GCS for minutes, logging to stderr meanwhile."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise ConnectionError(f"nothing answers at {hostport} ({reason})") from None


def dashboard_url() -> str | None:
    """The Ray dashboard's http URL when this driver's cluster runs one (a local run starts none)."""
    import ray

    override = os.environ.get("RAY_OVERRIDE_DASHBOARD_URL")
    try:
        node = ray._private.worker._global_node
        url = override or (node.webui_url if node is not None else None)
    except Exception:  # noqa: BLE001 - a private attribute; no URL is better than a failed run
        return None
    if not url:
        return None
    return url if "://" in url else f"http://{url}"
