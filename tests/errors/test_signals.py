"""SIGTERM (timeout, systemd, Airflow, Kubernetes) and SIGINT (Ctrl-C) during the copy, sent to the real CLI: one
line, 143 / 130, the run `interrupted` in the ledger, no absl or Ray signal dump, no Ray process left behind, and
`--resume` then finishes with the source's rows."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.helpers import (
    CliRun,
    assert_one_line_error,
    cli,
    done_ranges,
    fill_big,
    pg_table_digest,
    ray_processes_under,
)
from tests.pgserver import PasswordPostgres


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_copy_marks_the_run_interrupted_and_resumes(
    pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path, ray_tmp: Path, signum: int, code: int
) -> None:
    fill_big(pwpg)
    config = tmp_path / "small-ranges.toml"
    config.write_text("rows_per_range = 2000\n")
    args = ["run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "big", "--parallelism", "1"]
    args += ["--config", str(config), "--report", str(tmp_path / "report.json")]
    run = CliRun(args, ray_tmp)
    run.wait_for(lambda: done_ranges(fresh_db) >= 3, every=0.1)
    run.proc.send_signal(signum)
    stopped = run.finish(timeout=120)
    stderr = stopped.stderr
    name = signal.Signals(signum).name
    line = assert_one_line_error(stopped, code, f"interrupted by {name}", "--resume")
    assert "SIGTERM received" not in stderr and "\x1b[" not in stopped.stdout + stderr, line
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
    run = CliRun(["run", "--source", pwpg.url("src"), "--target", fresh_db], ray_tmp)
    # The process title is rewritten (the password hidden) once the CLI's own code runs: signals are ours.
    run.wait_for(lambda: "ray-replicator" in " ".join(psutil.Process(run.proc.pid).cmdline()), 60, every=0.02)
    run.proc.send_signal(signal.SIGTERM)
    stopped = run.finish(timeout=60)
    line = assert_one_line_error(stopped, 143, "interrupted by SIGTERM")
    if "--resume" in line:  # the signal came after the ledger had the run: then it must say so there
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("SELECT state FROM _ray_replicator.runs").fetchall() == [("interrupted",)]
