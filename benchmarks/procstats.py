"""CPU-seconds and memory of the processes behind one timed method, sampled over their process trees.

Every benchmark that reports per-process cost uses this one sampler:

    with ProcessSampler({"stand-in": [src.pid], "postgres": [postmaster], "ours": [driver_pid, *ray_pids]}) as s:
        ...                                  # the timed method
    s.usage.cpu_s["ray workers"], s.usage.peak_ours_mb

Roles are given as root process ids; a root stands for itself and every descendant (Ray workers are children of
raylet, PostgreSQL backends of the postmaster, pgcopydb's jobs of pgcopydb). A process belongs to the first role
(in the order given) whose tree holds it. The role named "ours" is split into
  "driver"       its first root: the `ray-replicator run` process;
  "ray workers"  Ray worker processes (default_worker.py, renamed `ray::…` once started);
  "ray system"   every other process in its trees: raylet, gcs_server, Ray's agents, `ray start` of a warm head,
                 ray-replicator's reaper.

CPU-seconds: user + system time each process spent between the first and the last sample of the window (a process
that existed before the window counts from its first sample, a new one from zero). A process that lives less than
one interval, and the CPU time of a process's final interval before it exits, are missed: at 0.2 s that is well
under one percent of a copy. When this process is itself in a role, the sampler thread's own CPU is subtracted.
The sampler itself costs about 2.5 % of one core (measured with ~280 processes on the box), alike for every method.

Peak RSS: at each sample the resident set sizes of a role's processes are summed, and the largest such sum over the
window is the role's peak. `peak_ours_mb` is the largest sum over driver + ray workers + ray system taken at one
instant: everything ray-replicator runs, Ray's own processes included. RSS counts a shared page once in every
process that maps it (Ray's object store, shared libraries), so the sum overstates what the processes together
hold; it never understates it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import psutil

OURS = "ours"
OUR_ROLES = ("driver", "ray workers", "ray system")


def our_role(pid: int, driver: int, cmdline: list[str]) -> str:
    """Which of ray-replicator's processes this is: the driver, a Ray worker, or the rest of Ray."""
    if pid == driver:
        return "driver"
    text = " ".join(cmdline)
    return "ray workers" if "default_worker.py" in text or text.startswith("ray::") else "ray system"


def postmaster_pid(url: str) -> int:
    """The PostgreSQL server's root process: the parent of a backend serving a fresh connection."""
    import psycopg

    with psycopg.connect(url) as conn:  # asked while the backend lives: it exits with the connection
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return psutil.Process(int(row[0])).ppid()


def _ppid_map() -> dict[int, int]:
    """pid → parent pid of every process: psutil's own table (what Process.children reads), a third of the cost of
    process_iter, which matters at 5 samples a second on 2 cores; process_iter where psutil lacks it."""
    table = getattr(psutil, "_ppid_map", None)
    if table is not None:
        return dict(table())
    return {proc.pid: proc.info["ppid"] for proc in psutil.process_iter(["ppid"])}


@dataclass
class Usage:
    """What the processes of each role spent over one window."""

    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_ours_mb: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "peak_rss_mb": {k: round(v, 1) for k, v in self.peak_rss_mb.items()},
            "peak_ours_mb": round(self.peak_ours_mb, 1),
        }


class ProcessSampler:
    """Samples the trees of the given roots every `interval_s` on a background thread, from `with` to its end."""

    def __init__(self, roots: Mapping[str, Iterable[int]], interval_s: float = 0.2, alone: Iterable[str] = ()) -> None:
        """`alone`: roles whose roots stand for themselves only, not their descendants (this very process, whose
        children are the servers)."""
        self.roots = {role: list(pids) for role, pids in roots.items()}
        self.alone = set(alone)
        self.interval_s = interval_s
        self.usage = Usage()
        self._first_cpu: dict[tuple[int, float], float] = {}
        self._last_cpu: dict[tuple[int, float], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="procstats", daemon=True)
        self._own_cpu_s = 0.0
        self._started = 0.0

    def __enter__(self) -> ProcessSampler:
        self._started = time.perf_counter()
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.usage.seconds = time.perf_counter() - self._started
        self._total_cpu()

    def _loop(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(self.interval_s):
            self._sample()
        self._own_cpu_s = time.thread_time() - started

    def _members(self) -> dict[int, str]:
        """Every process in a role now: pid → role (the first role whose tree holds it)."""
        children: dict[int, list[int]] = {}
        for pid, ppid in _ppid_map().items():
            children.setdefault(ppid, []).append(pid)
        members: dict[int, str] = {}
        for role, roots in self.roots.items():
            stack = list(roots)
            while stack:
                pid = stack.pop()
                if pid in members:
                    continue
                members[pid] = role
                if role not in self.alone:
                    stack.extend(children.get(pid, ()))
        return members

    def _sample(self, first: bool = False) -> None:
        rss: dict[str, float] = {}
        for pid, role in self._members().items():
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    key = (pid, proc.create_time())
                    if role == OURS:
                        role = our_role(pid, self.roots[OURS][0], proc.cmdline())
                    times = proc.cpu_times()
                    cpu = times.user + times.system
                    mb = proc.memory_info().rss / 1e6
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self._first_cpu.setdefault(key, cpu if first else 0.0)
            self._last_cpu[key] = (role, cpu)
            rss[role] = rss.get(role, 0.0) + mb
        for role, mb in rss.items():
            self.usage.peak_rss_mb[role] = max(self.usage.peak_rss_mb.get(role, 0.0), mb)
        ours = sum(mb for role, mb in rss.items() if role in OUR_ROLES)
        self.usage.peak_ours_mb = max(self.usage.peak_ours_mb, ours)

    def _total_cpu(self) -> None:
        cpu: dict[str, float] = {}
        me = os.getpid()
        for key, (role, last) in self._last_cpu.items():
            spent = last - self._first_cpu[key]
            if key[0] == me:
                spent -= self._own_cpu_s
            cpu[role] = cpu.get(role, 0.0) + max(spent, 0.0)
        order = [r for r in self.roots if r != OURS] + [r for r in OUR_ROLES if r in cpu]
        self.usage.cpu_s = {role: cpu[role] for role in order if role in cpu}


@dataclass
class SampledRun:
    returncode: int
    output: str
    seconds: float
    usage: Usage


def run_sampled(
    command: list[str], roots: Mapping[str, list[int]], role: str, env: Mapping[str, str] | None = None
) -> SampledRun:
    """Run a command to its end, sampled: its process (and tree) is the first root of `role`, beside `roots`;
    stdout and stderr come back together. The clock runs from just before the start to the exit. For a role other
    than "ours" the role's CPU is at least the command's own rusage (itself and every descendant it waited for):
    sampling misses processes that live less than an interval, such as pgcopydb's and pg_dump's forks."""
    reaped = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with ProcessSampler({**roots, role: [proc.pid, *roots.get(role, [])]}) as sampler:
        output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    if role != OURS:  # a command's short-lived forks escape sampling; what it and they spent is in its rusage
        cpu = sampler.usage.cpu_s
        cpu[role] = max(cpu.get(role, 0.0), _children_cpu_s() - reaped)
    return SampledRun(proc.returncode, output, seconds, sampler.usage)


def _children_cpu_s() -> float:
    """CPU-seconds of every child this process has waited for (and of the children they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_table(usages: Mapping[str, Usage]) -> list[str]:
    """A markdown table: per method, each role's CPU-seconds and peak RSS, the total CPU and the peak of ours."""
    roles = list(dict.fromkeys(role for u in usages.values() for role in u.cpu_s))
    lines = [
        "| method | " + " | ".join(f"{r}: CPU-s / peak MB" for r in roles) + " | total CPU-s | peak RSS of ours MB |",
        "|---|" + "---:|" * (len(roles) + 2),
    ]
    for label, u in usages.items():
        cells = [f"{u.cpu_s[r]:.1f} / {u.peak_rss_mb.get(r, 0.0):,.0f}" if r in u.cpu_s else "" for r in roles]
        ours = f"{u.peak_ours_mb:,.0f}" if u.peak_ours_mb else ""
        lines.append(f"| {label} | {' | '.join(cells)} | {sum(u.cpu_s.values()):.1f} | {ours} |")
    return lines
