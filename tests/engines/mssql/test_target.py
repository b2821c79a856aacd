"""SQL Server target against a second stand-in: each write strategy writes the hard cases back exactly."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ray_replicator.catalog import Catalog
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.mssql import MssqlSource, MssqlTarget
from tests.engines.mssql.servers import (
    HARD_COLUMNS,
    Server,
    create_hard_table,
    hard_expected,
)

WRITERS = ["bulkcopy", "bulk-insert", "insert"]
BINARY = ("b", "vb")


def _hard_table(writer: str) -> str:
    """The stand-in's BULK INSERT reads binary fields as raw text, where SQL Server reads hex digits (a stand-in
    bug): bulk-insert is checked on the hard cases without binary columns, and on binary by an xfail test."""
    return "hard_text" if writer == "bulk-insert" else "hard"


@pytest.fixture(scope="module")
def source_db(mssql_source_server: Server) -> Server:
    s = mssql_source_server
    create_hard_table(s)
    create_hard_table(s, name="hard_text", skip=BINARY)
    s.run(
        "CREATE TABLE dbo.ident (id int IDENTITY(10, 3) NOT NULL CONSTRAINT pk_ident PRIMARY KEY, v nvarchar(10) NULL)",
        "INSERT INTO dbo.ident (v) VALUES (N'a'), (N'b'), (N'c')",
        "DELETE FROM dbo.ident WHERE id = 13",
    )
    return s


def _copy(source: MssqlSource, target: MssqlTarget, catalog: Catalog, run_id: str = "r1") -> None:
    options = WriteOptions(run_id=run_id)
    target.prepare(catalog, "mssql", options)
    ranges = [KeyRange(t.schema, t.name, 0, "full") for t in catalog.tables]
    target.ledger.init(run_id, "p", "s", ranges)
    for table, rng in zip(catalog.tables, ranges, strict=True):
        target.write_range(table, rng, source.read_range(table, rng, 2, 1 << 20), options)
        target.finalize_table(table, "mssql", options)
    target.finalize(catalog, "mssql", options)


def _read(url: str, schema: str, name: str) -> list[dict[str, Any]]:
    with MssqlSource(url) as src:
        table = src.catalog([f"{schema}.{name}"], []).table(schema, name)
        rows: list[dict[str, Any]] = []
        for b in src.read_range(table, KeyRange(schema, name, 0, "full"), 1000, 64 << 20):
            rows.extend(b.to_pylist())
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
@pytest.mark.parametrize("writer", WRITERS)
def test_write_strategies_keep_hard_cases_exact(
    source_db: Server, mssql_target_server: Server, writer: str, reader: str
) -> None:
    url = mssql_target_server.writer_url(writer)
    hard = _hard_table(writer)
    with MssqlSource(source_db.url(reader=reader)) as src, MssqlTarget(url) as dst:
        catalog = src.catalog([f"dbo.{hard}", "dbo.ident"], [])
        _copy(src, dst, catalog)
        ledger = dst.ledger.ranges("r1")
    assert {k: (v["state"], v["rows"]) for k, v in ledger.items()} == {
        f"dbo.{hard}#0": ("done", 4),
        "dbo.ident#0": ("done", 2),
    }
    got = _read(mssql_target_server.url(), "dbo", hard)
    assert len(got) == len(hard_expected())
    for g, e in zip(got, hard_expected(), strict=True):
        for name, _ in HARD_COLUMNS:
            if name in g:
                assert g[name] == e[name], f"{writer} row {e['id']} column {name}: {g[name]!r:.80} != {e[name]!r:.80}"
    # '' stays '' and NULL stays NULL
    row0 = next(r for r in got if r["id"] == 0)
    assert (row0["nv"], row0["v"], row0["big"], row0.get("vb", b""), row0["ti"]) == ("", "", "", b"", None)
    # identity values kept, gaps kept, and the next value continues after the source's current value
    ident = _read(mssql_target_server.url(), "dbo", "ident")
    assert [r["id"] for r in ident] == [10, 16]
    mssql_target_server.run("INSERT INTO dbo.ident (v) VALUES (N'new')")
    assert mssql_target_server.rows("SELECT MAX(id) FROM dbo.ident")[0][0] == 19
    assert not [f for f in os.listdir(mssql_target_server.bulk_dir or ".") if f.endswith(".csv")]


def test_bulk_insert_hands_tables_with_binary_to_the_bulk_copy(source_db: Server, mssql_target_server: Server) -> None:
    """A CSV field cannot say "empty varbinary" (an empty field loads as NULL, as SQL Server documents), so the hard
    table, whose vb holds 0x, is written by the bulk copy and every binary value arrives as it was."""
    with MssqlSource(source_db.url()) as src, MssqlTarget(mssql_target_server.writer_url("bulk-insert")) as dst:
        catalog = src.catalog(["dbo.hard"], [])
        assert [n.split(":")[0] for n in dst.write_notes(catalog.tables)] == ["dbo.hard"]
        _copy(src, dst, catalog)
    got = _read(mssql_target_server.url(), "dbo", "hard")
    assert [(r["b"], r["vb"]) for r in got] == [(e["b"], e["vb"]) for e in hard_expected()]


@pytest.mark.parametrize("writer", WRITERS)
def test_retry_does_not_duplicate(source_db: Server, mssql_target_server: Server, writer: str) -> None:
    url = mssql_target_server.writer_url(writer)
    with MssqlSource(source_db.url()) as src, MssqlTarget(url) as dst:
        hard = _hard_table(writer)
        catalog = src.catalog([f"dbo.{hard}"], [])
        table = catalog.tables[0]
        options = WriteOptions(run_id="r2")
        dst.prepare(catalog, "mssql", options)
        rng = KeyRange("dbo", hard, 0, "full")
        dst.ledger.init("r2", "p", "s", [rng])
        dst.ledger.mark("r2", [rng.range_id], "failed", error="simulated")
        mssql_target_server.run(f"INSERT INTO dbo.{hard} (id, nn) VALUES (7, N'stale')")
        dst.write_range(table, rng, src.read_range(table, rng, 1000, 64 << 20), options)
        again = dst.write_range(table, rng, src.read_range(table, rng, 1000, 64 << 20), options)
        assert again.rows == 4
    assert mssql_target_server.rows(f"SELECT COUNT(*) FROM dbo.{hard}")[0][0] == 4
    assert mssql_target_server.rows(f"SELECT nn FROM dbo.{hard} WHERE id = 7")[0][0] == "Key"


@pytest.mark.parametrize("writer", WRITERS)
def test_hundred_ns_and_offsets_survive_sql_server_to_sql_server(
    source_db: Server, mssql_target_server: Server, writer: str
) -> None:
    if not source_db.rows("SELECT COUNT(*) FROM sys.tables WHERE name = 'ns7'")[0][0]:
        source_db.run(
            "CREATE TABLE dbo.ns7 (id int NOT NULL PRIMARY KEY, d2 datetime2(7) NULL, tm time(7) NULL, "
            "dto datetimeoffset(7) NULL)",
            "INSERT INTO dbo.ns7 VALUES (1, '2020-01-01 10:00:00.1234567', '23:59:59.9999999', "
            "'2020-01-01 10:00:00.1234567 -08:00'), (2, NULL, NULL, NULL)",
        )
    query = "SELECT id, CAST(d2 AS varchar(27)), CAST(tm AS varchar(16)), CAST(dto AS varchar(34)) FROM dbo.ns7"
    source_url = source_db.url(hundred_ns="keep", nul="keep")
    with MssqlSource(source_url) as src, MssqlTarget(mssql_target_server.writer_url(writer)) as dst:
        _copy(src, dst, src.catalog(["dbo.ns7"], []))
    assert sorted(mssql_target_server.rows(query)) == sorted(source_db.rows(query))
    assert sorted(source_db.rows(query))[0][1:] == (
        "2020-01-01 10:00:00.1234567",
        "23:59:59.9999999",
        "2020-01-01 10:00:00.1234567 -08:00",
    )
