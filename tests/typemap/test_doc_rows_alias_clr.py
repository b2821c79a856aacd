"""The rows of docs/type-mapping.md for SQL Server's CLR types (geography, geometry, hierarchyid) and alias types,
in each direction the page claims, values read with a real client on both sides.

- geography / geometry / hierarchyid → PostgreSQL bytea holding SQL Server's own serialization (on the record as a
  type change); SQL Server → SQL Server keeps the type (tests/engines/mssql/test_writer_values.py,
  test_clr_types_arrive_as_the_same_bytes, every writer).
- Alias types (CREATE TYPE dbo.Phone FROM varchar(20) NOT NULL) are created on the stand-in source and copied by the
  data mover: each column arrives as the base type on either target (every SQL Server writer), with the alias's
  nullability unless the column declared its own, the alias listed as `type_changed` and not recreated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_replicator import replicate
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server, small_run_settings, standin

CLR_ROWS = (
    "INSERT INTO dbo.clr VALUES "
    "(1, geography::Point(47.65, -122.35, 4326), geometry::Point(1, 2, 0), hierarchyid::Parse('/1/2/')), "
    "(2, NULL, NULL, NULL), "
    "(3, geography::STGeomFromText('LINESTRING(-122.36 47.656, -122.343 47.656)', 4326), "
    "geometry::STGeomFromText('POLYGON((0 0, 3 0, 3 3, 0 0))', 0), hierarchyid::GetRoot())"
)
CLR_BYTES = "SELECT id, CAST(g AS varbinary(max)), CAST(gm AS varbinary(max)), CAST(h AS varbinary(max)) FROM dbo.clr"


@pytest.fixture
def dst_db(make_database: Callable[[str], str]) -> Db:
    return Db(make_database("dst"))


@pytest.fixture
def ms_source() -> Iterator[Server]:
    with standin() as server:
        yield server


def test_clr_types_reach_postgresql_as_their_serialization(ms_source: Server, dst_db: Db, ray_local: None) -> None:
    ms_source.run(
        "CREATE TABLE dbo.clr (id int NOT NULL PRIMARY KEY, g geography NULL, gm geometry NULL, h hierarchyid NULL)",
        CLR_ROWS,
    )
    report = replicate(small_run_settings(ms_source.url(), dst_db.url, verify="checksums"))
    assert report.status == "ok", report.errors
    changes = [(c.column, c.kind, c.source, c.target) for t in report.tables for c in t.schema_changes]
    assert changes == [
        ("g", "type_changed", "geography", "bytea"),
        ("gm", "type_changed", "geometry", "bytea"),
        ("h", "type_changed", "hierarchyid", "bytea"),
    ]
    types = dst_db.rows(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = 'clr' "
        "ORDER BY ordinal_position"
    )
    assert types == [("id", "integer"), ("g", "bytea"), ("gm", "bytea"), ("h", "bytea")]
    got = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        for row in dst_db.rows("SELECT id, g, gm, h FROM dbo.clr ORDER BY id")
    ]
    assert got == sorted(ms_source.rows(CLR_BYTES))
    assert got[1] == (2, None, None, None) and got[2][3] == b""  # the root hierarchyid is empty, not NULL
    assert all(v for v in got[0][1:])


ALIAS_TYPES = (
    "CREATE TYPE dbo.Phone FROM varchar(20) NOT NULL",
    "CREATE TYPE Flag FROM bit NULL",
    "CREATE TABLE dbo.people (id int NOT NULL PRIMARY KEY, phone dbo.Phone, alt Phone NULL, active Flag)",
    "INSERT INTO dbo.people VALUES (1, '+1 555 0100', NULL, 1), (2, '', '0123456789abcdefghij', NULL), (3, 'x', '', 0)",
)
PEOPLE = "SELECT id, phone, alt, active FROM dbo.people ORDER BY id"
#: the record of either target: each column of an alias type gets the base type, the alias is not recreated
ALIAS_CHANGES = [
    ("phone", "type_changed", "Phone", "varchar(20)"),
    ("alt", "type_changed", "Phone", "varchar(20)"),
    ("active", "type_changed", "Flag", "bit"),
]


def _schema_changes(report: Any) -> list[tuple[str | None, str, str, str]]:
    return [(c.column, c.kind, c.source, c.target) for t in report.tables for c in t.schema_changes]


def test_an_alias_type_reaches_postgresql_as_its_base_type(ms_source: Server, dst_db: Db, ray_local: None) -> None:
    ms_source.run(*ALIAS_TYPES)
    report = replicate(small_run_settings(ms_source.url(), dst_db.url, verify="checksums"))
    assert report.status == "ok", report.errors
    assert _schema_changes(report) == [
        ("phone", "type_changed", "Phone", "character varying(20)"),
        ("phone", "collation_not_kept", "SQL_Latin1_General_CP1_CI_AS", ""),  # collation = binary, as any column
        ("alt", "type_changed", "Phone", "character varying(20)"),
        ("alt", "collation_not_kept", "SQL_Latin1_General_CP1_CI_AS", ""),
        ("active", "type_changed", "Flag", "boolean"),
    ]
    assert dst_db.rows(
        "SELECT column_name::text, data_type::text, character_maximum_length, is_nullable::text "
        "FROM information_schema.columns WHERE table_name = 'people' ORDER BY ordinal_position"
    ) == [
        ("id", "integer", None, "NO"),
        ("phone", "character varying", 20, "NO"),  # the alias's NOT NULL
        ("alt", "character varying", 20, "YES"),  # the column's own NULL
        ("active", "boolean", None, "YES"),
    ]
    assert dst_db.rows(PEOPLE) == ms_source.rows(PEOPLE)


@pytest.mark.parametrize("writer", ["bulkcopy", "bulk-insert", "insert"])
def test_an_alias_type_reaches_sql_server_as_its_base_type(
    ms_source: Server, tmp_path: Path, ray_local: None, writer: str
) -> None:
    ms_source.run(*ALIAS_TYPES)
    with standin(bulk_dir=str(tmp_path)) as target:
        report = replicate(small_run_settings(ms_source.url(), target.writer_url(writer), verify="checksums"))
        assert report.status == "ok", report.errors
        assert _schema_changes(report) == ALIAS_CHANGES
        assert target.rows(
            "SELECT c.name, t.name, t.is_user_defined, c.max_length, c.is_nullable FROM sys.columns c "
            "JOIN sys.types t ON t.user_type_id = c.user_type_id "
            "WHERE c.object_id = OBJECT_ID('dbo.people') ORDER BY c.column_id"
        ) == [
            ("id", "int", False, 4, False),
            ("phone", "varchar", False, 20, False),
            ("alt", "varchar", False, 20, True),
            ("active", "bit", False, 1, True),
        ]
        assert target.rows("SELECT COUNT(*) FROM sys.types WHERE is_user_defined = 1 AND is_assembly_type = 0") == [
            (0,)
        ]
        assert target.rows(PEOPLE) == ms_source.rows(PEOPLE)
