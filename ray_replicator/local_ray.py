"""Ray for a run: join the cluster named by --address/RAY_ADDRESS, else start a private one on this machine.

A Ray that ray-replicator starts itself is reachable by nobody else:
- every process of it listens on 127.0.0.1 only (Ray binds its node address, and resolves a loopback address to
  the machine's external one unless its cluster mode is off, which it reads when `ray` is first imported: both
  the variable and the constant it was read into are set);
- it demands a token made for this run (Ray's token authentication), so other local users cannot submit code;
- a reaper process kills what is left of it once the driver is gone (kill -9 included): Ray's agents otherwise
  outlive their raylet by up to a minute while they try to flush logs to a dead GCS.
Joining a cluster changes nothing: its own address, authentication and lifetime apply.

A run starts its local Ray in the background (RayStart): Ray's start is seconds of process launches and handshakes
the driver does not need for its catalog and plan, so they overlap; the copy workers then import the copy path
before their first range.
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
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ray_replicator.engines.base import EngineError

LOOPBACK = "127.0.0.1"
MARKER_ENV = "RAY_REPLICATOR_LOCAL_RAY"
"""Set in the driver before Ray starts: every process of the local Ray inherits it, so the reaper (and tests) find
them in /proc/<pid>/environ even after Ray has renamed them (`ray::IDLE`) and the driver is gone."""
TOKEN_ENV = "RAY_AUTH_TOKEN"
_USER_TOKEN_ENVS = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


COMMON_INIT: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}


def ensure_ray(ray_address: str | None, num_cpus: int | None) -> None:
    """Join the cluster named by ray_address/RAY_ADDRESS, else start a local Ray on loopback with a token."""
    import ray

    if ray.is_initialized():
        return
    address = ray_address or os.environ.get("RAY_ADDRESS")
    _quiet_cancelled_ranges()
    with _one_line(address):
        if address:
            _check_reachable(address)
            ray.init(address=address, **COMMON_INIT)
            return
        _start_reaper(_private_environment())
        _init_local(num_cpus)


def starts_local(ray_address: str | None) -> bool:
    """ensure_ray would start a private local Ray: none runs in this process and no cluster is named."""
    import ray

    return not ray.is_initialized() and not (ray_address or os.environ.get("RAY_ADDRESS"))


def _quiet_cancelled_ranges() -> None:
    # A failed range cancels its siblings; their errors are expected and must not spill tracebacks on stderr.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")


@contextlib.contextmanager
def _one_line(address: str | None) -> Iterator[None]:
    """Ray's start failures as one EngineError naming where Ray was sought."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray instance"
        raise EngineError(
            f"cannot reach Ray at {where}: {str(exc).splitlines()[0]}; start it with `ray start --head` "
            "or unset RAY_ADDRESS to run locally"
        ) from None


def _init_local(num_cpus: int | None) -> None:
    """ray.init of the private local Ray (after _private_environment)."""
    import ray

    # No dashboard reads this instance's metrics, and Ray's OpenTelemetry exporter can crash the driver as it
    # exits (seen once in CI: exit -11 in Meter::Collect instead of the run's own exit code).
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        _system_config={"enable_metrics_collection": False},
        **COMMON_INIT,
    )


class _NotOnMainThread(logging.Filter):
    """Drops Ray's warning that ray.init on another thread leaves SIGTERM alone: RayStart does that on purpose
    (the CLI keeps SIGTERM itself, see signals.reclaim)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SIGTERM handler is not set")


class RayStart:
    """A private local Ray starting on a thread of its own while the driver reads the catalog and plans.

    Ray's start is seconds (process launches, GCS and raylet handshakes, worker registration) of which the driver
    needs nothing until it prepares the target. Once Ray is up, `warm_modules` are imported by a worker per copy
    slot, so the copy workers' imports overlap the target's DDL instead of delaying the first range.

    The environment (loopback, token, marker) and the reaper are set up on the caller's thread before the start,
    so no other thread sees the environment change and the reaper covers Ray from its first process. The starting
    thread then lives as long as its Ray: Ray starts its processes with PR_SET_PDEATHSIG, which Linux fires when
    the *thread* that started them ends.
    """

    def __init__(self, num_cpus: int | None, warm_modules: Sequence[str], warm_slots: int = 0) -> None:
        _quiet_cancelled_ranges()
        _start_reaper(_private_environment())
        logging.getLogger("ray._private.worker").addFilter(_NotOnMainThread())
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._warming: list[Any] = []
        args = (num_cpus, tuple(warm_modules), warm_slots)
        threading.Thread(target=self._start, args=args, name="ray-start", daemon=True).start()

    def _start(self, num_cpus: int | None, warm_modules: tuple[str, ...], warm_slots: int) -> None:
        try:
            _init_local(num_cpus)
            self._warming = warm_workers(warm_modules, warm_slots)
        except BaseException as exc:  # noqa: BLE001 - handed to the driver's thread by wait()
            self._failure = exc
        finally:
            self._done.set()
        _outlive_ray()

    def wait(self) -> list[Any]:
        """Until Ray is up; its failure as the one line ensure_ray gives. Returns the warm-up tasks' refs and keeps
        none: a ref still held when Ray shuts down makes Ray's core worker complain on stderr."""
        self._done.wait()
        if self._failure is not None:
            with _one_line(None):
                raise self._failure
        warming, self._warming = self._warming, []
        return warming

    def cancel(self) -> None:
        """The run failed before it needed Ray: let the start finish, then shut the Ray down, so none is left."""
        import ray

        self._done.wait()
        self._warming = []
        if self._failure is None and ray.is_initialized():
            ray.shutdown()


def _outlive_ray(poll_s: float = 0.5) -> None:
    """Keep the thread that started Ray alive while Ray runs (see RayStart)."""
    import ray

    while ray.is_initialized():
        time.sleep(poll_s)


def _import_modules(modules: tuple[str, ...]) -> int:
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


def warm_workers(modules: Sequence[str], slots: int = 0) -> list[Any]:
    """One task per CPU slot (at most `slots` when given) that imports `modules` in its worker, ahead of the
    first real task there; returns the tasks' refs."""
    import ray

    if not modules:
        return []
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_retries=0)(_import_modules)
    return [task.remote(tuple(modules)) for _ in range(min(slots, cpus) if slots > 0 else cpus)]


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
