"""A run that stops on a refused value still writes its report: status failed, the reason, how far each table got
and what to do next; the one line on stderr and the exit code stay as they are. `--resume` with the policy changed
finishes the run, and its report counts what the new policy changed."""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.engines.mssql.servers import PASSWORD, Server, standin
from tests.helpers import SECRETS, CliRun, assert_one_line_error, cli, done_ranges, fill_big
from tests.pgserver import PasswordPostgres

ROWS = 3000
FIRST_REFUSED = 2501
"""Ids from here on have a non-zero 100 ns digit when odd: only the table's last range holds any."""


def at_text(i: int) -> str:
    return f"2021-06-01 12:00:00.654321{7 if i >= FIRST_REFUSED and i % 2 else 0}"


@pytest.fixture
def source() -> Iterator[Server]:
    with standin() as server:
        server.run(
            "CREATE TABLE dbo.readings (id int NOT NULL PRIMARY KEY, at datetime2(7) NOT NULL)",
            "CREATE TABLE dbo.sites (id int NOT NULL PRIMARY KEY, name nvarchar(20) NOT NULL)",
            "INSERT INTO dbo.sites VALUES (1, N'north'), (2, N'south')",
        )
        for start in range(1, ROWS + 1, 500):
            values = ", ".join(f"({i}, '{at_text(i)}')" for i in range(start, min(start + 500, ROWS + 1)))
            server.run(f"INSERT INTO dbo.readings VALUES {values}")
        yield server


def test_a_refused_value_leaves_a_report_and_resume_finishes_the_run(
    source: Server, make_database: Callable[[str], str], tmp_path: Path
) -> None:
    target = make_database("failed_report")
    cfg = tmp_path / "job.toml"
    cfg.write_text('rows_per_range = 500\nparallelism = 1\n[schema_map]\ndbo = "public"\n')
    report = tmp_path / "report.json"
    args = ["run", "--target", target, "--config", str(cfg), "--report", str(report)]

    failed = cli(*args, "--source", source.url())
    line = assert_one_line_error(failed, 1, "dbo.readings.at", f"id={FIRST_REFUSED}", "hundred_ns=round")
    stopped = json.loads(report.read_text())
    assert stopped["status"] == "failed"
    assert stopped["reason"] == line.removeprefix("error: ")
    states = {t["table"]: t["state"] for t in stopped["tables"]}
    assert set(states) == {"public.readings", "public.sites"}
    assert states["public.sites"] in ("finalized", "not started", "copied, keys and indexes not added yet")
    with psycopg.connect(target) as conn:
        done = conn.execute(
            "SELECT count(*) FROM _ray_replicator.ranges WHERE table_name = 'readings' AND state = 'done'"
        ).fetchone()
    assert done is not None and done[0] < 6
    readings = states["public.readings"]
    assert readings == "not started" or readings.startswith("partly copied: ")
    if readings != "not started":
        n = int(readings.removeprefix("partly copied: ").split(" of ")[0])
        assert readings == f"partly copied: {n} of 6 ranges" and 0 < n <= done[0]
        (rows,) = [t["rows"] for t in stopped["tables"] if t["table"] == "public.readings"]
        assert 0 < rows < ROWS
    assert "--resume" in stopped["next_step"] and "--existing drop" in stopped["next_step"]
    markdown = report.with_suffix(".md").read_text()
    assert "# ray-replicator run" in markdown and ": failed" in markdown
    assert f"stopped: {stopped['reason']}" in markdown and "next: run the same command with --resume" in markdown
    assert f"report (failed): {report}" in failed.stdout

    finished = cli(*args, "--resume", "--source", source.url(hundred_ns="round"))
    assert finished.returncode == 0, finished.stderr[-2000:]
    done_report = json.loads(report.read_text())
    assert done_report["status"] == "ok" and done_report["run_id"] == stopped["run_id"]
    odd = [i for i in range(FIRST_REFUSED, ROWS + 1) if i % 2]
    (changes,) = [t["value_changes"] for t in done_report["tables"] if t["table"] == "public.readings"]
    assert changes == [
        {
            "table": "dbo.readings",
            "column": "at",
            "policy": "hundred_ns=round",
            "count": len(odd),
            "first_keys": [f"id={i}" for i in odd[:5]],
        }
    ]
    with psycopg.connect(target) as conn:
        rows = conn.execute("SELECT id, at FROM public.readings ORDER BY id").fetchall()
    assert len(rows) == ROWS
    assert all(at == dt.datetime(2021, 6, 1, 12, 0, 0, 654322 if i in odd else 654321) for i, at in rows)
    for text in (failed.stdout, finished.stdout, report.read_text(), markdown):
        assert PASSWORD not in text


def test_ctrl_c_mid_copy_leaves_a_report_that_says_interrupted(
    pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path, ray_tmp: Path
) -> None:
    fill_big(pwpg)
    config = tmp_path / "small-ranges.toml"
    config.write_text("rows_per_range = 2000\n")
    report = tmp_path / "report.json"
    args = ["run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "big", "--parallelism", "1"]
    run = CliRun([*args, "--config", str(config), "--report", str(report)], ray_tmp)
    run.wait_for(lambda: done_ranges(fresh_db) >= 2, every=0.1)
    run.proc.send_signal(signal.SIGINT)
    stopped = run.finish(timeout=120)
    assert_one_line_error(stopped, 130, "interrupted by SIGINT", "--resume")
    data = json.loads(report.read_text())
    assert data["status"] == "interrupted" and data["reason"] == "interrupted by SIGINT"
    ((table, state),) = [(t["table"], t["state"]) for t in data["tables"]]
    ranges = data["tables"][0]["ranges"]
    assert table == "public.big" and state.startswith("partly copied: ") and state.endswith(f" of {ranges} ranges")
    assert "--resume" in data["next_step"]
    assert f"report (interrupted): {report}" in stopped.stdout
    for secret in SECRETS:
        assert secret not in report.read_text() + report.with_suffix(".md").read_text()
