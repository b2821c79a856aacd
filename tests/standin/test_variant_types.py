"""sql_variant keeps each value's base type: stored with it, sent as MS-TDS SSVARIANTTYPE, read back typed by
real clients, and described by SQL_VARIANT_PROPERTY as documented.

Clients seen: python-tds and mssql-python decode every base type; mssql-python hands a datetimeoffset base type
back as text, and a fetchall that mixes it with other base types fails inside the client ("SQLGetData failed for
NVARCHAR column"), so it is read alone here. pymssql (FreeTDS db-lib) has no sql_variant type: it hands back
the base type's value bytes.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytds
import pytest

from mssql_standin import ProcessServer, serve_process, wire
from mssql_standin.engine import Engine
from mssql_standin.results import BulkLoadRequest, ColumnSpec, ResultSet, SqlServerError
from tests.standin.conftest import PASSWORD, USER, client_cursor

INIT = """
create table dbo.v (id int not null primary key, v sql_variant null);
insert into dbo.v (id, v) values (1, 5), (2, N'abcλ'), (3, 'xyz'), (4, 1.50), (5, CAST(46279.1 AS decimal(8,2))),
 (6, CAST('2020-01-02 03:04:05.1234567' AS datetime2(7))), (7, NULL), (8, 0x0102),
 (9, CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS uniqueidentifier)), (10, 1.5e0), (11, CAST(3000000000 AS bigint)),
 (12, CAST(12.3456 AS money)), (13, CAST('2021-05-06' AS date)), (14, CAST('2021-05-06 07:08:09.123' AS datetime)),
 (15, CAST('2021-05-06 07:08:09.1234567 +02:00' AS datetimeoffset(7))), (16, CAST('07:08:09.12' AS time(2))),
 (17, CAST(1 AS bit)), (18, CAST(7 AS tinyint)), (19, CAST(-7 AS smallint)), (20, CAST(1.25 AS real));
"""
#: what each row holds, as python-tds reads it (datetime2's seventh digit is past Python's microseconds)
EXPECTED: dict[int, Any] = {
    1: 5,
    2: "abcλ",
    3: "xyz",
    4: Decimal("1.50"),
    5: Decimal("46279.10"),
    6: dt.datetime(2020, 1, 2, 3, 4, 5, 123456),
    7: None,
    8: b"\x01\x02",
    9: uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    10: 1.5,
    11: 3_000_000_000,
    12: Decimal("12.3456"),
    13: dt.date(2021, 5, 6),
    14: dt.datetime(2021, 5, 6, 7, 8, 9, 123000),
    16: dt.time(7, 8, 9, 120000),
    17: True,
    18: 7,
    19: -7,
    20: 1.25,
}
DTO = dt.datetime(2021, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.fixture(scope="module")
def srv() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT) as s:
        yield s


def test_python_tds_reads_every_base_type(srv: ProcessServer) -> None:
    cur = client_cursor("pytds", srv)
    cur.execute("select id, v from v order by id")
    got = dict(cur.fetchall())
    assert {k: v for k, v in got.items() if k != 15} == EXPECTED
    assert got[15] == DTO and got[15].utcoffset() == dt.timedelta(hours=2)


def test_mssql_python_reads_every_base_type(srv: ProcessServer) -> None:
    cur = client_cursor("mssql_python", srv)
    cur.execute("select id, v from v where id <> 15 order by id")
    got = {r[0]: r[1] for r in cur.fetchall()}
    assert got == EXPECTED
    cur.execute("select v from v where id = 15")
    assert cur.fetchall()[0][0] == "2021-05-06 07:08:09.1234567 +02:00"


def test_pymssql_gets_the_base_type_value_bytes(srv: ProcessServer) -> None:
    cur = client_cursor("pymssql", srv)
    cur.execute("select id, v from v where id in (1, 2, 3, 7, 8, 17, 18) order by id")
    assert cur.fetchall() == [
        (1, struct.pack("<i", 5)),
        (2, "abcλ".encode()),
        (3, b"xyz"),
        (7, None),
        (8, b"\x01\x02"),
        (17, b"\x01"),
        (18, b"\x07"),
    ]


PROPERTIES = "SELECT id, " + ", ".join(
    f"SQL_VARIANT_PROPERTY(v, '{p}')" for p in ("BaseType", "Precision", "Scale", "Collation", "MaxLength")
)
#: (BaseType, Precision, Scale, Collation, MaxLength) as the SQL_VARIANT_PROPERTY page documents them
DOCUMENTED = {
    1: ("int", 10, 0, None, 4),
    2: ("nvarchar", 0, 0, "SQL_Latin1_General_CP1_CI_AS", 8),
    3: ("varchar", 0, 0, "SQL_Latin1_General_CP1_CI_AS", 3),
    4: ("numeric", 3, 2, None, 5),
    5: ("decimal", 8, 2, None, 5),
    6: ("datetime2", 27, 7, None, 8),
    7: (None, None, None, None, None),
    8: ("varbinary", 0, 0, None, 2),
    9: ("uniqueidentifier", 0, 0, None, 16),
    10: ("float", 53, 0, None, 8),
    11: ("bigint", 19, 0, None, 8),
    12: ("money", 19, 4, None, 8),
    13: ("date", 10, 0, None, 3),
    14: ("datetime", 23, 3, None, 8),
    15: ("datetimeoffset", 34, 7, None, 10),
    16: ("time", 11, 2, None, 3),
    17: ("bit", 1, 0, None, 1),
    18: ("tinyint", 3, 0, None, 1),
    19: ("smallint", 5, 0, None, 2),
    20: ("real", 24, 0, None, 4),
}


def test_sql_variant_property_answers_as_documented(srv: ProcessServer) -> None:
    cur = client_cursor("pytds", srv)
    cur.execute(PROPERTIES + " FROM v ORDER BY id")
    assert {r[0]: tuple(r[1:]) for r in cur.fetchall()} == DOCUMENTED
    cur.execute("SELECT SQL_VARIANT_PROPERTY(v, 'TotalBytes'), SQL_VARIANT_PROPERTY(v, 'Nonsense') FROM v WHERE id = 1")
    assert tuple(cur.fetchall()[0]) == (6, None)  # 2 bytes of header + 4 of int; an unknown property is NULL
    cur.execute(
        "SELECT SQL_VARIANT_PROPERTY(CAST(46279.1 AS decimal(8,2)), 'Precision'), "
        "SQL_VARIANT_PROPERTY(N'abc', 'BaseType')"
    )
    assert tuple(cur.fetchall()[0]) == (8, "nvarchar")


def test_sql_variant_property_read_by_mssql_python(srv: ProcessServer) -> None:
    """One row at a time: in one fetchall, mssql-python 1.16 cuts a variant string that follows a shorter one
    ('int' then 'nvarchar' reads 'ar') — its buffer reuse, whatever the server."""
    cur = client_cursor("mssql_python", srv)
    for key, want in DOCUMENTED.items():
        cur.execute(PROPERTIES + f" FROM v WHERE id = {key}")
        assert tuple(cur.fetchall()[0]) == (key, *want)


def rows(s: Any, sql: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for r in s.execute(sql):
        if isinstance(r, ResultSet):
            for b in r.batches:
                out += list(zip(*[b.column(i).to_pylist() for i in range(b.num_columns)], strict=True))
    return out


def base_types(s: Any, table: str) -> list[tuple[Any, ...]]:
    return decoded(
        s,
        f"SELECT id, SQL_VARIANT_PROPERTY(v, 'BaseType'), SQL_VARIANT_PROPERTY(v, 'MaxLength') FROM {table} "
        "ORDER BY id",
    )


def _decode(body: bytes) -> Any:
    return wire._read_variant(wire.Reader(struct.pack("<I", len(body)) + body))


def decoded(s: Any, sql: str) -> list[tuple[Any, ...]]:
    """Rows whose values are stored sql_variants, decoded as a client would (the wire codec's decoder)."""
    out = []
    for r in rows(s, sql):
        out.append(tuple(_decode(v) if isinstance(v, bytes) else v for v in r))
    return out


def test_insert_select_keeps_the_source_column_types() -> None:
    s = Engine("testdb").session()
    list(s.execute("CREATE TABLE src (id int, d decimal(9, 3), n nvarchar(20), t datetime2(3))"))
    list(s.execute("INSERT INTO src VALUES (1, 1.5, N'λ', '2020-01-01 10:00:00.123')"))
    list(s.execute("CREATE TABLE v (id int, v sql_variant)"))
    for k, col in enumerate(("d", "n", "t"), 1):
        list(s.execute(f"INSERT INTO v SELECT {k}, {col} FROM src"))
    list(s.execute("INSERT INTO v SELECT id + 10, v FROM v"))
    want = [(1, "decimal", 5), (2, "nvarchar", 40), (3, "datetime2", 7)]
    assert [
        (a, b, c)
        for a, b, c in decoded(
            s, "SELECT id, SQL_VARIANT_PROPERTY(v, 'BaseType'), SQL_VARIANT_PROPERTY(v, 'MaxLength') FROM v ORDER BY id"
        )
    ] == want + [(i + 10, b, c) for i, b, c in want]


def test_max_types_cannot_be_held() -> None:
    s = Engine("testdb").session()
    list(s.execute("CREATE TABLE v (id int, v sql_variant)"))
    with pytest.raises(SqlServerError) as ei:
        list(s.execute("INSERT INTO v VALUES (1, CAST(N'x' AS nvarchar(max)))"))
    assert ei.value.number == 206 and "nvarchar(max) is incompatible with sql_variant" in ei.value.message


def test_bulk_load_rows_keep_their_base_types() -> None:
    """A bulk-copy client (SqlBulkCopy) sends sql_variant values as SSVARIANT_INSTANCE; each keeps its type."""
    s = Engine("testdb").session()
    list(s.execute("CREATE TABLE v (id int not null, v sql_variant null)"))
    cols = [ColumnSpec("id", "int", nullable=False), ColumnSpec("v", "sql_variant")]
    source = Engine("src").session()
    list(source.execute("CREATE TABLE v (id int not null, v sql_variant null)"))
    list(source.execute(INIT.split(";", 1)[1]))
    result = next(r for r in source.execute("SELECT id, v FROM v ORDER BY id") if isinstance(r, ResultSet))
    batch = pa.Table.from_batches(list(result.batches)).to_batches()[0]
    body, _ = wire.encode_rows(cols, batch)
    payload = wire.colmetadata(cols) + bytes(body) + wire.done()
    specs, decoded_batch = wire.read_bulk_rows(payload)
    assert s.bulk_insert(BulkLoadRequest("dbo.v", specs), decoded_batch) == 20
    assert base_types(s, "v") == base_types(source, "v")
    assert rows(s, "SELECT v FROM v ORDER BY id") == rows(source, "SELECT v FROM v ORDER BY id")


def test_cast_to_text_converts_the_base_value(srv: ProcessServer) -> None:
    """CAST(v AS nvarchar) converts the base value with its type's style 0 (how a copy with sql_variant=text
    reads it)."""
    cur = client_cursor("pytds", srv)
    cur.execute("select id, CAST(v AS nvarchar(max)) from v order by id")
    assert dict(cur.fetchall()) == {
        1: "5", 2: "abcλ", 3: "xyz", 4: "1.50", 5: "46279.10", 6: "2020-01-02 03:04:05.1234567", 7: None,
        8: "\u0201", 9: "6F9619FF-8B86-D011-B42D-00C04FC964FF", 10: "1.5", 11: "3000000000", 12: "12.35",
        13: "2021-05-06", 14: "May  6 2021  7:08AM", 15: "2021-05-06 07:08:09.1234567 +02:00", 16: "07:08:09.12",
        17: "1", 18: "7", 19: "-7", 20: "1.25",
    }  # fmt: skip
    cur.execute("select CAST(v AS int), CAST(v AS decimal(10, 2)) from v where id = 5")
    assert cur.fetchall() == [(46279, Decimal("46279.10"))]


def test_order_and_comparison_follow_the_type_families() -> None:
    """sql_variant comparison (SQL Server docs): a higher family is greater (date and time > approximate numeric >
    exact numeric > character > binary > uniqueidentifier); within a family values compare converted, so int 5
    equals bigint 5 and varchar 'xyz' equals N'XYZ'."""
    s = Engine("testdb").session()
    list(s.execute(INIT))
    list(s.execute("INSERT INTO v VALUES (21, N'ABC'), (22, CAST(5 AS bigint)), (23, 4.5), (24, CAST(4.75 AS float))"))
    ordered = [r[0] for r in rows(s, "SELECT id FROM v ORDER BY v, id")]
    assert ordered == [7, 9, 8, 21, 2, 3, 19, 17, 4, 23, 1, 22, 18, 12, 5, 11, 20, 10, 24, 16, 6, 13, 14, 15]
    assert rows(s, "SELECT id FROM v WHERE v = 5 ORDER BY id") == [(1,), (22,)]
    assert rows(s, "SELECT id FROM v WHERE v = N'XYZ'") == [(3,)]
    assert rows(s, "SELECT id FROM v WHERE v IN (5, N'xyz') ORDER BY id") == [(1,), (3,), (22,)]
    # DATALENGTH: the base value's bytes (int 4, nvarchar 2 per character, decimal(8,2) 5)
    assert rows(s, "SELECT id, DATALENGTH(v) FROM v WHERE id IN (1, 2, 5, 7) ORDER BY id") == [
        (1, 4), (2, 8), (5, 5), (7, None)
    ]  # fmt: skip
    # 4.75e0 is approximate numeric, a family above every exact number: not between 4 and 6
    assert rows(s, "SELECT id FROM v WHERE v > 4 AND v < 6 ORDER BY id") == [(1,), (22,), (23,)]
    assert decoded(s, "SELECT MIN(v), MAX(v) FROM v") == [
        (uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF").bytes, {"utc": 637558744891234567, "offset_min": 120})
    ]


def test_mssql_python_bulk_copy_keeps_the_sent_types(srv: ProcessServer) -> None:
    """A real bulk load (mssql-python's bulkcopy: INSERT BULK and a 0x07 stream) into sql_variant: each value
    keeps the type the client sent. pymssql's bulk_copy cannot load sql_variant at all (FreeTDS db-lib error
    20250, client side)."""
    setup = client_cursor("pytds", srv)
    setup.execute("create table dbo.bulkv (id int not null primary key, v sql_variant null)")
    cur = client_cursor("mssql_python", srv)
    sent = [(1, 5), (2, "abc"), (3, Decimal("1.50")), (4, dt.datetime(2020, 1, 2, 3, 4, 5)), (5, None)]
    cur.bulkcopy("dbo.bulkv", sent)
    check = client_cursor("pytds", srv)
    check.execute("select id, v, SQL_VARIANT_PROPERTY(v, 'BaseType') from bulkv order by id")
    assert check.fetchall() == [
        (1, 5, "int"),
        (2, "abc", "nvarchar"),
        (3, Decimal("1.5"), "decimal"),
        (4, dt.datetime(2020, 1, 2, 3, 4, 5), "datetime"),
        (5, None, None),
    ]


def test_a_max_parameter_is_refused_as_sql_server_refuses_it(srv: ProcessServer) -> None:
    """python-tds declares a str parameter nvarchar(max), which a sql_variant cannot hold (error 206, as in SQL
    Server); an int parameter keeps its declared type."""
    cur = client_cursor("pytds", srv)
    cur.execute("create table dbo.paramv (id int not null primary key, v sql_variant null)")
    cur.execute("insert into paramv (id, v) values (%s, %s)", (1, 42))
    cur.execute("select v, SQL_VARIANT_PROPERTY(v, 'BaseType') from paramv")
    assert cur.fetchall()[0][0] == 42
    with pytest.raises(pytds.OperationalError, match="Operand type clash: nvarchar\\(max\\) is incompatible"):
        cur.execute("insert into paramv (id, v) values (%s, %s)", (2, "λ"))


def test_cast_to_sql_variant_keeps_the_expression_type() -> None:
    s = Engine("testdb").session()
    list(s.execute("CREATE TABLE src (i int, d decimal(9, 3), c char(4), r real, d2 datetime2(3), t time(2), "
                   "dto datetimeoffset(7), u uniqueidentifier, vb varbinary(4), m money)"))  # fmt: skip
    list(s.execute("INSERT INTO src VALUES (7, 1.5, 'ab', 0.1, '2020-01-02 03:04:05.123', '01:02:03.45', "
                   "'2020-01-02 03:04:05.1234567 -05:30', '6F9619FF-8B86-D011-B42D-00C04FC964FF', "
                   "0x0102, 12.3456)"))  # fmt: skip
    got = decoded(
        s,
        "SELECT SQL_VARIANT_PROPERTY(v, 'BaseType'), SQL_VARIANT_PROPERTY(v, 'Scale'), CAST(v AS nvarchar(60)) "
        "FROM (SELECT CAST(i AS sql_variant) AS v FROM src UNION ALL SELECT CAST(d AS sql_variant) FROM src "
        "UNION ALL SELECT CAST(c AS sql_variant) FROM src UNION ALL SELECT CAST(r AS sql_variant) FROM src "
        "UNION ALL SELECT CAST(d2 AS sql_variant) FROM src UNION ALL SELECT CAST(t AS sql_variant) FROM src "
        "UNION ALL SELECT CAST(dto AS sql_variant) FROM src UNION ALL SELECT CAST(u AS sql_variant) FROM src "
        "UNION ALL SELECT CAST(vb AS sql_variant) FROM src UNION ALL SELECT CAST(m AS sql_variant) FROM src) x",
    )
    assert sorted(got) == sorted([
        ("int", 0, "7"), ("decimal", 3, "1.500"), ("char", 0, "ab  "), ("real", 0, "0.1"),
        ("datetime2", 3, "2020-01-02 03:04:05.123"), ("time", 2, "01:02:03.45"),
        ("datetimeoffset", 7, "2020-01-02 03:04:05.1234567 -05:30"),
        ("uniqueidentifier", 0, "6F9619FF-8B86-D011-B42D-00C04FC964FF"), ("varbinary", 0, "\u0201"),
        ("money", 4, "12.35"),
    ])  # fmt: skip
    assert decoded(s, "SELECT SQL_VARIANT_PROPERTY(CAST(2.5 AS sql_variant), 'BaseType')") == [("numeric",)]
