"""Schema changes are on the record before anything is written: `plan --target` lists them per table, the run's
report keeps them per table, and a resumed run reports the ones kept with its plan in the ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.engines.mssql.servers import Server
from tests.helpers import cli

DROPPED = {
    "table": "public.hosts",
    "column": "addr",
    "kind": "column_dropped",
    "source": "inet",
    "target": "",
    "reason": "PostgreSQL type inet has no SQL Server type; unsupported_types = skip-column",
}
AS_TEXT = {
    "table": "public.hosts",
    "column": "addr",
    "kind": "type_text",
    "source": "inet",
    "target": "nvarchar(max)",
    "reason": "PostgreSQL type inet has no SQL Server type; unsupported_types = text",
}
WIDENED = {
    "table": "public.hosts",
    "column": "name",
    "kind": "type_widened",
    "source": "text",
    "target": "nvarchar(max)",
    "reason": "SQL Server's unbounded Unicode text",
}


@pytest.fixture
def pg_source(make_database: Callable[[str], str]) -> str:
    url = make_database("schema_changes")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE hosts (id int PRIMARY KEY, addr inet, name text)")
        conn.execute("INSERT INTO hosts VALUES (1, '10.0.0.1', 'a'), (2, NULL, 'b')")
        conn.execute("CREATE TABLE plain (id int PRIMARY KEY)")
    return url


def test_plan_lists_the_schema_changes_per_table(pg_source: str, ms_target: Server) -> None:
    env = {"RAY_REPLICATOR_UNSUPPORTED_TYPES": "skip-column"}
    done = cli("plan", "--source", pg_source, "--target", ms_target.url(), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    at = lines.index("schema changes: 2")
    assert lines[at + 1 : at + 4] == [
        "  public.hosts:",
        "    public.hosts.addr: column dropped: inet not kept (PostgreSQL type inet has no SQL Server type; "
        "unsupported_types = skip-column)",
        "    public.hosts.name: type widened: text → nvarchar(max) (SQL Server's unbounded Unicode text)",
    ]
    as_json = cli("plan", "--source", pg_source, "--target", ms_target.url(), "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    assert json.loads(as_json.stdout)["schema_changes"] == [DROPPED, WIDENED]
    without_target = cli("plan", "--source", pg_source)
    assert without_target.returncode == 0 and "schema changes" not in without_target.stdout


def test_the_report_keeps_them_per_table(pg_source: str, ms_target: Server, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {"RAY_REPLICATOR_UNSUPPORTED_TYPES": "text"}
    done = cli("run", "--source", pg_source, "--target", ms_target.url(), "--report", str(report), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(report.read_text())
    changes = {t["table"]: t["schema_changes"] for t in data["tables"]}
    assert changes == {"public.hosts": [AS_TEXT, WIDENED], "public.plain": []}
    assert data["schema_changes"] == 2 and data["changed_values"] == 0
    assert data["warnings"] == []  # each change once, in the schema changes
    assert "on record: 2 schema changes, 0 values changed by lossy opt-in policies, in 1 of 2 tables" in done.stdout
    markdown = report.with_suffix(".md").read_text()
    assert markdown.count("public.hosts.addr: type text: inet → nvarchar(max)") == 1
    assert "schema: public.hosts.addr: type text: inet → nvarchar(max)" in markdown
    parts = ms_target.rows(
        f"SELECT plan_text FROM _ray_replicator.plans WHERE run_id = N'{data['run_id']}' ORDER BY part"
    )
    assert json.loads("".join(p[0] for p in parts))["schema_changes"] == [AS_TEXT, WIDENED]  # what --resume reports
