"""A PostgreSQL target fed by another engine: DDL from logical types, Arrow batches as that engine's reader
makes them, identity continuing after the source's current value."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pyarrow as pa
import pytest

from ray_replicator.catalog import Catalog, Column, Identity, Key, LogicalType, Table
from ray_replicator.engines.base import EngineError, KeyRange, UsageError, WriteOptions
from ray_replicator.engines.postgres import PostgresTarget, pg_name

from ..conftest import Db


def _table() -> Table:
    return Table(
        schema="dbo",
        name="Posts",
        columns=[
            Column("Id", "int", LogicalType("int32"), nullable=False, identity=Identity(1, 1, current=50)),
            Column("Title", "nvarchar(50)", LogicalType("string", length=50)),
            Column("Flag", "tinyint", LogicalType("int8")),
            Column("Price", "money", LogicalType("money")),
            Column("Created", "datetime2(7)", LogicalType("timestamp", precision=7), nullable=False),
            Column("Guid", "uniqueidentifier", LogicalType("uuid")),
            Column("Body", "varbinary(max)", LogicalType("binary")),
            Column("Version", "rowversion", LogicalType("rowversion")),
            Column("Total", "int", LogicalType("int32"), computed="([Id]*(2))"),
        ],
        primary_key=Key("PK_Posts", ("Title",), primary=True),
    )


def test_prepare_write_and_finalize_from_another_engine(dst_db: Db, target: PostgresTarget) -> None:
    table = _table()
    catalog = Catalog(engine="mssql", database="so", tables=[table])
    opts = WriteOptions(run_id="x", unlogged=True)
    target.prepare(catalog, "mssql", opts)
    types = dst_db.rows(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = 'dbo.\"Posts\"'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert types == [
        ("Id", "integer", True),
        ("Title", "character varying(50)", False),
        ("Flag", "smallint", False),
        ("Price", "numeric(19,4)", False),
        ("Created", "timestamp(6) without time zone", True),
        ("Guid", "uuid", False),
        ("Body", "bytea", False),
        ("Version", "bytea", False),
        ("Total", "integer", False),
    ]
    assert (
        dst_db.value("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'dbo.\"Posts\"'::regclass")
        == '("Id" * 2)'
    )  # the computed column, translated from T-SQL, is a generated column
    g = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    batch = pa.RecordBatch.from_pydict(
        {
            "Id": pa.array([1, 7], pa.int32()),
            "Title": pa.array(["", "ünï 😀"]),
            "Flag": pa.array([0, 255], pa.uint8()),
            "Price": pa.array([decimal.Decimal("7082761.69"), None], pa.decimal128(19, 4)),
            "Created": pa.array(
                [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)], pa.timestamp("us")
            ),
            "Guid": pa.array([str(g), None]),
            "Body": pa.array([b"\x00", b""], pa.binary()),
            "Version": pa.array([b"\x00" * 7 + b"\x01", None], pa.binary()),
        }
    )
    rng = KeyRange("dbo", "Posts", 0, "key", ("Title",), lower=("",), upper=None)
    assert target.write_range(table, rng, [batch], opts).rows == 2
    target.finalize_table(table, "mssql", opts)
    target.finalize(catalog, "mssql", opts)
    assert dst_db.rows(
        'SELECT "Title", "Flag", "Price"::text, "Created"::text, "Guid"::text FROM dbo."Posts" ORDER BY 1'
    ) == [
        ("", 0, "7082761.6900", "0001-01-01 00:00:00", str(g)),
        ("ünï 😀", 255, None, "9999-12-31 23:59:59.999999", None),
    ]
    assert target.count_range(table, rng) == 2  # bounds cast to the target's own column types
    assert dst_db.value('INSERT INTO dbo."Posts" ("Title", "Created") VALUES (\'n\', now()) RETURNING "Id"') == 51
    assert dst_db.value("SELECT relpersistence FROM pg_class WHERE oid = 'dbo.\"Posts\"'::regclass") == "p"


def test_names_longer_than_63_bytes(dst_db: Db, target: PostgresTarget) -> None:
    long_a = "Ä" * 31 + "x" * 10  # 62 + 10 bytes: 54 bytes kept, cut on a character boundary, then the hash
    assert pg_name(long_a).startswith("Ä" * 27 + "_") and len(pg_name(long_a).encode()) == 63
    twins = [
        Column(long_a + "1", "int", LogicalType("int32")),
        Column(long_a + "2", "int", LogicalType("int32")),
    ]
    target.prepare(Catalog("mssql", "db", [Table("dbo", "t", twins)]), "mssql", WriteOptions())
    assert dst_db.rows("SELECT attname FROM pg_attribute WHERE attrelid = 'dbo.t'::regclass AND attnum > 0") == [
        (pg_name(long_a + "1"),),
        (pg_name(long_a + "2"),),
    ]
    clash = [Column(long_a, "int", LogicalType("int32")), Column(pg_name(long_a), "int", LogicalType("int32"))]
    with pytest.raises(UsageError, match="both become"):
        target.prepare(Catalog("mssql", "db", [Table("dbo", "u", clash)]), "mssql", WriteOptions())
    long_table = Table("dbo", "T" * 100, [Column("c" * 80, "int", LogicalType("int32"))])
    target.prepare(Catalog("mssql", "db", [long_table]), "mssql", WriteOptions())
    batch = pa.RecordBatch.from_pydict({"c" * 80: pa.array([1, 2], pa.int32())})
    rng = KeyRange("dbo", "T" * 100, 0, "full")
    assert target.write_range(long_table, rng, [batch], WriteOptions(run_id="l")).rows == 2
    assert target.count_range(long_table, rng) == 2


def test_nul_in_text_is_refused_with_a_hint(dst_db: Db, target: PostgresTarget) -> None:
    table = Table(
        "dbo",
        "notes",
        [Column("id", "int", LogicalType("int32")), Column("t", "nvarchar(10)", LogicalType("string", 10))],
    )
    target.prepare(Catalog("mssql", "db", [table]), "mssql", WriteOptions())
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32()), "t": pa.array(["a\x00b"])})
    with pytest.raises(EngineError, match=r"dbo\.notes.*NUL") as info:
        target.write_range(table, KeyRange("dbo", "notes", 0, "full"), [batch], WriteOptions(run_id="n"))
    assert "\n" not in str(info.value)
