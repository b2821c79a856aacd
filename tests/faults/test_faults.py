"""Faults with real processes: kill -9 of a copying Ray worker, kill -9 of the driver then --resume, a target
PostgreSQL restarting mid-run, a spill directory that fills up. Every trial ends with exactly the source's rows
(same digest of every row, primary key in place, so no duplicate) — directly, or after one clear error and a
resume. RR_FAULT_TRIALS sets the repetitions (2 in CI; 3 for a report); each trial prints
its outcome (see with -s)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.engines.base import EngineError
from ray_replicator.report import RunReport
from tests.helpers import cli_env, pg_execute, pg_primary_key, pg_table_digest, ray_processes_under, run_settings
from tests.pgserver import PasswordPostgres

TRIALS = range(int(os.environ.get("RR_FAULT_TRIALS", "2")))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fault_source(pg_base_url: str) -> str:
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "fault_src")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, body text NOT NULL)")
        conn.execute("INSERT INTO items SELECT g, g % 97, repeat(md5(g::text), 6) FROM generate_series(1, 240000) g")
        conn.execute("ANALYZE items")
    return url


def settings(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return run_settings(source, target, rows_per_range=30_000, parallelism=2) | extra


def assert_exact(source: str, target: str) -> None:
    assert pg_table_digest(source, "public", "items") == pg_table_digest(target, "public", "items")
    assert pg_primary_key(target, "public", "items") == ["id"]


def in_thread(fn: Callable[[], RunReport]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["report"] = fn()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def ledger_rows(url: str, state: str) -> list[tuple[str, str | None]]:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(
                "SELECT range_id, node FROM _ray_replicator.ranges WHERE state = %s", (state,)
            ).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return []


def wait_for(predicate: Callable[[], Any], timeout: float = 90.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"waited {timeout} s in vain for {predicate}")


@pytest.mark.parametrize("trial", TRIALS)
def test_kill_9_of_a_copying_worker(
    ray_local: None, fault_source: str, make_database: Callable[[str], str], trial: int
) -> None:
    target = make_database("kill_worker")
    thread, box = in_thread(lambda: replicate(settings(fault_source, target)))
    range_id, node = wait_for(lambda: next(iter(ledger_rows(target, "copying")), None))
    pid = int(str(node).rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    thread.join(180)
    assert "error" not in box, box.get("error")
    report = box["report"]
    assert report.status == "ok", report.errors
    assert report.tables[0].verified == "yes (checksums)"
    assert_exact(fault_source, target)
    print(f"kill -9 worker trial {trial}: killed pid {pid} copying {range_id}; run ok, {report.total_rows} rows exact")


@pytest.mark.parametrize("trial", TRIALS)
def test_kill_9_of_the_driver_then_resume(
    fault_source: str, make_database: Callable[[str], str], ray_tmp: Path, trial: int
) -> None:
    target = make_database("kill_driver")
    env = cli_env(ray_tmp)
    config = ray_tmp / "job.toml"
    config.write_text(f"rows_per_range = 30000\nparallelism = 2\nreport_path = '{ray_tmp / 'report.json'}'\n")
    args = [sys.executable, "-m", "ray_replicator", "run", "--source", fault_source, "--target", target]
    args += ["--config", str(config)]
    try:
        driver = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: ledger_rows(target, "done"), every=0.05)
        driver.kill()
        driver.wait(30)
        for proc in ray_processes_under(ray_tmp):  # the local Ray this driver started
            proc.kill()
        done_before = len(ledger_rows(target, "done"))
        resumed = subprocess.run([*args, "--resume"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    finally:
        for proc in ray_processes_under(ray_tmp):
            proc.kill()
    assert_exact(fault_source, target)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT state FROM _ray_replicator.runs").fetchall() == [("done",)]
    print(f"kill -9 driver trial {trial}: {done_before} ranges were done; --resume exit 0, rows exact")


@pytest.fixture(scope="module")
def restartable() -> Iterator[PasswordPostgres]:
    server = PasswordPostgres()
    yield server
    server.close()


@pytest.mark.parametrize("trial", TRIALS)
def test_target_restarts_mid_run(ray_local: None, fault_source: str, restartable: PasswordPostgres, trial: int) -> None:
    name = f"restart_{trial}"
    restartable.sql(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    target = restartable.url(name)
    thread, box = in_thread(lambda: replicate(settings(fault_source, target)))
    wait_for(lambda: ledger_rows(target, "done"), every=0.05)
    restartable.stop("fast")
    time.sleep(0.5)
    restartable.start()
    thread.join(25)
    hung = []
    if thread.is_alive():
        # Before PostgresTarget._watch_copy, a worker stayed blocked in asyncpg's COPY IN on a socket the old
        # server had closed (CLOSE-WAIT, never read). Should that come back, kill it so the suite goes on.
        for _, node in ledger_rows(target, "copying"):
            hung.append(int(str(node).rsplit(":", 1)[1]))
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung[-1], signal.SIGKILL)
        thread.join(120)
    if "error" in box:
        error = box["error"]
        assert isinstance(error, EngineError) and "\n" not in str(error), error
        restartable.wait_ready()
        report = replicate(settings(fault_source, target, resume=True))
        outcome = f"failed with {str(error)[:120]!r}, then --resume"
    else:
        report = box["report"]
        outcome = "retried on its own"
    assert report.status == "ok", report.errors
    assert_exact(fault_source, target)
    stuck = f"; HUNG until pids {hung} were killed" if hung else ""
    print(f"target restart trial {trial}: {outcome}{stuck}; run ok, rows exact")
    assert not hung, "a copy worker hung after the restart (PostgresTarget._watch_copy should have ended its COPY)"


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    mount = Path(tempfile.mkdtemp(prefix="rr-spill-", dir="/tmp"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)
    mount.rmdir()


@pytest.mark.parametrize("trial", TRIALS)
def test_spill_directory_fills_up(
    ray_local: None, fault_source: str, make_database: Callable[[str], str], tiny_disk: Path, trial: int
) -> None:
    """A 3 MB spill disk, 1 MB memory cap and a target slowed by a row trigger: the readers spill until the disk
    is full; the run stops with one line naming the directory, and a resume without spilling finishes exactly."""
    target = pg_execute(
        make_database("spill_full"),
        "CREATE TABLE items (id int, grp int NOT NULL, body text NOT NULL)",
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(0.00002); RETURN NEW; END $$",
        "CREATE TRIGGER slow BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION slow()",
    )
    spill = settings(
        fault_source,
        target,
        existing="truncate",
        memory_cap_mb=1,
        batch_bytes=256 * 1024,
        spill_dir=str(tiny_disk),
        spill_cap_mb=1000,
        rows_per_range=120_000,
    )
    with pytest.raises(EngineError) as failed:
        replicate(spill)
    message = str(failed.value)
    assert "\n" not in message and f"spill directory {tiny_disk} is full" in message and "--resume" in message
    leftovers = wait_for(lambda: not list(tiny_disk.rglob("*.raw")) + list(tiny_disk.rglob("*.arrow")), 20, 0.2)
    assert leftovers, "spill files left behind"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DROP TRIGGER slow ON items")
        assert conn.execute("SELECT state FROM _ray_replicator.runs").fetchall() == [("failed",)]
    report = replicate({**spill, "spill_dir": None, "resume": True})
    assert report.status == "ok", report.errors
    assert pg_table_digest(fault_source, "public", "items") == pg_table_digest(target, "public", "items")
    print(f"spill full trial {trial}: {message[:110]!r}; resume ok, rows exact")
