"""SIGTERM (timeout, systemd, Airflow, Kubernetes) and SIGINT (Ctrl-C) during the copy, sent to the real CLI: one
line, 143 / 130, the run `interrupted` in the ledger, no absl or Ray signal dump, no Ray process left behind, and
`--resume` then finishes with the source's rows."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.errors.conftest import assert_one_line_error, cli
from tests.helpers import pg_table_digest
from tests.pgserver import PasswordPostgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A Ray temp dir of the run's own (short: Ray's socket paths must stay under 108 bytes), to find its
    processes."""
    path = Path(tempfile.mkdtemp(prefix="rr-", dir="/tmp"))
    yield path
    for proc in ray_processes_under(path):
        proc.kill()
    shutil.rmtree(path, ignore_errors=True)


def ray_processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(path) in part for part in proc.info.get("cmdline") or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def done_ranges(url: str) -> int:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM _ray_replicator.ranges WHERE state = 'done'").fetchone()
            return int(row[0]) if row else 0
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return 0


def big_source(pwpg: PasswordPostgres) -> None:
    pwpg.sql(
        "CREATE TABLE IF NOT EXISTS big (id int PRIMARY KEY, body text)",
        "TRUNCATE big",
        "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 200000) g",
        "ANALYZE big",
        database="src",
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_copy_marks_the_run_interrupted_and_resumes(
    pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path, ray_tmp: Path, signum: int, code: int
) -> None:
    big_source(pwpg)
    config = tmp_path / "small-ranges.toml"
    config.write_text("rows_per_range = 2000\n")
    args = ["run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "big", "--parallelism", "1"]
    args += ["--config", str(config), "--report", str(tmp_path / "report.json")]
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_TMPDIR=str(ray_tmp))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_replicator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 180
        while done_ranges(fresh_db) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    name = signal.Signals(signum).name
    line = assert_one_line_error(stopped, code, f"interrupted by {name}", "--resume")
    assert "SIGTERM received" not in stderr and "\x1b[" not in stdout + stderr, line
    with psycopg.connect(fresh_db) as conn:
        state = conn.execute("SELECT state FROM _ray_replicator.runs").fetchall()
        left = conn.execute("SELECT count(*) FROM _ray_replicator.ranges WHERE state <> 'done'").fetchone()
    assert state == [("interrupted",)] and left and left[0] > 0
    deadline = time.monotonic() + 30  # Ray's processes were told to stop before the CLI exited
    while ray_processes_under(ray_tmp) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_processes_under(ray_tmp) == [], "the run's local Ray outlived it"

    resumed = cli(*args, "--resume", env={"RAY_TMPDIR": str(ray_tmp)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stderr.strip() == "", resumed.stderr
    assert pg_table_digest(pwpg.url("src"), "public", "big") == pg_table_digest(fresh_db, "public", "big")
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT state FROM _ray_replicator.runs").fetchall() == [("done",)]


def test_sigterm_before_any_copy_is_one_line_and_leaves_nothing_to_resume(
    pwpg: PasswordPostgres, fresh_db: str, ray_tmp: Path
) -> None:
    """SIGTERM while the CLI still starts (before the ledger knows the run): 143, one line, no resume hint."""
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_TMPDIR=str(ray_tmp))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_replicator", "run", "--source", pwpg.url("src"), "--target", fresh_db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        # The process title is rewritten (the password hidden) once the CLI's own code runs: signals are ours.
        deadline = time.monotonic() + 60
        while not any("ray-replicator" in " ".join(p.cmdline()) for p in [psutil.Process(proc.pid)]):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    line = assert_one_line_error(stopped, 143, "interrupted by SIGTERM")
    if "--resume" in line:  # the signal came after the ledger had the run: then it must say so there
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("SELECT state FROM _ray_replicator.runs").fetchall() == [("interrupted",)]
