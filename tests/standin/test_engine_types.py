"""Engine: every SQL Server type stored and handed back exactly (ResultSet Arrow conventions)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from mssql_standin.engine import Engine, EngineSession
from mssql_standin.results import ColumnSpec, ResultSet, SqlServerError

from .conftest import TYPED_COLUMNS, TYPED_ROWS, ticks, typed_table


def rows(s: EngineSession, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for r in s.execute(sql, params):
        if isinstance(r, ResultSet):
            for b in r.batches:
                out += list(zip(*[b.column(i).to_pylist() for i in range(b.num_columns)], strict=True))
    return out


def result(s: EngineSession, sql: str) -> ResultSet:
    return next(r for r in s.execute(sql) if isinstance(r, ResultSet))


def run(s: EngineSession, sql: str) -> list[Any]:
    return list(s.execute(sql))


def err(s: EngineSession, sql: str) -> SqlServerError:
    """The error the batch raises; fails the test when it raises none."""
    with pytest.raises(SqlServerError) as ei:
        run(s, sql)
    return ei.value


@pytest.fixture
def s() -> EngineSession:
    return Engine("testdb").session()


def _padded(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """SQL Server pads nchar(10) to 10 UTF-16 units (a non-BMP character takes two)."""
    out = list(row)
    k = [c.name for c in TYPED_COLUMNS].index("c_nchar")
    v = out[k]
    if v is not None:
        units = len(v) + sum(1 for ch in v if ord(ch) > 0xFFFF)
        out[k] = v + " " * (10 - units)
    return tuple(out)


def test_load_arrow_round_trips_every_type() -> None:
    e = Engine("testdb")
    assert e.load_arrow("typed", TYPED_COLUMNS, typed_table(), primary_key=["id"]) == len(TYPED_ROWS)
    s = e.session()
    rs = result(s, "SELECT * FROM dbo.typed ORDER BY id")
    got = [tuple(d.values()) for b in rs.batches for d in b.to_pylist()]
    assert got == [_padded(r) for r in TYPED_ROWS]
    declared = {c.name: c for c in TYPED_COLUMNS}
    for c in rs.columns:
        d = declared[c.name]
        assert (c.type_name, c.length if d.length else 0) == (d.type_name, d.length), c.name
        if d.type_name in ("decimal", "numeric", "time", "datetime2", "datetimeoffset"):
            assert (c.precision if d.precision else 0, c.scale) == (d.precision, d.scale), c.name
    assert [c.name for c in rs.columns] == [c.name for c in TYPED_COLUMNS]


def test_result_arrow_types_follow_the_seam() -> None:
    e = Engine("testdb")
    e.load_arrow("typed", TYPED_COLUMNS, typed_table())
    rs = result(e.session(), "SELECT * FROM typed")
    b = next(iter(rs.batches))
    want = {
        "c_tinyint": pa.uint8(),
        "c_bit": pa.bool_(),
        "c_money": pa.decimal128(19, 4),
        "c_time": pa.int64(),
        "c_datetime": pa.timestamp("us"),
        "c_dt2": pa.int64(),
        "c_guid": pa.binary(16),
        "c_date": pa.date32(),
        "c_dto": pa.struct([("utc", pa.int64()), ("offset_min", pa.int16())]),
        "c_real": pa.float32(),
    }
    for name, t in want.items():
        assert b.schema.field(name).type == t, name


def test_literals_convert_exactly(s: EngineSession) -> None:
    run(
        s,
        """CREATE TABLE t (id int PRIMARY KEY, d2 datetime2(7), d3 datetime2(3), dt datetime, sdt
            smalldatetime,
              tm time(7), dto datetimeoffset(7), m money, n numeric(5,2), ti tinyint, f float, r real, b bit,
              vb varbinary(10), g uniqueidentifier)""",
    )
    run(
        s,
        """INSERT INTO t VALUES (1, '2020-05-17 12:34:56.1234567', '2020-05-17 12:34:56.1235',
            '2020-05-17 12:34:56.998',
              '2020-05-17 12:34:29.998', '23:59:59.9999999', '2020-05-17 12:34:56.1234567 +05:30',
                  7082761.69, 123.455,
              255, 0.1, 0.1, 1, 0x00FF, '6F9619FF-8B86-D011-B42D-00C04FC964FF')""",
    )
    (r,) = rows(s, "SELECT * FROM t")
    assert r[1] == ticks(dt.datetime(2020, 5, 17, 12, 34, 56, 123456), 7)
    assert r[2] == ticks(dt.datetime(2020, 5, 17, 12, 34, 56, 124000))  # datetime2(3) rounds half up
    assert r[3] == dt.datetime(2020, 5, 17, 12, 34, 56, 997000)  # 1/300 s grid
    assert r[4] == dt.datetime(2020, 5, 17, 12, 34)
    assert r[5] == 863_999_999_999
    assert r[6] == {"utc": ticks(dt.datetime(2020, 5, 17, 7, 4, 56, 123456), 7), "offset_min": 330}
    assert r[7] == Decimal("7082761.6900")
    assert r[8] == Decimal("123.46")
    assert r[9] == 255 and r[10] == 0.1 and r[12] is True
    assert r[13] == b"\x00\xff"
    assert r[14] == uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF").bytes


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2020-01-01 00:00:00.001", dt.datetime(2020, 1, 1)),
        ("2020-01-01 00:00:00.002", dt.datetime(2020, 1, 1, 0, 0, 0, 3000)),
        ("2020-01-01 00:00:00.005", dt.datetime(2020, 1, 1, 0, 0, 0, 7000)),
        ("2020-01-01 23:59:59.999", dt.datetime(2020, 1, 2)),
        ("2020-01-01 23:59:59.998", dt.datetime(2020, 1, 1, 23, 59, 59, 997000)),
    ],
)
def test_datetime_rounds_to_its_grid(s: EngineSession, text: str, shown: dt.datetime) -> None:
    run(s, "CREATE TABLE t (d datetime)")
    run(s, f"INSERT INTO t VALUES ('{text}')")
    assert rows(s, "SELECT d FROM t") == [(shown,)]


def test_text_is_exact(s: EngineSession) -> None:
    run(
        s,
        "CREATE TABLE t (id int, v varchar(20), n nvarchar(20), c char(3), vm varchar(max), nm nvarchar(max))",
    )
    run(s, "INSERT INTO t VALUES (1, 'café', N'λ😀', 'a', '', N'')")
    run(s, "INSERT INTO t VALUES (2, N'λx', N'a' + CHAR(0) + N'b', NULL, NULL, NULL)")
    assert rows(s, "SELECT v, n, c, vm, nm FROM t ORDER BY id") == [
        ("café", "λ😀", "a  ", "", ""),
        ("?x", "a\x00b", None, None, None),
    ]
    assert rows(s, "SELECT COUNT(*) FROM t WHERE vm = ''") == [(1,)]
    assert rows(s, "SELECT COUNT(*) FROM t WHERE vm IS NULL") == [(1,)]


def test_large_values_survive(s: EngineSession) -> None:
    run(s, "CREATE TABLE t (nm nvarchar(max), vb varbinary(max))")
    big = "λ" * 3_000_000
    for _ in s.execute("INSERT INTO t VALUES (@a, @b)", {"@a": (None, big), "@b": (None, b"\x01" * 5_000_000)}):
        pass
    assert rows(s, "SELECT LEN(nm), DATALENGTH(nm), DATALENGTH(vb) FROM t") == [(3_000_000, 6_000_000, 5_000_000)]


def test_guids_sort_and_compare_in_sql_server_order(s: EngineSession) -> None:
    run(s, "CREATE TABLE g (id int, v uniqueidentifier)")
    values = []
    for i in range(16):
        b = bytearray(16)
        b[i] = 1
        values.append(uuid.UUID(bytes=bytes(b)))
    ins = ", ".join(f"({i}, '{u}')" for i, u in enumerate(values))
    run(s, f"INSERT INTO g VALUES {ins}")
    order = [r[0] for r in rows(s, "SELECT id FROM g ORDER BY v")]
    # least significant first: bytes 0-3 (reversed), 4-5, 6-7 (each pair reversed), 8-9, then 10-15
    assert order == [0, 1, 2, 3, 4, 5, 6, 7, 9, 8, 15, 14, 13, 12, 11, 10]
    hi = values[10]
    assert [r[0] for r in rows(s, f"SELECT id FROM g WHERE v >= '{hi}' ORDER BY v")] == [10]
    assert rows(s, f"SELECT COUNT(*) FROM g WHERE v = '{values[3]}'") == [(1,)]
    assert rows(s, "SELECT CAST(v AS varchar(36)) FROM g WHERE id = 0") == [(str(values[0]).upper(),)]


@pytest.mark.parametrize(
    ("ddl", "value", "number"),
    [
        ("tinyint", "256", 220),
        ("tinyint", "-1", 220),
        ("smallint", "40000", 220),
        ("int", "3000000000", 8115),
        ("decimal(5,2)", "1234.5", 8115),
        ("varchar(3)", "'abcd'", 2628),
        ("nvarchar(2)", "N'😀x'", 2628),
        ("varbinary(2)", "0x010203", 2628),
        ("int", "'abc'", 245),
        ("datetime", "'not a date'", 241),
        ("uniqueidentifier", "'nope'", 8169),
    ],
)
def test_conversion_errors(s: EngineSession, ddl: str, value: str, number: int) -> None:
    run(s, f"CREATE TABLE t (c {ddl})")
    assert err(s, f"INSERT INTO t VALUES ({value})").number == number
    assert rows(s, "SELECT COUNT(*) FROM t") == [(0,)]


def test_nvarchar_length_counts_utf16_units(s: EngineSession) -> None:
    """n in nvarchar(n) counts UTF-16 code units: a character outside the BMP takes two."""
    run(s, "CREATE TABLE t (c nvarchar(4))")
    run(s, "INSERT INTO t VALUES (N'😀😀'), (N'abcd'), (N'λλλλ'), (NULL)")
    e = err(s, "INSERT INTO t VALUES (N'ab'), (N'😀😀x'), (N'abc')")
    assert e.number == 2628 and "😀😀" in e.message
    assert rows(s, "SELECT COUNT(*) FROM t") == [(4,)]


def test_truncation_message_is_sql_servers(s: EngineSession) -> None:
    run(s, "CREATE TABLE dbo.t (name varchar(3))")
    e = err(s, "INSERT INTO t VALUES ('abcdef')")
    assert e.message == (
        "String or binary data would be truncated in table 'testdb.dbo.t', column 'name'. Truncated value: 'abc'."
    )
    assert (e.state, e.severity) == (1, 16)


def test_rowversion_is_automatic_and_increasing(s: EngineSession) -> None:
    run(s, "CREATE TABLE t (id int, rv rowversion)")
    run(s, "INSERT INTO t (id) VALUES (1), (2)")
    got = rows(s, "SELECT rv FROM t ORDER BY id")
    assert all(len(v[0]) == 8 for v in got) and got[0][0] < got[1][0]
    run(s, "UPDATE t SET id = 3 WHERE id = 1")
    assert rows(s, "SELECT rv FROM t WHERE id = 3")[0][0] > got[1][0]
    assert err(s, "INSERT INTO t (id, rv) VALUES (1, 0x01)").number == 273


def test_plain_arrow_types_load(s: EngineSession) -> None:
    e = s.engine
    tbl = pa.table(
        {
            "a": pa.array([1, 2], pa.int64()),
            "ts": pa.array([dt.datetime(2020, 1, 1, 0, 0, 0, 1), None], pa.timestamp("ns")),
            "g": pa.array([str(uuid.UUID(int=5)), None]),
        }
    )
    cols = [
        ColumnSpec("a", "int"),
        ColumnSpec("ts", "datetime2", scale=7),
        ColumnSpec("g", "uniqueidentifier"),
    ]
    e.load_arrow("p", cols, tbl)
    assert rows(s, "SELECT a, ts, g FROM p ORDER BY a") == [
        (1, ticks(dt.datetime(2020, 1, 1, 0, 0, 0, 1)), uuid.UUID(int=5).bytes),
        (2, None, None),
    ]


def test_insert_select_copies_every_type_exactly() -> None:
    from mssql_standin.types import from_column_spec

    e = Engine("testdb")
    e.load_arrow("typed", TYPED_COLUMNS, typed_table())
    s = e.session()
    run(s, "CREATE TABLE t2 (" + ", ".join(f"[{c.name}] {from_column_spec(c)}" for c in TYPED_COLUMNS) + ")")
    cols = ", ".join(f"[{c.name}]" for c in TYPED_COLUMNS if c.type_name != "timestamp")
    run(s, f"INSERT INTO t2 ({cols}) SELECT {cols} FROM typed")
    assert rows(s, f"SELECT {cols} FROM t2 ORDER BY id") == rows(s, f"SELECT {cols} FROM typed ORDER BY id")


def test_storage_form_values_compare_through_subqueries(s: EngineSession) -> None:
    run(s, "CREATE TABLE t (id int, g uniqueidentifier, d datetime2(7))")
    run(
        s,
        "INSERT INTO t VALUES (1, '6F9619FF-8B86-D011-B42D-00C04FC964FF', '2020-01-01 00:00:00.1234567'), "
        "(2, '00000000-0000-0000-0000-000000000001', '2021-01-01')",
    )
    assert rows(s, "SELECT id FROM t WHERE g = (SELECT TOP 1 g FROM t ORDER BY id)") == [(1,)]
    assert rows(s, "SELECT id FROM t WHERE d = (SELECT MAX(d) FROM t)") == [(2,)]
    assert rows(s, "SELECT x.id FROM (SELECT id, g AS g2 FROM t) x WHERE x.g2 = (SELECT g FROM t WHERE id = 2)") == [
        (2,)
    ]
    assert rows(
        s,
        "WITH c AS (SELECT g, d FROM t) SELECT COUNT(*) FROM c WHERE g IN (SELECT g FROM t) "
        "AND d >= (SELECT MIN(d) FROM c)",
    ) == [(2,)]
    assert rows(s, "SELECT id FROM t WHERE g = (SELECT '6f9619ff-8b86-d011-b42d-00c04fc964ff')") == [(1,)]


def test_guid_casts_to_binary_in_storage_order(s: EngineSession) -> None:
    g = uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")
    run(s, f"CREATE TABLE gb (g uniqueidentifier NULL); INSERT INTO gb VALUES ('{g}'), (NULL)")
    assert rows(s, "SELECT CAST(g AS binary(16)), CONVERT(varbinary(16), g), CAST(g AS varbinary(4)) FROM gb") == [
        (g.bytes_le, g.bytes_le, g.bytes_le[:4]),
        (None, None, None),
    ]
    assert rows(s, f"SELECT CAST(CAST('{g}' AS uniqueidentifier) AS binary(18))") == [(g.bytes_le + b"\0\0",)]
    # and back: binary -> uniqueidentifier reads the same byte order
    got = rows(s, "SELECT CAST(CAST(g AS binary(16)) AS uniqueidentifier) FROM gb WHERE g IS NOT NULL")
    assert got == [(g.bytes,)]
    assert rows(s, "SELECT COUNT(*) FROM gb WHERE CAST(CAST(g AS varbinary(16)) AS uniqueidentifier) = g") == [(1,)]


def test_datetime2_text_and_parts_keep_100ns(s: EngineSession) -> None:
    run(
        s,
        "CREATE TABLE d7 (d2 datetime2(7), d3 datetime2(3), d0 datetime2(0), t time(7), o datetimeoffset(7)); "
        "INSERT INTO d7 VALUES ('2024-01-02 03:04:05.1234567', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05', "
        "'03:04:05.1234567', '2024-01-02 03:04:05.1234567 +05:30')",
    )
    assert rows(s, "SELECT CONVERT(varchar(27), d2, 121), CONVERT(varchar(30), d3, 121), "
                   "CONVERT(varchar(30), d0, 121), CONVERT(varchar(30), d2, 126), CONVERT(varchar(30), t, 121), "
                   "CONVERT(varchar(30), d0, 126) FROM d7") == [  # fmt: skip
        ("2024-01-02 03:04:05.1234567", "2024-01-02 03:04:05.123", "2024-01-02 03:04:05",
         "2024-01-02T03:04:05.1234567", "03:04:05.1234567", "2024-01-02T03:04:05"),
    ]  # fmt: skip
    assert rows(s, "SELECT DATEPART(millisecond, d2), DATEPART(microsecond, d2), DATEPART(nanosecond, d2), "
                   "DATEPART(nanosecond, t), DATEPART(mcs, o), DATEPART(ms, '2024-01-01 00:00:01.5') FROM d7") == [
        (123, 123456, 123456700, 123456700, 123456, 500)
    ]  # fmt: skip
    # CASE / IIF / COALESCE over datetime2 values keep the 100 ns; ISNULL takes its first argument's scale
    assert rows(
        s,
        "SELECT CAST(CASE WHEN 1 = 1 THEN d2 END AS varchar(30)), CAST(IIF(1 = 1, d2, NULL) AS "
        "varchar(30)), CAST(COALESCE(NULL, d2) AS varchar(30)), CAST(ISNULL(d3, d2) AS varchar(30)), "
        "CAST(ISNULL(NULL, d2) AS varchar(30)) FROM d7",
    ) == [  # fmt: skip
        ("2024-01-02 03:04:05.1234567",) * 3 + ("2024-01-02 03:04:05.123", "2024-01-02 03:04:05.1234567")
    ]
    assert err(s, "SELECT DATEPART(nanosecond, CAST(d2 AS date)) FROM d7").number == 9810
    assert rows(s, "SELECT CAST(CAST(o AS datetime2(7)) AS varchar(30)), CAST(CAST(d2 AS time) AS varchar(20)), "
                   "CAST(CAST(t AS datetime2) AS varchar(30)), CAST(CAST(d2 AS datetimeoffset) AS varchar(40)) "
                   "FROM d7") == [  # fmt: skip
        ("2024-01-02 03:04:05.1234567", "03:04:05.1234567", "1900-01-01 03:04:05.1234567",
         "2024-01-02 03:04:05.1234567 +00:00"),
    ]  # fmt: skip


def test_datetime2_rounding_past_9999_is_error_242(s: EngineSession) -> None:
    top = "'9999-12-31 23:59:59.9999999'"
    for sql, src in [
        (f"SELECT CAST(CAST({top} AS datetime2(7)) AS datetime2(6))", "datetime2"),
        (f"SELECT CAST({top} AS datetime2(6))", "varchar"),
    ]:
        e = err(s, sql)
        assert (e.number, e.message) == (
            242,
            f"The conversion of a {src} data type to a datetime2 data type resulted in an out-of-range value.",
        )
    run(s, f"CREATE TABLE top2 (x datetime2(7), y datetime2(0)); INSERT INTO top2 (x) VALUES ({top})")
    for sql in (
        "SELECT CAST(x AS datetime2(3)) FROM top2",
        "UPDATE top2 SET y = x",
        "INSERT INTO top2 (y) SELECT x FROM top2",
        f"INSERT INTO top2 (y) VALUES ({top})",
    ):
        assert err(s, sql).number == 242, sql
    assert rows(s, "SELECT CAST(CAST('9999-12-31 23:59:59.9999994' AS datetime2(7)) AS datetime2(6))") == [
        (ticks(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),)
    ]
    run(s, "UPDATE top2 SET x = '2020-01-01 00:00:00.6'; UPDATE top2 SET y = x")
    assert rows(s, "SELECT y FROM top2") == [(ticks(dt.datetime(2020, 1, 1, 0, 0, 1)),)]  # rounded to scale 0


def test_decimal_38_digits_and_empty_binary_literal(s: EngineSession) -> None:
    n38 = "9" * 38
    run(s, "CREATE TABLE big38 (id int, big decimal(38,0), f decimal(38,10), b varbinary(10))")
    run(s, f"INSERT INTO big38 (id, big) VALUES (1, {n38}), (2, -{n38})")
    run(s, f"INSERT INTO big38 (id, big, f) SELECT 3, -{n38}, -9999999999999999999999999999.9999999999")
    run(s, "INSERT INTO big38 (id, f) VALUES (4, 9999999999999999999999999999.9999999999)")
    assert rows(s, "SELECT big, f FROM big38 ORDER BY id") == [
        (Decimal(n38), None),
        (Decimal("-" + n38), None),
        (Decimal("-" + n38), Decimal("-9999999999999999999999999999.9999999999")),
        (None, Decimal("9999999999999999999999999999.9999999999")),
    ]
    assert rows(s, f"SELECT COUNT(*) FROM big38 WHERE big = -{n38}") == [(2,)]
    for bad in ("1e300", f"1{n38}", "'1e300'"):
        assert err(s, f"INSERT INTO big38 (id, big) VALUES (9, {bad})").number == 8115
    run(s, "INSERT INTO big38 (id, b) VALUES (5, 0x)")
    run(s, "INSERT INTO big38 (id, b) SELECT 6, 0x")
    assert rows(s, "SELECT id, b, DATALENGTH(b) FROM big38 WHERE b = 0x ORDER BY id") == [(5, b"", 0), (6, b"", 0)]
    assert rows(s, "SELECT [0x] FROM (SELECT 1 AS [0x]) q") == [(1,)]  # a bracketed name stays a name
