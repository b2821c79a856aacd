"""The rows of docs/type-mapping.md for SQL Server's CLR types (geography, geometry, hierarchyid) and alias types,
in each direction the page claims, values read with a real client on both sides.

- geography / geometry / hierarchyid → PostgreSQL bytea holding SQL Server's own serialization (on the record as a
  type change); SQL Server → SQL Server keeps the type (tests/engines/mssql/test_writer_values.py,
  test_clr_types_arrive_as_the_same_bytes, every writer).
- Alias types (CREATE TYPE dbo.Phone FROM varchar(20) NOT NULL) arrive as the base type on either target, with the
  alias listed as not recreated. The SQL Server stand-in has no CREATE TYPE (asserted below, so this file is
  revisited when it gains one): a column of an alias type reaches a client as its base type, with sys.types
  naming the alias; the test reads such a column's catalog row as SQL Server returns it (the alias's sys.types
  row) and copies the base-typed values the stand-in holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pymssql
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Catalog
from ray_replicator.engines import open_target
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.mssql import MssqlSource
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


def test_the_stand_in_has_no_create_type(ms_source: Server) -> None:
    with pytest.raises(pymssql.Error, match="CREATE TYPE"):
        ms_source.run("CREATE TYPE dbo.Phone FROM varchar(20) NOT NULL")


def _alias_catalog(server: Server) -> Catalog:
    """The catalog as SQL Server reads a table whose phone column is declared dbo.Phone (varchar(20) NOT NULL):
    sys.types gives the alias's name, is_user_defined = 1 and the base type's system_type_id."""
    server.run(
        "CREATE TABLE dbo.people (id int NOT NULL PRIMARY KEY, phone varchar(20) NOT NULL)",
        "INSERT INTO dbo.people VALUES (1, '+1 555 0100'), (2, ''), (3, '0123456789abcdefghij')",
    )
    with MssqlSource(server.url()) as source:
        catalog = source.catalog([], [])
        table = catalog.tables[0]
        row: dict[str, Any] = {
            "name": "phone",
            "type_name": "Phone",
            "is_user_defined": True,
            "base_type": "varchar",
            "max_length": 20,
            "precision": 0,
            "scale": 0,
            "collation": table.column("phone").collation,
            "is_nullable": False,
            "is_identity": False,
            "is_computed": False,
            "default_definition": None,
        }
        phone = source._column(table, row)
    columns = [phone if c.name == "phone" else c for c in table.columns]
    return replace(catalog, tables=[replace(table, columns=columns)])


def _copy(source: Server, catalog: Catalog, target_url: str) -> list[tuple[str | None, str, str, str]]:
    """The target's record for the catalog, then its tables prepared, loaded and finalized from the source."""
    table = catalog.tables[0]
    options = WriteOptions(run_id="alias")
    target = open_target(target_url)
    try:
        changes = target.schema_changes(catalog, "mssql", options)
        target.prepare(catalog, "mssql", options)
        rng = KeyRange(table.schema, table.name, 0, "full")
        target.ledger.init("alias", "p", "s", [rng])
        with MssqlSource(source.url()) as src:
            target.write_range(table, rng, src.read_range(table, rng, 2, 1 << 20), options)
        target.finalize_table(table, "mssql", options)
    finally:
        target.close()
    return [(c.column, c.kind, c.source, c.target) for c in changes]


def test_an_alias_type_reaches_postgresql_as_its_base_type(ms_source: Server, dst_db: Db) -> None:
    catalog = _alias_catalog(ms_source)
    assert catalog.tables[0].column("phone").alias_type == "Phone"
    changes = _copy(ms_source, catalog, dst_db.url)
    assert changes == [
        ("phone", "type_changed", "Phone", "character varying(20)"),
        ("phone", "collation_not_kept", "SQL_Latin1_General_CP1_CI_AS", ""),  # collation = binary, as any column
    ]
    assert dst_db.rows(
        "SELECT data_type::text, character_maximum_length, is_nullable::text FROM information_schema.columns "
        "WHERE table_name = 'people' AND column_name = 'phone'"
    ) == [("character varying", 20, "NO")]
    assert dst_db.rows("SELECT id, phone FROM dbo.people ORDER BY id") == ms_source.rows(
        "SELECT id, phone FROM dbo.people ORDER BY id"
    )


def test_an_alias_type_reaches_sql_server_as_its_base_type(ms_source: Server) -> None:
    catalog = _alias_catalog(ms_source)
    with standin() as target:
        changes = _copy(ms_source, catalog, target.url())
        assert changes == [("phone", "type_changed", "Phone", "varchar(20)")]
        assert target.rows(
            "SELECT t.name, c.max_length, c.is_nullable FROM sys.columns c "
            "JOIN sys.types t ON t.user_type_id = c.user_type_id "
            "WHERE c.object_id = OBJECT_ID('dbo.people') AND c.name = 'phone'"
        ) == [("varchar", 20, False)]
        assert target.rows("SELECT id, phone FROM dbo.people ORDER BY id") == ms_source.rows(
            "SELECT id, phone FROM dbo.people ORDER BY id"
        )
