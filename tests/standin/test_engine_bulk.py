"""Engine: INSERT BULK (rows from a BULK_LOAD packet), BULK INSERT from files, and load_arrow's speed."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mssql_standin.engine import Engine
from mssql_standin.results import BulkLoadRequest, ColumnSpec, ResultSet, SqlServerError

from .test_engine_types import err, rows, run


def test_insert_bulk_request_and_rows() -> None:
    s = Engine("testdb").session()
    run(
        s,
        "CREATE TABLE dbo.b (id int IDENTITY(1,1) NOT NULL PRIMARY KEY, name nvarchar(10) NULL DEFAULT N'd', "
        "amount decimal(9,2) NULL, at datetime2(7) NULL)",
    )
    (req,) = list(
        s.execute(
            "insert bulk dbo.b ([id] Int, [name] NVarChar(10) COLLATE SQL_Latin1_General_CP1_CI_AS, "
            "[amount] Decimal(9,2), [at] DateTime2(7)) with (KEEP_NULLS, TABLOCK)"
        )
    )
    assert isinstance(req, BulkLoadRequest)
    assert req.table == "dbo.b" and req.keep_nulls and req.tablock and not req.keep_identity
    assert [(c.name, c.type_name, c.length) for c in req.columns] == [
        ("id", "int", 4),
        ("name", "nvarchar", 20),
        ("amount", "decimal", 5),
        ("at", "datetime2", 8),
    ]
    batch = pa.record_batch(
        [
            pa.array([100, 200], pa.int32()),
            pa.array(["x", None]),
            pa.array([Decimal("1.50"), None], pa.decimal128(9, 2)),
            pa.array([637_135_310_451_234_567, None], pa.int64()),
        ],
        names=["id", "name", "amount", "at"],
    )
    assert s.bulk_insert(req, batch) == 2
    assert rows(s, "SELECT id, name, amount, at FROM b ORDER BY id") == [
        (100, "x", Decimal("1.50"), 637_135_310_451_234_567),
        (200, None, None, None),
    ]


def test_insert_bulk_naming_the_identity_column_keeps_its_values() -> None:
    s = Engine("testdb").session()
    run(s, "CREATE TABLE b (id int IDENTITY(1,1) NOT NULL, name nvarchar(10) NULL)")
    (req,) = list(s.execute("insert bulk b ([id] Int, [name] NVarChar(10))"))
    assert isinstance(req, BulkLoadRequest) and not req.keep_identity
    s.bulk_insert(req, pa.record_batch([pa.array([40, 41], pa.int32()), pa.array(["a", "b"])], names=["id", "name"]))
    (req,) = list(s.execute("insert bulk b ([name] NVarChar(10))"))
    assert isinstance(req, BulkLoadRequest)
    s.bulk_insert(req, pa.record_batch([pa.array(["c"])], names=["name"]))
    assert rows(s, "SELECT id, name FROM b ORDER BY id") == [(40, "a"), (41, "b"), (42, "c")]


def test_insert_bulk_keep_identity_and_defaults_without_keep_nulls() -> None:
    s = Engine("testdb").session()
    run(s, "CREATE TABLE b (id int IDENTITY(1,1) NOT NULL, name nvarchar(10) NULL DEFAULT N'd')")
    (req,) = list(s.execute("INSERT BULK b (id int, name nvarchar(10)) WITH (KEEP_IDENTITY)"))
    assert isinstance(req, BulkLoadRequest) and req.keep_identity and not req.keep_nulls
    s.bulk_insert(req, pa.record_batch([pa.array([7, 9], pa.int32()), pa.array([None, "n"])], names=["id", "name"]))
    assert rows(s, "SELECT id, name FROM b ORDER BY id") == [(7, "d"), (9, "n")]
    assert rows(s, "SELECT IDENT_CURRENT('b')") == [(9,)]


def test_insert_bulk_checks_constraints() -> None:
    s = Engine("testdb").session()
    run(s, "CREATE TABLE b (id int NOT NULL PRIMARY KEY, v varchar(2) NOT NULL)")
    (req,) = list(s.execute("INSERT BULK b (id int, v varchar(2))"))
    assert isinstance(req, BulkLoadRequest)
    with pytest.raises(SqlServerError) as ei:
        s.bulk_insert(req, pa.record_batch([pa.array([1, 1], pa.int32()), pa.array(["a", "b"])], names=["id", "v"]))
    assert ei.value.number == 2627
    with pytest.raises(SqlServerError) as ei:
        s.bulk_insert(req, pa.record_batch([pa.array([1], pa.int32()), pa.array(["abc"])], names=["id", "v"]))
    assert ei.value.number == 2628
    with pytest.raises(SqlServerError) as ei:
        s.bulk_insert(
            req,
            pa.record_batch([pa.array([1], pa.int32()), pa.array([None], pa.string())], names=["id", "v"]),
        )
    assert ei.value.number == 515
    assert rows(s, "SELECT COUNT(*) FROM b") == [(0,)]


@pytest.fixture
def bulk(tmp_path: Path) -> tuple[Engine, Path]:
    e = Engine("testdb", bulk_dir=str(tmp_path))
    s = e.session()
    run(
        s,
        "CREATE TABLE f (id int NOT NULL, name nvarchar(20) NULL DEFAULT N'dflt', note varchar(max) NULL, "
        "at datetime2(7) NULL, amount decimal(9,2) NULL)",
    )
    return e, tmp_path


def test_bulk_insert_csv_rules(bulk: tuple[Engine, Path]) -> None:
    e, d = bulk
    (d / "f.csv").write_bytes(
        "\ufeffid,name,note,at,amount\r\n"
        '1,"a, ""b""","line1\nline2",2024-01-02 03:04:05.1234567,1.50\r\n'
        '2,,"",,\r\n'
        "3,λ😀,plain,,-2\r\n".encode()
    )
    s = e.session()
    out = list(
        s.execute(
            "BULK INSERT dbo.f FROM 'f.csv' WITH (FORMAT = 'CSV', FIRSTROW = 2, FIELDTERMINATOR = ',', "
            "ROWTERMINATOR = '\\n', CODEPAGE = '65001', TABLOCK, BATCHSIZE = 1000)"
        )
    )
    assert out[-1].count == 3  # type: ignore[union-attr]
    assert rows(s, "SELECT id, name, note, CAST(at AS varchar(30)), amount FROM f ORDER BY id") == [
        (1, 'a, "b"', "line1\nline2", "2024-01-02 03:04:05.1234567", Decimal("1.50")),
        (2, "dflt", "", None, None),  # empty unquoted -> default (no KEEPNULLS); "" -> ''
        (3, "λ😀", "plain", None, Decimal("-2.00")),
    ]
    run(s, "DELETE FROM f")
    run(
        s,
        "BULK INSERT f FROM 'f.csv' WITH (FORMAT='CSV', FIRSTROW=2, FIELDTERMINATOR=',', CODEPAGE='65001', KEEPNULLS)",
    )
    assert rows(s, "SELECT name FROM f WHERE id = 2") == [(None,)]


def test_bulk_insert_plain_delimited(bulk: tuple[Engine, Path]) -> None:
    e, d = bulk
    (d / "t.tsv").write_text('5\t"q"\tx\t\t\n6\t\t\t2020-01-01\t3\n', encoding="utf-8")
    s = e.session()
    run(s, "BULK INSERT f FROM 't.tsv' WITH (CODEPAGE = '65001')")
    assert rows(s, "SELECT id, name, note, amount FROM f ORDER BY id") == [
        (5, '"q"', "x", None),
        (6, "dflt", None, Decimal("3.00")),
    ]


def test_bulk_insert_errors(bulk: tuple[Engine, Path]) -> None:
    e, d = bulk
    s = e.session()
    assert err(s, "BULK INSERT f FROM 'missing.csv' WITH (FORMAT = 'CSV')").number == 4860
    assert err(s, "BULK INSERT f FROM '/etc/passwd'").number == 4861
    (d / "short.csv").write_text("1,a\n", encoding="utf-8")
    assert err(s, "BULK INSERT f FROM 'short.csv' WITH (FORMAT = 'CSV', FIELDTERMINATOR = ',')").number in (4832, 4864)
    no_bulk_dir = Engine("x").session()
    assert err(no_bulk_dir, "CREATE TABLE f (a int); BULK INSERT f FROM 'a.csv'").number == 4861


def test_load_arrow_million_rows_quickly() -> None:
    n = 1_000_000
    tbl = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int32)),
            "a": pa.array(np.arange(n, dtype=np.int64) * 3),
            "at": pa.array(np.arange(n, dtype=np.int64) * 1_000_003 + 1_600_000_000_000_000, pa.timestamp("us")),
            "b": pa.array(np.arange(n, dtype=np.int32) % 1000),
        }
    )
    cols = [
        ColumnSpec("id", "int", nullable=False),
        ColumnSpec("a", "bigint"),
        ColumnSpec("at", "datetime"),
        ColumnSpec("b", "int"),
    ]
    e = Engine("testdb")
    t0 = time.perf_counter()
    assert e.load_arrow("big", cols, tbl, primary_key=["id"]) == n
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, elapsed
    s = e.session()
    assert rows(s, "SELECT COUNT_BIG(*), MAX(id) FROM big") == [(n, n - 1)]
    (r,) = rows(s, "SELECT at FROM big WHERE id = 1")
    assert r[0] == dt.datetime(2020, 9, 13, 12, 26, 41)  # .000003 s rounds to the 1/300 s grid
    got = 0
    rs = next(x for x in s.execute("SELECT * FROM big") if isinstance(x, ResultSet))
    for b in rs.batches:
        got += b.num_rows
    assert got == n


def test_bulk_insert_binary_fields_are_hex_digits(tmp_path: Path) -> None:
    """Character-mode data files hold binary values as hex digits without 0x, with or without FORMAT = 'CSV'."""
    e = Engine("testdb", bulk_dir=str(tmp_path))
    s = e.session()
    run(s, "CREATE TABLE hb (id int NOT NULL, b binary(4) NULL, vb varbinary(10) NULL)")
    (tmp_path / "b.csv").write_text('1,00000001,0a0B\n2,"FFFFFFFF",\n', encoding="ascii")
    run(s, "BULK INSERT hb FROM 'b.csv' WITH (FORMAT = 'CSV', FIELDTERMINATOR = ',')")
    (tmp_path / "b.tsv").write_text("3\t01\t\n", encoding="ascii")
    run(s, "BULK INSERT hb FROM 'b.tsv'")
    assert rows(s, "SELECT id, b, vb, DATALENGTH(b) FROM hb ORDER BY id") == [
        (1, b"\x00\x00\x00\x01", b"\x0a\x0b", 4),
        (2, b"\xff\xff\xff\xff", None, 4),
        (3, b"\x01\x00\x00\x00", None, 4),  # binary(n) pads with zeros
    ]
    (tmp_path / "bad.csv").write_text("4,xyz1,\n", encoding="ascii")
    assert err(s, "BULK INSERT hb FROM 'bad.csv' WITH (FORMAT = 'CSV', FIELDTERMINATOR = ',')").number == 4864
