"""Faults met by the real CLI in a subprocess (real PostgreSQL that checks passwords, real local Ray): a worker
killed until Ray's retries are used up, a bug raising in a worker or in a finalize thread, Ray's memory monitor
killing workers, the memory budget actor killed, and a server outage during finalize, foreign keys and verify.

Each: the exit code, exactly one line on stderr, no traceback, no password, no colour codes; the ledger's state read
with psycopg; where the run failed, `--resume` finishes it with the source's rows; where an outage was ridden out,
the run itself finishes exactly."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from tests.helpers import (
    SECRETS,
    CliRun,
    assert_one_line_error,
    fresh_database,
    password_server_fixture,
    pg_primary_key,
    pg_table_digest,
)
from tests.pgserver import PasswordPostgres

INJECT = Path(__file__).resolve().parent / "inject"


server = password_server_fixture(
    "src",
    "CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, body text NOT NULL)",
    "INSERT INTO items SELECT g, g % 97, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g",
    "CREATE INDEX items_grp ON items (grp)",
    "CREATE TABLE notes (id int PRIMARY KEY, item int NOT NULL REFERENCES items (id), note text)",
    "INSERT INTO notes SELECT g, g * 3, 'n' || g FROM generate_series(1, 5000) g",
    "ANALYZE",
)
"""Its own server, since the outage tests stop it: src has items (60k rows) and notes referencing items."""


@pytest.fixture
def target(server: PasswordPostgres) -> str:
    return fresh_database(server)


def injecting(fault: str) -> dict[str, str]:
    """The environment that makes the CLI meet `fault`, RR_INJECT=<fault>:<where>:<dir> (tests/faults/inject)."""
    return {"PYTHONPATH": str(INJECT), "RR_INJECT": fault}


def holding(step: str, held: Path, **extra: str) -> dict[str, str]:
    """The environment that makes the CLI hold `step` (tests/faults/inject): it touches held/held on arrival and
    goes on once held/release exists."""
    held.mkdir()
    return injecting(f"hold:{step}:{held}") | extra


def outage_when_held(run: CliRun, server: PasswordPostgres, held: Path) -> None:
    """Once the CLI holds its step: stop the server, let the step go on into the outage for 8 s, start it again."""
    try:
        run.wait_for(lambda: (held / "held").exists())
        server.stop("fast")
        (held / "release").touch()
        time.sleep(8)
    finally:
        server.start()


def run_args(server: PasswordPostgres, target: str, tmp_path: Path, *extra: str) -> list[str]:
    config = tmp_path / "job.toml"
    if not config.exists():
        config.write_text("rows_per_range = 5000\n")
    args = ["run", "--source", server.url("src"), "--target", target, "--parallelism", "1", "--config", str(config)]
    return [*args, "--report", str(tmp_path / "report.json"), *extra]


def ledger(url: str, sql: str) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(sql).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return []


def run_state(url: str) -> list[tuple[Any, ...]]:
    return ledger(url, "SELECT state FROM _ray_replicator.runs")


def assert_exact(server: PasswordPostgres, target: str) -> None:
    for table in ("items", "notes"):
        assert pg_table_digest(server.url("src"), "public", table) == pg_table_digest(target, "public", table)
        assert pg_primary_key(target, "public", table) == ["id"]
    fks = ledger(target, "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'notes'::regclass")
    assert len(fks) == 1, fks


def assert_quiet(done: subprocess.CompletedProcess[str]) -> None:
    """Nothing of Ray's on stdout/stderr, no colour codes (stdout is a pipe here)."""
    assert "(raylet)" not in done.stdout + done.stderr and "\x1b[" not in done.stdout + done.stderr, done.stdout
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr


def resume_exactly(server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path) -> None:
    resumed = CliRun([*run_args(server, target, tmp_path), "--resume"], ray_tmp).finish()
    assert resumed.returncode == 0 and resumed.stderr.strip() == "", resumed.stderr[-3000:]
    assert_quiet(resumed)
    assert_exact(server, target)
    assert run_state(target) == [("done",)]


def diagnostics_log(tmp_path: Path) -> str:
    log = tmp_path / "report.log"
    assert log.exists(), "no diagnostics log beside the report"
    text = log.read_text()
    assert "\x1b[" not in text and not any(s in text for s in SECRETS)
    return text


def test_worker_killed_until_rays_retries_are_used_up(
    server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path
) -> None:
    """Every attempt's worker is SIGKILLed as it starts writing its range (tests/faults/inject `die`): killing them
    from outside once the ledger shows a range copying missed ranges that copy in a tenth of a second."""
    run = CliRun(run_args(server, target, tmp_path), ray_tmp, injecting("die:PostgresTarget.write_range_raw:-"))
    done = run.finish()
    line = assert_one_line_error(done, 1, "failed after 4 attempts: the worker process died", "worker logs in")
    assert line.startswith("error: range public.items#") or line.startswith("error: range public.notes#"), line
    assert_quiet(done)
    assert run_state(target) == [("failed",)]
    assert "(raylet) A worker died" in diagnostics_log(tmp_path)
    resume_exactly(server, target, tmp_path, ray_tmp)


@pytest.mark.parametrize(
    ("inject", "where", "traceback_logged"),
    [
        ("raise:PostgresTarget.write_range_raw:-", "range", False),
        ("driver-raise:PostgresTarget.finalize_table:-", "finalizing", True),
    ],
    ids=["in a copy worker", "in a finalize thread"],
)
def test_a_bug_raising(
    server: PasswordPostgres,
    target: str,
    tmp_path: Path,
    ray_tmp: Path,
    inject: str,
    where: str,
    traceback_logged: bool,
) -> None:
    """The one line names the step and the exception; a bug in the driver's finalize thread leaves its traceback in
    the diagnostics log beside the report."""
    method = inject.split(":")[1]
    done = CliRun(run_args(server, target, tmp_path), ray_tmp, injecting(inject)).finish()
    line = assert_one_line_error(done, 1, f"failed: ValueError: injected fault in {method}")
    assert line.startswith(f"error: {where} public."), line
    assert_quiet(done)
    assert run_state(target) == [("failed",)]
    if traceback_logged:
        assert "Traceback" in diagnostics_log(tmp_path)
    resume_exactly(server, target, tmp_path, ray_tmp)


def test_rays_memory_monitor_kills_the_copy_workers(
    server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path
) -> None:
    """A node 'out of memory' as Ray's own monitor sees it (its threshold set below what the box uses)."""
    env = {"RAY_memory_usage_threshold": "0.001", "RAY_memory_monitor_refresh_ms": "100", "RAY_task_oom_retries": "1"}
    done = CliRun(run_args(server, target, tmp_path), ray_tmp, env).finish()
    assert_one_line_error(done, 1, "failed: Ray's memory monitor killed the worker", "lower parallelism")
    assert_quiet(done)
    assert run_state(target) == [("failed",)]
    resume_exactly(server, target, tmp_path, ray_tmp)


def test_the_memory_budget_actor_killed(server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path) -> None:
    spill = tmp_path / "spill"
    run = CliRun(run_args(server, target, tmp_path, "--spill-dir", str(spill), "--memory-cap-mb", "8"), ray_tmp)

    def budget_actor() -> psutil.Process | None:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if "ray::NodeBudget" in " ".join(proc.info.get("cmdline") or []) and any(
                    str(ray_tmp) in " ".join(p.cmdline()) for p in proc.parents()
                ):
                    return proc
            except psutil.Error:
                continue
        return None

    actor = run.wait_for(budget_actor)
    run.wait_for(lambda: ledger(target, "SELECT 1 FROM _ray_replicator.ranges WHERE state = 'done'"))
    actor.kill()
    done = run.finish()
    if done.returncode == 0:
        pytest.skip("every range had reserved its budget before the actor died")  # timing; the run was exact
    line = assert_one_line_error(done, 1, "failed: the node's memory budget actor died")
    assert line.startswith("error: range public."), line
    assert_quiet(done)
    assert run_state(target) == [("failed",)]
    resume_exactly(server, target, tmp_path, ray_tmp)


@pytest.mark.parametrize(
    "step",
    ["PostgresTarget.finalize_table", "PostgresTarget.finalize"],
    ids=["finalize", "foreign-keys"],
)
def test_an_outage_during_finalize_is_ridden_out(
    server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path, step: str
) -> None:
    """The step is held until the server is down, then let go into the outage (8 s): it loses its connection,
    waits and tries again, and the run ends exact with no error."""
    held = tmp_path / "held"
    run = CliRun(run_args(server, target, tmp_path), ray_tmp, holding(step, held))
    outage_when_held(run, server, held)
    done = run.finish()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == "", done.stderr
    assert_quiet(done)
    assert_exact(server, target)
    assert run_state(target) == [("done",)]
    assert "lost the connection" in diagnostics_log(tmp_path)


def test_an_outage_during_the_verify_command_is_ridden_out(
    server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path
) -> None:
    copied = CliRun(run_args(server, target, tmp_path, "--verify", "none"), ray_tmp).finish()
    assert copied.returncode == 0, copied.stderr[-3000:]
    held = tmp_path / "held"
    env = holding("PostgresEndpoint.count_range", held, FORCE_COLOR="1")
    verify = CliRun(["verify", "--source", server.url("src"), "--target", target], ray_tmp, env)
    outage_when_held(verify, server, held)
    done = verify.finish()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == "", done.stderr
    assert_quiet(done)
    assert "ok   public.items: source 60,000 rows, target 60,000 rows" in done.stdout
    assert "verify (counts): compared row counts of every range in 2 table(s), 0 differ" in done.stdout


def test_verify_names_the_cause_of_a_failed_count(
    server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path
) -> None:
    """The target lacks the table: the count's own error, not Ray's task header with its colour codes (none even
    with FORCE_COLOR, stderr being a pipe)."""
    args = ["verify", "--source", server.url("src"), "--target", target, "--tables", "items"]
    done = CliRun(args, ray_tmp, {"FORCE_COLOR": "1"}).finish()
    line = assert_one_line_error(done, 1, "public.items", "does not exist")
    assert "ray::" not in line and "\x1b[" not in done.stderr and "RayTaskError" not in line, line
    assert_quiet(done)


def test_sigterm_while_a_table_finalizes(server: PasswordPostgres, target: str, tmp_path: Path, ray_tmp: Path) -> None:
    """SIGTERM while a finalize job runs (held here for good, as a long index build would be): the CLI does not
    wait for it, exits 143 with one line, the run is `interrupted`, and `--resume` finalizes the table."""
    held = tmp_path / "held"
    env = holding("PostgresTarget.finalize_table", held)
    run = CliRun(run_args(server, target, tmp_path), ray_tmp, env)
    run.wait_for(lambda: (held / "held").exists())
    run.proc.send_signal(signal.SIGTERM)
    done = run.finish(timeout=120)
    assert_one_line_error(done, 143, "interrupted by SIGTERM", "--resume")
    assert_quiet(done)
    assert run_state(target) == [("interrupted",)]
    resume_exactly(server, target, tmp_path, ray_tmp)
