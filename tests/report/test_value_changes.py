"""Every value a lossy opt-in policy changed is on the record: a SQL Server (stand-in) → PostgreSQL run with
hundred_ns=round and nul=replace counts exactly the changed values per column with the first keys, through the
real CLI and both readers; the counts are kept in the target's ledger with each range, so a run that fails after
its copy and is finished by --resume reports the same totals."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.engines.mssql.servers import PASSWORD, Server, standin
from tests.helpers import assert_one_line_error, cli

ROWS = 3000
ROUNDED = [i for i in range(1, ROWS + 1) if i % 7 == 0]
"""Ids whose `at` has a non-zero 100 ns digit (hundred_ns=round changes them)."""
WITH_NUL = [i for i in range(1, ROWS + 1) if i % 11 == 0]
"""Ids whose `note` holds U+0000 (nul=replace changes them)."""
INJECT = Path(__file__).resolve().parents[1] / "faults" / "inject"


def at_text(i: int) -> str:
    return f"2020-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}.123456{7 if i % 7 == 0 else 0}"


def note_sql(i: int) -> str:
    return f"N'n{i}' + NCHAR(0) + N'x'" if i % 11 == 0 else f"N'n{i}'"


@pytest.fixture(scope="module")
def events() -> Iterator[Server]:
    """dbo.events(id, at datetime2(7), note nvarchar): ROWS rows, some with 100 ns digits, some with NUL."""
    with standin() as server:
        server.run(
            "CREATE TABLE dbo.events (id int NOT NULL PRIMARY KEY, at datetime2(7) NULL, note nvarchar(40) NULL)"
        )
        for start in range(1, ROWS + 1, 500):
            values = ", ".join(
                f"({i}, '{at_text(i)}', {note_sql(i)})" for i in range(start, min(start + 500, ROWS + 1))
            )
            server.run(f"INSERT INTO dbo.events VALUES {values}")
        yield server


def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "job.toml"
    cfg.write_text('rows_per_range = 500\nverify = "counts"\n[schema_map]\ndbo = "public"\n')
    return cfg


def expected_changes() -> list[dict[str, Any]]:
    return [
        {
            "table": "dbo.events",
            "column": "at",
            "policy": "hundred_ns=round",
            "count": len(ROUNDED),
            "first_keys": [f"id={i}" for i in ROUNDED[:5]],
        },
        {
            "table": "dbo.events",
            "column": "note",
            "policy": "nul=replace",
            "count": len(WITH_NUL),
            "first_keys": [f"id={i}" for i in WITH_NUL[:5]],
        },
    ]


def by_column(report: dict[str, Any]) -> list[dict[str, Any]]:
    (table,) = report["tables"]
    return sorted(table["value_changes"], key=lambda c: str(c["column"]))


def assert_target_rows(url: str) -> None:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, at, note FROM public.events ORDER BY id").fetchall()
    assert len(rows) == ROWS
    for i, at, note in rows:
        micro = 123457 if i % 7 == 0 else 123456
        assert at == dt.datetime(2020, 1, 1, 0, i // 60 % 60, i % 60, micro), i
        assert note == (f"n{i}\ufffdx" if i % 11 == 0 else f"n{i}"), i


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_the_report_counts_each_changed_value_and_resume_keeps_the_totals(
    events: Server, make_database: Callable[[str], str], tmp_path: Path, reader: str
) -> None:
    target = make_database("value_changes")
    source = events.url(reader=reader, hundred_ns="round", nul="replace")
    report = tmp_path / "report.json"
    args = ["run", "--source", source, "--target", target, "--config", str(config(tmp_path))]
    # Every range commits, then adding the foreign keys fails: the run stops with its ranges in the ledger.
    inject = {
        "PYTHONPATH": os.pathsep.join([str(INJECT), os.environ.get("PYTHONPATH", "")]),
        "RR_INJECT": "driver-raise:PostgresTarget.finalize:-",
    }
    failed = cli(*args, "--report", str(report), env=inject)
    assert_one_line_error(failed, 1, "injected fault in PostgresTarget.finalize")
    first = json.loads(report.read_text())
    assert first["status"] == "failed" and "injected fault" in first["reason"]
    assert "--resume" in first["next_step"]
    assert by_column(first) == expected_changes()
    assert first["changed_values"] == len(ROUNDED) + len(WITH_NUL)
    assert f"report (failed): {report}" in failed.stdout

    resumed = cli(*args, "--resume", "--report", str(report))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    second = json.loads(report.read_text())
    assert second["status"] == "ok" and second["run_id"] == first["run_id"]
    assert by_column(second) == expected_changes()
    assert second["changed_values"] == len(ROUNDED) + len(WITH_NUL)
    markdown = report.with_suffix(".md").read_text()
    assert f"dbo.events.at: {len(ROUNDED)} values changed by hundred_ns=round; first keys id=7, id=14" in markdown
    assert f"dbo.events.note: {len(WITH_NUL)} values changed by nul=replace; first keys id=11, id=22" in markdown
    assert f"{len(ROUNDED)} values changed by hundred_ns=round" in resumed.stdout
    assert_target_rows(target)
    for text in (failed.stdout, failed.stderr, resumed.stdout, report.read_text(), markdown):
        assert PASSWORD not in text
