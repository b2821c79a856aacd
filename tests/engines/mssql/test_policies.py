"""The lossy-case policies on values SQL Server sends as text (the stand-in keeps microseconds only, so the
100 ns digit is exercised here on SQL Server's text forms), the type table against typemap, and sql_variant."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from ray_replicator.catalog import Column, Key, Table
from ray_replicator.engines.base import EngineError, KeyRange
from ray_replicator.engines.mssql import MssqlSource, parse_url
from ray_replicator.engines.mssql.temporal import TICKS
from ray_replicator.engines.mssql.types import (
    Declared,
    datetimeoffset_instant,
    logical_type,
    native_type,
    postgres_type,
)
from ray_replicator.engines.mssql.values import Converter
from ray_replicator.engines.postgres import types as pg_types
from tests.engines.mssql.servers import Server


def _table(native: str, name: str = "v") -> Table:
    d = Declared(native.split("(")[0], 0, 0, int(native.split("(")[1].rstrip(")")) if "(" in native else 0)
    cols = [
        Column("id", "int", logical_type(Declared("int", 4, 10, 0)), nullable=False),
        Column(name, native, logical_type(d)),
    ]
    return Table("dbo", "t", cols, primary_key=Key("pk", ("id",), primary=True))


def _convert(native: str, texts: list[str | None], policy: str) -> pa.Array:
    table = _table(native)
    conv = Converter(table, table.copy_columns, parse_url(f"mssql://u:p@127.0.0.1:1/db?hundred_ns={policy}"))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(range(1, len(texts) + 1), pa.int32()), pa.array(texts, pa.string())], names=["id", "v"]
    )
    return conv.convert(batch).column(1)


def test_datetime2_7_refuses_a_100ns_digit_naming_table_column_key_value() -> None:
    with pytest.raises(EngineError) as err:
        _convert("datetime2(7)", ["2020-01-01 10:00:00.1234560", "2020-01-01 10:00:00.1234567"], "refuse")
    msg = str(err.value)
    assert "dbo.t.v" in msg and "id=2" in msg and "2020-01-01 10:00:00.1234567" in msg and "hundred_ns=" in msg


def test_datetime2_7_without_100ns_digits_is_exact_in_microseconds_up_to_9999() -> None:
    got = _convert("datetime2(7)", ["0001-01-01 00:00:00.0000000", "9999-12-31 23:59:59.9999990", None], "refuse")
    assert got.type == pa.timestamp("us")
    assert got.to_pylist() == [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None]


def test_keep_policy_keeps_100ns_over_the_whole_range() -> None:
    got = _convert(
        "datetime2(7)",
        ["2020-01-01 10:00:00.1234567", "1969-12-31 23:59:59.9999999", "9999-12-31 23:59:59.9999999"]
        + ["0001-01-01 00:00:00.0000001", None],
        "keep",
    )
    assert got.type == TICKS
    assert got.storage.to_pylist() == [15778728001234567, -1, 2534023007999999999, -621355967999999999, None]
    t = _convert("time(7)", ["23:59:59.9999999", "00:00:00.0000001"], "keep")
    assert t.type == pa.time64("ns") and t.cast(pa.int64()).to_pylist() == [86_399_999_999_900, 100]


def test_datetimeoffset_text_keeps_offset_and_checks_the_7th_digit() -> None:
    got = _convert("datetimeoffset(7)", ["2020-01-01 10:00:00.1234560 +05:30", None], "refuse")
    assert got.to_pylist() == ["2020-01-01 10:00:00.123456 +05:30", None]
    with pytest.raises(EngineError, match="100 ns"):
        _convert("datetimeoffset(7)", ["2020-01-01 10:00:00.1234567 -08:00"], "refuse")
    kept = _convert("datetimeoffset(7)", ["2020-01-01 10:00:00.1234567 -08:00"], "keep")
    assert kept.to_pylist() == ["2020-01-01 10:00:00.1234567 -08:00"]


@pytest.mark.parametrize(
    ("declared", "pg"),
    [
        (Declared("tinyint", 1, 3, 0), "smallint"),
        (Declared("money", 8, 19, 4), "numeric(19,4)"),
        (Declared("decimal", 9, 19, 4), "numeric(19,4)"),
        (Declared("nvarchar", 80, 0, 0), "character varying(40)"),
        (Declared("nvarchar", -1, 0, 0), "text"),
        (Declared("nchar", 10, 0, 0), "character varying(5)"),
        (Declared("datetime", 8, 23, 3), "timestamp(3) without time zone"),
        (Declared("datetime2", 8, 27, 7), "timestamp(6) without time zone"),
        (Declared("datetimeoffset", 10, 34, 7), "timestamp(6) with time zone"),
        (Declared("time", 5, 16, 7), "time(6) without time zone"),
        (Declared("uniqueidentifier", 16, 0, 0), "uuid"),
        (Declared("timestamp", 8, 0, 0), "bytea"),
        (Declared("geography", -1, 0, 0), "bytea"),
        (Declared("bit", 1, 1, 0), "boolean"),
        (Declared("float", 8, 53, 0), "double precision"),
        (Declared("real", 4, 24, 0), "real"),
    ],
)
def test_postgres_mapping_is_one_table(declared: Declared, pg: str) -> None:
    col = Column("c", native_type(declared), logical_type(declared))
    assert postgres_type(col) == pg
    assert pg_types.postgres_type(col, "mssql") == pg


def test_sql_variant_refused_up_front_or_copied_as_text(mssql_source_server: Server) -> None:
    s = mssql_source_server
    s.run(
        "CREATE SCHEMA variant",
        "CREATE TABLE variant.v (id int NOT NULL PRIMARY KEY, x sql_variant NULL)",
        "INSERT INTO variant.v (id, x) VALUES (1, 42), (2, NULL)",
    )
    with MssqlSource(s.url()) as src, pytest.raises(EngineError) as err:
        src.catalog(["variant.v"], [])
    assert "variant.v.x" in str(err.value) and "sql_variant=text" in str(err.value)
    with MssqlSource(s.url(sql_variant="text")) as src:
        table = src.catalog(["variant.v"], []).table("variant", "v")
        rows = [
            r for b in src.read_range(table, KeyRange("variant", "v", 0, "full"), 10, 1 << 20) for r in b.to_pylist()
        ]
    assert sorted(rows, key=lambda r: r["id"]) == [{"id": 1, "x": "42"}, {"id": 2, "x": None}]


def test_datetimeoffset_text_to_instant() -> None:
    text = pa.array(["2020-01-01 10:00:00.1234567 +05:30", "0001-01-01 00:00:00 -08:00", None])
    assert datetimeoffset_instant(text).to_pylist() == [
        dt.datetime(2020, 1, 1, 4, 30, 0, 123456, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, 8, 0, tzinfo=dt.UTC),
        None,
    ]


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_hundred_ns_policies_through_the_readers(mssql_source_server: Server, reader: str) -> None:
    s = mssql_source_server
    if not s.rows("SELECT COUNT(*) FROM sys.tables WHERE name = 'ns'")[0][0]:
        s.run(
            "CREATE TABLE dbo.ns (id int NOT NULL PRIMARY KEY, d2 datetime2(7) NULL, tm time(7) NULL)",
            "INSERT INTO dbo.ns VALUES (1, '2020-01-01 10:00:00.1234567', '10:00:00.1234567'), "
            "(2, '2020-01-01 10:00:00.1234560', '10:00:00.1234560')",
        )

    def read(policy: str) -> list[dict[str, object]]:
        with MssqlSource(s.url(reader=reader, hundred_ns=policy)) as src:
            table = src.catalog(["dbo.ns"], []).table("dbo", "ns")
            batches = src.read_range(table, KeyRange("dbo", "ns", 0, "full"), 100, 1 << 20)
            return sorted((r for b in batches for r in b.to_pylist()), key=lambda r: int(str(r["id"])))

    with pytest.raises(EngineError) as err:
        read("refuse")
    assert "dbo.ns." in str(err.value) and "id=1" in str(err.value) and ".1234567" in str(err.value)
    rounded = read("round")
    assert rounded[0]["d2"] == dt.datetime(2020, 1, 1, 10, 0, 0, 123457)
    assert rounded[1]["d2"] == dt.datetime(2020, 1, 1, 10, 0, 0, 123456)
    with MssqlSource(s.url(reader=reader, hundred_ns="keep")) as src:
        table = src.catalog(["dbo.ns"], []).table("dbo", "ns")
        batch = next(iter(src.read_range(table, KeyRange("dbo", "ns", 0, "full"), 100, 1 << 20)))
    assert batch.column(1).type == TICKS
    by_id = dict(zip(batch.column(0).to_pylist(), batch.column(1).storage.to_pylist(), strict=True))
    assert by_id == {1: 15778728001234567, 2: 15778728001234560}
    times = dict(zip(batch.column(0).to_pylist(), batch.column(2).cast(pa.int64()).to_pylist(), strict=True))
    assert times[1] == 36_000_123_456_700


def test_the_doc_lists_every_type_of_the_code_table() -> None:
    from pathlib import Path

    from ray_replicator.engines.mssql.types import TYPES

    doc = (Path(__file__).resolve().parents[3] / "docs" / "type-mapping.md").read_text()
    for row in TYPES:
        for name in row.mssql.split(" / "):
            assert name.split("(")[0].strip() in doc, name


def test_lost_connections_and_deadlocks_are_retryable_one_liners() -> None:
    from ray_replicator.engines.base import TransientEngineError

    src = MssqlSource("mssql://sa:S3cret!pw@127.0.0.1:1/db")
    dead = src._error("reading", Exception(1205, b"Transaction was chosen as the deadlock victim. S3cret!pw"))
    assert isinstance(dead, TransientEngineError) and isinstance(dead, ConnectionError)
    assert "S3cret!pw" not in str(dead) and "\n" not in str(dead)
    other = src._error("reading", Exception(207, b"Invalid column name 'x'."))
    assert not isinstance(other, ConnectionError)
