"""The value changes of each range live in the target's ledger (table value_changes), also in a SQL Server target:
written before the range's done mark on a connection of their own, read back by --resume; a ledger an older
version wrote, without that table, gains it when a run resumes there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ray_replicator import replicate
from tests.engines.mssql.servers import Server, standin

ROWS = 900


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    with standin() as source, standin() as target:
        source.run("CREATE TABLE dbo.ev (id int NOT NULL PRIMARY KEY, at datetime2(7) NULL)")
        values = ", ".join(f"({i}, '2020-01-01 00:00:00.123456{i % 3}')" for i in range(1, ROWS + 1))
        source.run(f"INSERT INTO dbo.ev VALUES {values}")
        yield source, target


@pytest.mark.parametrize("writer", ["insert", "bulkcopy"])
def test_sql_server_ledger_keeps_each_ranges_changes(
    ray_local: None, servers: tuple[Server, Server], writer: str
) -> None:
    source, target = servers
    settings = {
        "source": {"url": source.url(hundred_ns="round")},
        "target": {"url": target.url(writer=writer)},
        "rows_per_range": 300,
        "report_path": None,
    }
    report = replicate(settings)
    assert report.status == "ok", report.errors
    changed = [i for i in range(1, ROWS + 1) if i % 3]
    (change,) = report.tables[0].value_changes
    assert (change.column, change.policy, change.count) == ("at", "hundred_ns=round", len(changed))
    assert change.first_keys == [f"id={i}" for i in changed[:5]]
    saved = target.rows(f"SELECT range_id FROM _ray_replicator.value_changes WHERE run_id = N'{report.run_id}'")
    assert sorted(r[0] for r in saved) == ["dbo.ev#0", "dbo.ev#1", "dbo.ev#2"]

    # A ledger from a version without the table: the resume of an unfinished run adds it and finishes.
    target.run(
        "DROP TABLE _ray_replicator.value_changes",
        f"UPDATE _ray_replicator.runs SET state = N'failed' WHERE run_id = N'{report.run_id}'",
    )
    resumed = replicate({**settings, "resume": True})
    assert resumed.status == "ok" and resumed.run_id == report.run_id
    assert resumed.tables[0].value_changes == []  # that version kept no counts
    assert target.rows("SELECT COUNT(*) FROM _ray_replicator.value_changes") == [(0,)]
