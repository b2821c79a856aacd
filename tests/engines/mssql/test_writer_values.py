"""Each value class through each SQL Server writer, read back with pymssql (and psycopg for PostgreSQL): an
empty varbinary stays empty, '' stays '', NULL stays NULL, U+0000 in nvarchar and varchar is kept (nul=keep), and
sql_variant values of several base types arrive as the text documented in docs/type-mapping.md. A writer that cannot
carry a class writes no altered value: bulk-insert hands tables with variable binary columns to the bulk copy (and
says so), and refuses text with U+0000 by table, column and key before anything of the range is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ray_replicator.catalog import Catalog, Table
from ray_replicator.choices import map_table
from ray_replicator.engines import capabilities
from ray_replicator.engines.base import EngineError, KeyRange, Target, WriteOptions
from ray_replicator.engines.mssql import MssqlSource, MssqlTarget
from ray_replicator.engines.postgres import PostgresTarget
from ray_replicator.record import SchemaChange
from ray_replicator.typemap import apply_type_policy
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server
from tests.helpers import cli

WRITERS = ["bulkcopy", "bulk-insert", "insert"]

BINARY_ROWS = (
    "(1, 0x, 0x, 0x00)",
    "(2, NULL, NULL, NULL)",
    "(3, 0x00ff10, 0x0a0d, 0x2c22)",
)
TEXT_ROWS = (
    "(1, N'', '', N'')",
    "(2, NULL, NULL, NULL)",
    "(3, N'\"q\", c' + NCHAR(10), 'x,y', N'ü 😀')",
)
NUL_ROWS = ("(1, N'a' + NCHAR(0) + N'b', 'c' + CHAR(0) + 'd')", "(2, NCHAR(0), CHAR(0))")
CLR_ROWS = (
    "(1, geography::Point(47.65, -122.35, 4326), geometry::Point(1, 2, 0), hierarchyid::Parse('/1/2/'))",
    "(2, NULL, NULL, NULL)",
    "(3, geography::STGeomFromText('LINESTRING(-122.36 47.656, -122.343 47.656)', 4326), "
    "geometry::STGeomFromText('POLYGON((0 0, 3 0, 3 3, 0 0))', 0), hierarchyid::GetRoot())",
)
VARIANT_ROWS = ("(1, 42)", "(2, N'text')", "(3, NULL)", "(4, N'')", "(5, -7)", "(6, N'ü 😀')")


@pytest.fixture(scope="module")
def source(mssql_source_server: Server) -> Server:
    s = mssql_source_server
    s.run(
        "CREATE SCHEMA vals",
        "CREATE TABLE vals.bin (id int NOT NULL PRIMARY KEY, vb varbinary(max) NULL, vb16 varbinary(16) NULL, "
        "img varbinary(8) NULL)",
        f"INSERT INTO vals.bin (id, vb, vb16, img) VALUES {', '.join(BINARY_ROWS)}",
        "CREATE TABLE vals.txt (id int NOT NULL PRIMARY KEY, n nvarchar(40) NULL, v varchar(40) NULL, "
        "m nvarchar(max) NULL)",
        f"INSERT INTO vals.txt (id, n, v, m) VALUES {', '.join(TEXT_ROWS)}",
        "CREATE TABLE vals.nul (id int NOT NULL PRIMARY KEY, n nvarchar(40) NULL, v varchar(40) NULL)",
        f"INSERT INTO vals.nul (id, n, v) VALUES {', '.join(NUL_ROWS)}",
        "CREATE TABLE vals.variant (id int NOT NULL PRIMARY KEY, x sql_variant NULL)",
        f"INSERT INTO vals.variant (id, x) VALUES {', '.join(VARIANT_ROWS)}",
        "CREATE TABLE vals.clr (id int NOT NULL PRIMARY KEY, g geography NULL, gm geometry NULL, h hierarchyid NULL)",
        f"INSERT INTO vals.clr (id, g, gm, h) VALUES {', '.join(CLR_ROWS)}",
    )
    return s


def _plan(source_url: str, name: str, target_engine: str) -> tuple[Table, Table, list[SchemaChange]]:
    """The source table, its target twin and the type policy's changes, as a run decides them."""
    with MssqlSource(source_url) as src:
        catalog = src.catalog([f"vals.{name}"], [])
    catalog, changes = apply_type_policy(catalog, capabilities("mssql"), capabilities(target_engine), "fail")
    table = catalog.tables[0]
    return table, map_table(table, {}, changes), changes


def _copy(source_url: str, table: Table, twin: Table, target: Target, run_id: str = "r1") -> None:
    options = WriteOptions(run_id=run_id)
    target.prepare(Catalog(engine="mssql", database="master", tables=[twin]), "mssql", options)
    rng = KeyRange(twin.schema, twin.name, 0, "full")
    target.ledger.init(run_id, "p", "s", [rng])
    with MssqlSource(source_url) as src:
        target.write_range(twin, rng, src.read_range(table, rng, 2, 1 << 20), options)


def _rows(server: Server, sql: str) -> list[tuple[Any, ...]]:
    return sorted(server.rows(sql))


@pytest.mark.parametrize("writer", WRITERS)
def test_empty_varbinary_and_null_stay_apart(source: Server, mssql_target_server: Server, writer: str) -> None:
    table, twin, _ = _plan(source.url(), "bin", "mssql")
    with MssqlTarget(mssql_target_server.writer_url(writer)) as target:
        notes = target.write_notes([twin])
        _copy(source.url(), table, twin, target)
    query = "SELECT id, vb, vb16, img FROM vals.bin"
    got = _rows(mssql_target_server, query)
    assert got == _rows(source, query)
    assert got[0] == (1, b"", b"", b"\x00") and got[1] == (2, None, None, None)
    if writer == "bulk-insert":
        assert notes == [
            "vals.bin: written with writer=bulkcopy, not writer=bulk-insert: a BULK INSERT file loads an empty "
            "binary value as NULL, and vb, vb16, img may hold one"
        ]
    else:
        assert notes == []


@pytest.mark.parametrize("writer", WRITERS)
def test_empty_string_and_null_stay_apart(source: Server, mssql_target_server: Server, writer: str) -> None:
    table, twin, _ = _plan(source.url(), "txt", "mssql")
    with MssqlTarget(mssql_target_server.writer_url(writer)) as target:
        assert target.write_notes([twin]) == []
        _copy(source.url(), table, twin, target)
    query = "SELECT id, n, v, m FROM vals.txt"
    got = _rows(mssql_target_server, query)
    assert got == _rows(source, query)
    assert got[0] == (1, "", "", "") and got[1] == (2, None, None, None)


@pytest.mark.parametrize("writer", ["bulkcopy", "insert"])
def test_nul_in_nvarchar_and_varchar_is_kept(source: Server, mssql_target_server: Server, writer: str) -> None:
    url = source.url(nul="keep")
    table, twin, _ = _plan(url, "nul", "mssql")
    with MssqlTarget(mssql_target_server.writer_url(writer)) as target:
        _copy(url, table, twin, target)
    query = "SELECT id, n, v FROM vals.nul"
    got = _rows(mssql_target_server, query)
    assert got == _rows(source, query) == [(1, "a\x00b", "c\x00d"), (2, "\x00", "\x00")]


def test_bulk_insert_refuses_nul_by_name_and_loads_nothing(source: Server, mssql_target_server: Server) -> None:
    """The plan refuses nul=keep with writer=bulk-insert (tests/pipeline/test_preflight.py); should such text reach
    the writer anyway, it is refused before the BULK INSERT, and the range's transaction holds nothing."""
    url = source.url(nul="keep")
    table, twin, _ = _plan(url, "nul", "mssql")
    with MssqlTarget(mssql_target_server.writer_url("bulk-insert")) as target, pytest.raises(EngineError) as err:
        _copy(url, table, twin, target)
    assert str(err.value) == (
        "vals.nul.n at key id=1: text with NUL (U+0000) cannot travel in a BULK INSERT file; "
        "use writer=bulkcopy or writer=insert"
    )
    assert mssql_target_server.rows("SELECT COUNT(*) FROM vals.nul") == [(0,)]


@pytest.mark.parametrize("writer", ["bulkcopy", "insert"])
def test_clr_types_arrive_as_the_same_bytes(source: Server, mssql_target_server: Server, writer: str) -> None:
    """geography, geometry and hierarchyid keep their type and SQL Server's own serialization; the bulk copy's Arrow
    writer takes no CLR type, so writer=bulkcopy loads such a table by INSERT."""
    table, twin, changes = _plan(source.url(), "clr", "mssql")
    assert changes == []
    with MssqlTarget(mssql_target_server.writer_url(writer)) as target:
        _copy(source.url(), table, twin, target)
    types = mssql_target_server.rows(
        "SELECT c.name, ty.name FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        "WHERE c.object_id = OBJECT_ID('vals.clr') ORDER BY c.column_id"
    )
    assert types == [("id", "int"), ("g", "geography"), ("gm", "geometry"), ("h", "hierarchyid")]
    query = "SELECT id, CAST(g AS varbinary(max)), CAST(gm AS varbinary(max)), CAST(h AS varbinary(max)) FROM vals.clr"
    got = _rows(mssql_target_server, query)
    assert got == _rows(source, query)
    assert got[1] == (2, None, None, None) and got[2][3] == b""  # the root hierarchyid is empty, not NULL
    assert all(v is not None for v in got[0][1:] + got[2][1:])
    assert mssql_target_server.rows("SELECT h.ToString() FROM vals.clr WHERE id = 1") == [("/1/2/",)]


def _variant_text(source: Server) -> list[tuple[Any, ...]]:
    """What the documented text form is: SQL Server's CAST(value AS nvarchar(max)), read with pymssql."""
    return _rows(source, "SELECT id, CAST(x AS nvarchar(max)) FROM vals.variant")


@pytest.mark.parametrize("writer", WRITERS)
def test_sql_variant_as_text_into_sql_server(source: Server, mssql_target_server: Server, writer: str) -> None:
    url = source.url(sql_variant="text")
    table, twin, changes = _plan(url, "variant", "mssql")
    assert changes == [
        SchemaChange(
            "vals.variant",
            "x",
            "type_text",
            "sql_variant",
            "nvarchar(max)",
            "sql_variant = text: each value's base type is lost",
        )
    ]
    with MssqlTarget(mssql_target_server.writer_url(writer)) as target:
        _copy(url, table, twin, target)
    types = mssql_target_server.rows(
        "SELECT ty.name, c.max_length FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        "WHERE c.object_id = OBJECT_ID('vals.variant') AND c.name = 'x'"
    )
    assert types == [("nvarchar", -1)]
    got = _rows(mssql_target_server, "SELECT id, x FROM vals.variant")
    assert got == _variant_text(source)
    assert got[:4] == [(1, "42"), (2, "text"), (3, None), (4, "")]


def test_sql_variant_as_text_into_postgresql(source: Server, dst_db: Db) -> None:
    url = source.url(sql_variant="text")
    table, twin, changes = _plan(url, "variant", "postgres")
    assert [(c.kind, c.source, c.target) for c in changes] == [("type_text", "sql_variant", "text")]
    with PostgresTarget(dst_db.url) as target:
        _copy(url, table, twin, target)
    assert (
        dst_db.value(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'vals' AND column_name = 'x'"
        )
        == "text"
    )
    assert sorted(dst_db.rows("SELECT id, x FROM vals.variant")) == _variant_text(source)


# -- whole runs: the plan's decisions reach the writers and the report ------------------------------------------


def _run(source_url: str, target_url: str, tables: str, report: Path) -> dict[str, Any]:
    done = cli("run", "--source", source_url, "--target", target_url, "--tables", tables, "--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    assert result["status"] == "ok" and result["errors"] == []
    return result


def _change_lines(report: dict[str, Any]) -> list[str]:
    """The report's schema changes as their one-line form."""
    return [SchemaChange.from_json(c).line() for t in report["tables"] for c in t["schema_changes"]]


VARIANT_LINE = "vals.variant.x: type text: sql_variant → {} (sql_variant = text: each value's base type is lost)"


@pytest.mark.parametrize("writer", ["bulkcopy", "bulk-insert"])
def test_a_sql_variant_run_into_sql_server_verifies_by_checksums(
    source: Server, mssql_target_server: Server, writer: str, tmp_path: Path
) -> None:
    url = source.url(sql_variant="text")
    report = _run(url, mssql_target_server.writer_url(writer), "vals.variant", tmp_path / "r.json")
    assert report["warnings"] == []
    assert _change_lines(report) == [VARIANT_LINE.format("nvarchar(max)")]
    assert _rows(mssql_target_server, "SELECT id, x FROM vals.variant") == _variant_text(source)


def test_a_sql_variant_run_into_postgresql_verifies_by_checksums(source: Server, dst_db: Db, tmp_path: Path) -> None:
    report = _run(source.url(sql_variant="text"), dst_db.url, "vals.variant", tmp_path / "r.json")
    assert report["warnings"] == []
    assert _change_lines(report) == [VARIANT_LINE.format("text")]
    assert sorted(dst_db.rows("SELECT id, x FROM vals.variant")) == _variant_text(source)


def test_a_bulk_insert_run_says_which_tables_the_bulk_copy_wrote(
    source: Server, mssql_target_server: Server, tmp_path: Path
) -> None:
    report = _run(source.url(), mssql_target_server.writer_url("bulk-insert"), "vals.bin", tmp_path / "r.json")
    assert report["warnings"] == [
        "vals.bin: written with writer=bulkcopy, not writer=bulk-insert: a BULK INSERT file loads an empty binary "
        "value as NULL, and vb, vb16, img may hold one"
    ]
    assert _rows(mssql_target_server, "SELECT id, vb, vb16, img FROM vals.bin") == _rows(
        source, "SELECT id, vb, vb16, img FROM vals.bin"
    )
