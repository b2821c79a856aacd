"""T-SQL statements and expressions answered as SQL Server 2022 documents them, checked through real clients
(pymssql/FreeTDS, python-tds, mssql-python/ODBC 18) against the stand-in with its DuckDB engine: string <->
binary casts, REPLICATE/LEN/DATALENGTH, OUTPUT, UPDATE/DELETE TOP, expression result types, datetimeoffset's
range."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import mssql_python
import pymssql
import pytds
import pytest

from mssql_standin import ProcessServer, serve_process
from tests.standin.conftest import PASSWORD, USER, client_cursor

INIT_SQL = """
create table dbo.items (id int identity(1,1) primary key, name varchar(20) not null, qty int not null,
                        price decimal(10,2) null, tag nvarchar(10) null default N'new');
create table dbo.audit (id int null, old_qty int null, new_qty int null, note varchar(20) null);
create table dbo.texts (id int primary key, v varchar(40) null, n nvarchar(20) null, b varbinary(40) null)
"""

# python-tds reports the TDS type of a column in cursor.description[1]
TDS_INT4, TDS_INT8, TDS_DECIMAL, TDS_FLT8 = 56, 127, 106, 62
TDS_BIGVARBINARY, TDS_BIGVARCHAR, TDS_NVARCHAR, TDS_MONEY = 165, 167, 231, 60


@pytest.fixture(scope="module")
def server() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT_SQL) as srv:
        yield srv


CLIENTS: dict[str, Callable[[ProcessServer], Any]] = {
    name: functools.partial(client_cursor, name) for name in ("pymssql", "pytds", "mssql_python")
}
"""The clients these tests run through: each one's cursor on a stand-in (client_cursor), by name."""


@pytest.fixture
def cur(server: ProcessServer, client: str) -> Any:
    """A cursor of the client a test is parametrized with, on the module's stand-in."""
    return client_cursor(client, server)


def one_row(cur: Any, sql: str) -> tuple[Any, ...]:
    cur.execute(sql)
    rows = cur.fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


def row_count(cur: Any, sql: str) -> int:
    """Run `sql`; the number of rows it says it changed (the DONE count, as the client reports it)."""
    cur.execute(sql)
    return int(cur.rowcount)


def refused(cur: Any, client: str, sql: str, number: int, text: str) -> None:
    """`sql` fails with SQL Server's error number (where the client reports it) and message text."""
    errors: tuple[type[BaseException], ...] = (pymssql.Error, pytds.Error, mssql_python.Error)
    with pytest.raises(errors) as ei:
        cur.execute(sql)
        cur.fetchall()
    e = ei.value
    if client == "pymssql":
        assert e.args[0] == number and text.encode() in e.args[1]
    elif client == "pytds":
        assert e.number == number and text in e.message  # type: ignore[attr-defined]
    else:
        assert text in str(e)


# ---------------------------------------------------------------------------------------- 1-3: strings as bytes


@pytest.mark.parametrize("client", CLIENTS)
def test_replicate_of_a_max_string_casts_to_its_bytes(cur: Any, client: str) -> None:
    """CAST(REPLICATE(CAST('…' AS VARCHAR(MAX)), n) AS VARBINARY(MAX)): the string's code-page bytes, all of them
    (a (max) argument is not cut at 8000 bytes); nvarchar gives its UTF-16LE bytes."""
    row = one_row(
        cur,
        "SELECT CAST(REPLICATE(CAST('abc€' AS VARCHAR(MAX)), 3000) AS VARBINARY(MAX)), "
        "CAST(REPLICATE(CAST(N'aé😀' AS NVARCHAR(MAX)), 1000) AS VARBINARY(MAX))",
    )
    assert row[0] == b"abc\x80" * 3000
    assert row[1] == "aé😀".encode("utf-16-le") * 1000
    if client == "pytds":
        assert [d[1] for d in cur.description] == [TDS_BIGVARBINARY, TDS_BIGVARBINARY]


@pytest.mark.parametrize("client", CLIENTS)
def test_len_and_datalength_of_replicate(cur: Any, client: str) -> None:
    """LEN drops trailing spaces and counts UTF-16 units; DATALENGTH counts bytes (2 per nvarchar unit);
    REPLICATE of a type that is not (max) stops at 8000 bytes; a negative count is NULL; (max) lengths are
    bigint, others int."""
    row = one_row(
        cur,
        "SELECT LEN(REPLICATE('a ', 3)), DATALENGTH(REPLICATE(N'ab ', 3)), DATALENGTH(REPLICATE('x', 9000)), "
        "DATALENGTH(REPLICATE(N'x', 5000)), LEN(REPLICATE(N'😀', 3)), "
        "DATALENGTH(REPLICATE(CAST('x' AS varchar(max)), 9000)), LEN(REPLICATE(CAST(N'y' AS nvarchar(max)), 5000)), "
        "REPLICATE('x', -1), DATALENGTH(SPACE(9000))",
    )
    assert row == (5, 18, 8000, 8000, 6, 9000, 5000, None, 8000)
    if client == "pytds":
        assert [d[1] for d in cur.description[:7]] == [TDS_INT4] * 5 + [TDS_INT8] * 2
    if client == "mssql_python":
        assert [d[4] for d in cur.description[:7]] == [10] * 5 + [19] * 2
    cur.execute("SELECT REPLICATE(N'ab', 3000), REPLICATE(N'😀', 3000), CAST(N'a😀b' AS nvarchar(3))")
    assert tuple(cur.fetchall()[0]) == ("ab" * 2000, "😀" * 2000, "a😀")  # 8000 bytes: 4000 UTF-16 units
    if client == "pytds":
        assert cur.description[0][1] == TDS_NVARCHAR and cur.description[0][3] == 4000


@pytest.mark.parametrize("client", CLIENTS)
def test_strings_and_binary_convert_as_sql_server_stores_them(cur: Any, client: str) -> None:
    """nvarchar <-> varbinary is UTF-16LE, varchar <-> varbinary code page 1252; binary(n) pads with zeros,
    varbinary(n) cuts; a CAST without a length is 30."""
    row = one_row(
        cur,
        "SELECT CAST(N'aé😀' AS varbinary(20)), CAST('aé€' AS varbinary(20)), "
        "CAST(0x6100E9003DD800DE AS nvarchar(10)), CAST(0x61E980 AS varchar(10)), CAST(0x0102 AS binary(4)), "
        "CAST(0x010203 AS varbinary(2)), "
        "CAST('abcdefghijklmnopqrstuvwxyz0123456789' AS varchar), CAST('aé' AS varbinary)",
    )
    assert row == (
        "aé😀".encode("utf-16-le"),
        b"a\xe9\x80",
        "aé😀",
        "aé€",
        b"\x01\x02\x00\x00",
        b"\x01\x02",
        "abcdefghijklmnopqrstuvwxyz0123",
        b"a\xe9",
    )
    cur.execute(f"DELETE FROM texts WHERE id = {len(client)}")
    cur.execute(f"INSERT INTO texts (id, v, n, b) VALUES ({len(client)}, 'aé€', N'aé😀', 0x41004200)")
    row = one_row(
        cur,
        "SELECT CAST(v AS varbinary(10)), CAST(n AS varbinary(max)), CAST(b AS nvarchar(10)), "
        "CAST(b AS varchar(10)), CAST(CAST(n AS varbinary(max)) AS nvarchar(max)), CAST(b AS binary(6)) "
        f"FROM texts WHERE id = {len(client)}",
    )
    assert row == (b"a\xe9\x80", "aé😀".encode("utf-16-le"), "AB", "A\x00B\x00", "aé😀", b"A\x00B\x00\x00\x00")


@pytest.mark.parametrize("client", CLIENTS)
def test_convert_styles_1_and_2_write_binary_as_hex(cur: Any) -> None:
    """CONVERT(varchar, binary, 1) is '0x…', style 2 the digits alone; and back from text to binary."""
    row = one_row(
        cur,
        "SELECT CONVERT(varchar(64), HASHBYTES('SHA2_256', 'abc'), 2), CONVERT(varchar(10), 0x4142FF, 1), "
        "CONVERT(varbinary(4), '0x4142', 1), CONVERT(varbinary(4), '4142', 2), CONVERT(nvarchar(max), 0xABCD, 2)",
    )
    digest = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
    assert row == (digest, "0x4142FF", b"AB", b"AB", "ABCD")


@pytest.mark.parametrize("client", CLIENTS)
def test_integers_and_binary_convert_by_their_bytes(cur: Any, client: str) -> None:
    """An integer becomes its big-endian bytes, padded or cut on the left; binary becomes an integer from its
    rightmost bytes, as two's complement."""
    row = one_row(
        cur,
        "SELECT CAST(1 AS varbinary(4)), CAST(-1 AS binary(4)), CAST(256 AS binary(1)), CAST(1 AS binary(6)), "
        "CAST(0xFFFFFFFF AS int), CAST(0x0102030405 AS int), CAST(0xFF AS tinyint), CAST(0xFFFE AS smallint)",
    )
    assert row == (b"\x00\x00\x00\x01", b"\xff" * 4, b"\x00", b"\x00" * 5 + b"\x01", -1, 0x02030405, 255, -2)
    cur.execute(f"DELETE FROM texts WHERE id = {100 + len(client)}")
    cur.execute(f"INSERT INTO texts (id, b) VALUES ({100 + len(client)}, 0xFFFFFFFE)")
    row = one_row(
        cur,
        "SELECT CAST(id AS binary(2)), CAST(b AS int), CAST(b AS bigint), CAST(CAST(-id AS varbinary(8)) AS int) "
        f"FROM texts WHERE id = {100 + len(client)}",
    )
    n = 100 + len(client)
    assert row == (n.to_bytes(2, "big"), -2, 0xFFFFFFFE, -n)


# ------------------------------------------------------------------------------------------- 4-5: OUTPUT, TOP


def fresh_items(cur: Any) -> None:
    cur.execute("DELETE FROM items; DELETE FROM audit")
    cur.execute("INSERT INTO items (name, qty, price) VALUES ('a', 1, 1.50), ('b', 2, 2.50), ('c', 3, NULL)")


@pytest.mark.parametrize("client", CLIENTS)
def test_output_returns_the_changed_rows(cur: Any, client: str) -> None:
    """INSERT … OUTPUT inserted.* (identity and default included), UPDATE … OUTPUT deleted.x, inserted.x,
    DELETE … OUTPUT deleted.*: the rows come back as a result set, the row count is the statement's."""
    fresh_items(cur)
    cur.execute("SELECT MAX(id) FROM items")
    top = cur.fetchall()[0][0]
    cur.execute("INSERT INTO items (name, qty) OUTPUT inserted.* VALUES ('d', 4), ('e', 5)")
    assert [tuple(r) for r in cur.fetchall()] == [(top + 1, "d", 4, None, "new"), (top + 2, "e", 5, None, "new")]
    assert [d[0] for d in cur.description] == ["id", "name", "qty", "price", "tag"]
    assert cur.rowcount == 2
    cur.execute(
        "UPDATE items SET qty = qty * 10 OUTPUT deleted.qty AS was, inserted.qty AS now, inserted.name "
        "WHERE name IN ('a', 'b')"
    )
    assert sorted(tuple(r) for r in cur.fetchall()) == [(1, 10, "a"), (2, 20, "b")]
    assert cur.rowcount == 2
    if client == "pytds":
        assert [d[1] for d in cur.description] == [TDS_INT4, TDS_INT4, TDS_BIGVARCHAR]
    cur.execute(
        "INSERT INTO items (name, qty) OUTPUT inserted.name + '!' AS shout SELECT name, qty FROM items WHERE qty > 4"
    )
    assert sorted(r[0] for r in cur.fetchall()) == ["a!", "b!", "e!"]
    cur.execute("DELETE FROM items OUTPUT deleted.* WHERE name = 'c'")
    rows = [tuple(r) for r in cur.fetchall()]
    assert len(rows) == 1 and rows[0][1:] == ("c", 3, None, "new")
    assert one_row(cur, "SELECT COUNT(*) FROM items WHERE name = 'c'") == (0,)


@pytest.mark.parametrize("client", CLIENTS)
def test_output_into_a_table(cur: Any, client: str) -> None:
    fresh_items(cur)
    cur.execute(
        "UPDATE items SET qty = qty + 100 OUTPUT inserted.id, deleted.qty, inserted.qty, 'raised' "
        "INTO audit (id, old_qty, new_qty, note) WHERE qty >= 2"
    )
    assert cur.rowcount == 2
    cur.execute("SELECT old_qty, new_qty, note FROM audit ORDER BY old_qty")
    assert [tuple(r) for r in cur.fetchall()] == [(2, 102, "raised"), (3, 103, "raised")]
    refused(
        cur, client, "DELETE FROM items OUTPUT deleted.id INTO @gone", 1087, 'Must declare the table variable "@gone".'
    )
    refused(
        cur, client, "INSERT INTO items (name, qty) OUTPUT deleted.name VALUES ('x', 1)", 4104,
        'The multi-part identifier "deleted.name" could not be bound.',
    )  # fmt: skip
    refused(cur, client, "UPDATE items SET qty = 1 OUTPUT inserted.nope", 207, "Invalid column name 'nope'.")
    assert one_row(cur, "SELECT COUNT(*) FROM items WHERE name = 'x' OR qty = 1") == (0,)


@pytest.mark.parametrize("client", CLIENTS)
def test_update_and_delete_top(cur: Any, client: str) -> None:
    """UPDATE TOP (n) / DELETE TOP (n) [PERCENT] change n rows and say so in the DONE count and @@ROWCOUNT."""
    fresh_items(cur)
    assert row_count(cur, "UPDATE TOP (2) items SET qty = qty + 1000") == 2
    assert one_row(cur, "SELECT COUNT(*) FROM items WHERE qty > 1000") == (2,)
    assert row_count(cur, "DECLARE @n int = 1; DELETE TOP (@n) FROM items WHERE qty > 1000") == 1
    assert one_row(cur, "SELECT @@ROWCOUNT") == (1,)
    assert row_count(cur, "DELETE TOP (50) PERCENT items") == 1  # 2 rows left: half of them, rounded up
    assert one_row(cur, "SELECT COUNT(*) FROM items") == (1,)
    assert row_count(cur, "UPDATE TOP (0) items SET qty = 0") == 0
    refused(
        cur, client, "UPDATE TOP (-1) items SET qty = 0", 127, "A TOP N or FETCH rowcount value may not be negative."
    )
    refused(cur, client, "DELETE TOP (101) PERCENT FROM items", 1031, "Percent values must be between 0 and 100.")
    refused(
        cur, client, "DECLARE @n int; UPDATE TOP (@n) items SET qty = 0", 1014,
        "A TOP or FETCH clause contains an invalid value.",
    )  # fmt: skip
    assert one_row(cur, "SELECT COUNT(*) FROM items WHERE qty = 0") == (0,)


# --------------------------------------------------------------------------------------- 6: expression types


def test_aggregate_and_expression_types_through_pytds(server: ProcessServer) -> None:
    """SUM of int is int, of bigint bigint, of decimal(p,s) decimal(38,s); AVG of int int, of decimal
    decimal(38, max(s,6)); COUNT int, COUNT_BIG bigint; CASE/COALESCE/ISNULL and arithmetic by precedence."""
    cur = client_cursor("pytds", server)
    fresh_items(cur)
    cur.execute(
        "SELECT SUM(CASE WHEN qty > 1 THEN 1 ELSE 0 END), SUM(CAST(qty AS bigint)), SUM(price), AVG(qty), "
        "AVG(price), COUNT(*), COUNT_BIG(*), SUM(CAST(price AS money)), SUM(CAST(qty AS float)) FROM items"
    )
    assert [tuple(r) for r in cur.fetchall()] == [
        (2, 6, Decimal("4.00"), 2, Decimal("2.000000"), 3, 3, Decimal("4.0000"), 6.0)
    ]
    d = cur.description
    assert [x[1] for x in d] == [
        TDS_INT4, TDS_INT8, TDS_DECIMAL, TDS_INT4, TDS_DECIMAL, TDS_INT4, TDS_INT8, TDS_MONEY, TDS_FLT8,
    ]  # fmt: skip
    assert (d[2][4], d[2][5]) == (38, 2) and (d[4][4], d[4][5]) == (38, 6)
    cur.execute(
        "SELECT CASE WHEN qty > 1 THEN price ELSE qty END, COALESCE(price, qty), ISNULL(name, 'far too long'), "
        "qty * price, price / 3, IIF(qty > 1, 1, 2.5), CASE WHEN qty > 2 THEN name ELSE tag END "
        "FROM items WHERE name = 'c'"
    )
    assert [tuple(r) for r in cur.fetchall()] == [(None, Decimal("3"), "c", None, None, Decimal("1"), "c")]
    d = cur.description
    assert [x[1] for x in d] == [
        TDS_DECIMAL,
        TDS_DECIMAL,
        TDS_BIGVARCHAR,
        TDS_DECIMAL,
        TDS_DECIMAL,
        TDS_DECIMAL,
        TDS_NVARCHAR,
    ]  # fmt: skip (python-tds reports numeric columns as decimal too)
    # decimal(10,2) vs int(10,0): (12,2); int * decimal(10,2): (21,2); decimal(10,2) / 3: (14,6) (an integer
    # constant counts as numeric(1,0), which is why SELECT 1.0/3 shows 0.333333);
    # 1 vs 2.5: numeric(2,1); varchar(20) vs nvarchar(10): nvarchar(20)
    assert [(x[4], x[5]) for x in d[:2]] == [(12, 2), (12, 2)]
    assert d[2][3] == 20
    assert [(x[4], x[5]) for x in d[3:6]] == [(21, 2), (14, 6), (2, 1)]
    assert d[6][3] == 20


@pytest.mark.parametrize("client", CLIENTS)
def test_strings_in_arithmetic_become_numbers(cur: Any, client: str) -> None:
    """Every number outranks every string: '1' + 1 is 2; SUM/AVG refuse strings and bit (8117); ABS/ROUND keep
    their argument's type, FLOOR/CEILING/SIGN drop a decimal's scale."""
    fresh_items(cur)
    row = one_row(
        cur,
        "SELECT '1' + 1, name + '!', '1.5' + price, qty * '3', ABS(price - 3), ROUND(price, 1), FLOOR(price), "
        "CEILING(price) FROM items WHERE name = 'b'",
    )
    assert row == (2, "b!", Decimal("4.00"), 6, Decimal("0.50"), Decimal("2.50"), Decimal("2"), Decimal("3"))
    if client == "mssql_python":
        assert [(d[1], d[4], d[5]) for d in cur.description] == [
            (int, 10, 0), (str, 21, 0), (Decimal, 11, 2), (int, 10, 0), (Decimal, 11, 2), (Decimal, 10, 2),
            (Decimal, 10, 0), (Decimal, 10, 0),
        ]  # fmt: skip
    refused(cur, client, "SELECT SUM(name) FROM items", 8117, "Operand data type varchar is invalid for sum operator.")
    refused(
        cur,
        client,
        "SELECT AVG(CAST(qty AS bit)) FROM items",
        8117,
        "Operand data type bit is invalid for avg operator.",
    )


@pytest.mark.parametrize("client", ["pytds", "mssql_python"])
def test_window_aggregates_keep_their_types(cur: Any, client: str) -> None:
    """SUM/AVG/COUNT OVER (...) are typed as the plain aggregates (AVG of int truncates, over the window)."""
    fresh_items(cur)
    cur.execute(
        "SELECT name, SUM(qty) OVER (), AVG(qty) OVER (ORDER BY qty ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
        "SUM(price) OVER (), AVG(price) OVER (), COUNT(*) OVER () FROM items ORDER BY qty"
    )
    assert [tuple(r) for r in cur.fetchall()] == [
        ("a", 6, 1, Decimal("4.00"), Decimal("2.000000"), 3),
        ("b", 6, 1, Decimal("4.00"), Decimal("2.000000"), 3),
        ("c", 6, 2, Decimal("4.00"), Decimal("2.000000"), 3),
    ]
    if client == "pytds":
        assert [d[1] for d in cur.description[1:]] == [TDS_INT4, TDS_INT4, TDS_DECIMAL, TDS_DECIMAL, TDS_INT4]
        assert [(d[4], d[5]) for d in cur.description[3:5]] == [(38, 2), (38, 6)]
    else:
        assert [(d[1], d[4], d[5]) for d in cur.description[1:]] == [
            (int, 10, 0), (int, 10, 0), (Decimal, 38, 2), (Decimal, 38, 6), (int, 10, 0),
        ]  # fmt: skip


@pytest.mark.parametrize("client", ["pytds", "mssql_python"])
def test_set_operations_widen_their_columns(cur: Any, client: str) -> None:
    """Each UNION column takes the type of highest precedence of its branches, lengths and scales widened."""
    cur.execute(
        "SELECT 1 AS a, CAST('ab' AS varchar(2)) AS b UNION ALL SELECT CAST(2.5 AS decimal(6,3)), N'cdefg' ORDER BY a"
    )
    assert [tuple(r) for r in cur.fetchall()] == [(Decimal("1.000"), "ab"), (Decimal("2.500"), "cdefg")]
    if client == "pytds":
        assert [(d[1], d[4], d[5]) for d in cur.description[:1]] == [(TDS_DECIMAL, 13, 3)]
        assert (cur.description[1][1], cur.description[1][3]) == (TDS_NVARCHAR, 5)
    else:
        assert [(d[1], d[4], d[5]) for d in cur.description[:1]] == [(Decimal, 13, 3)]
        assert (cur.description[1][1], cur.description[1][3]) == (str, 5)


@pytest.mark.parametrize("client", ["pymssql", "mssql_python"])
def test_sum_of_case_is_int_for_other_clients(cur: Any, client: str) -> None:
    fresh_items(cur)
    row = one_row(
        cur,
        "SELECT SUM(CASE WHEN qty > 1 THEN 1 ELSE 0 END), AVG(price), ISNULL(NULL, 7), SUM(price), price / 4, "
        "ISNULL(CAST(NULL AS int), 0.5) FROM items WHERE name = 'b' GROUP BY price",
    )
    assert row == (1, Decimal("2.500000"), 7, Decimal("2.50"), Decimal("0.625000"), 0)
    if client == "pymssql":
        assert [d[1] for d in cur.description] == [pymssql.NUMBER, pymssql.DECIMAL, pymssql.NUMBER] + [
            pymssql.DECIMAL
        ] * 2 + [pymssql.NUMBER]
    else:
        assert [(d[1], d[4], d[5]) for d in cur.description] == [
            (int, 10, 0), (Decimal, 38, 6), (int, 10, 0), (Decimal, 38, 2), (Decimal, 14, 6), (int, 10, 0),
        ]  # fmt: skip


# ----------------------------------------------------------------------------------- 7: datetimeoffset range


@pytest.mark.parametrize("client", CLIENTS)
def test_datetimeoffset_range_is_its_utc_instants(cur: Any, client: str) -> None:
    """A datetimeoffset's range is 0001-01-01 .. 9999-12-31 23:59:59.9999999 in UTC (MS-BCP 2.1.9): a local
    time whose UTC instant falls outside is refused at both ends (242), and DATEADD past them is 517; values
    just inside read back in every client."""
    for text in ("0001-01-01 00:00 +01:00", "9999-12-31 23:59 -01:00", "0001-01-01 13:59 +14:00"):
        refused(
            cur, client, f"SELECT CAST('{text}' AS datetimeoffset)", 242,
            "The conversion of a varchar data type to a datetimeoffset data type resulted in an out-of-range value.",
        )  # fmt: skip
    n = 200 + len(client)
    cur.execute(f"DELETE FROM texts WHERE id IN ({n}, {n + 10})")
    cur.execute(
        f"INSERT INTO texts (id, v) VALUES ({n}, '0001-01-01 00:00 +01:00'), ({n + 10}, '2020-05-05 10:00 +02:00')"
    )
    refused(
        cur, client, f"SELECT CAST(v AS datetimeoffset) FROM texts WHERE id = {n}", 242,
        "The conversion of a varchar data type to a datetimeoffset data type resulted in an out-of-range value.",
    )  # fmt: skip
    assert one_row(cur, f"SELECT TRY_CAST(v AS datetimeoffset) FROM texts WHERE id = {n}") == (None,)
    row = one_row(cur, f"SELECT CAST(CAST(v AS datetimeoffset(0)) AS varchar(40)) FROM texts WHERE id = {n + 10}")
    assert row == ("2020-05-05 10:00:00 +02:00",)
    refused(
        cur, client, "SELECT DATEADD(minute, -1, CAST('0001-01-01 00:00 +00:00' AS datetimeoffset))", 517,
        "Adding a value to a 'datetimeoffset' column caused an overflow.",
    )  # fmt: skip
    refused(
        cur, client, "SELECT DATEADD(day, 1, CAST('9999-12-31 00:00' AS datetime2))", 517,
        "Adding a value to a 'datetime2' column caused an overflow.",
    )  # fmt: skip
    if client == "pymssql":
        return  # FreeTDS returns datetimeoffset as text in its own format; the other two read it as datetime
    row = one_row(
        cur,
        "SELECT CAST('0001-01-01 00:00 -01:00' AS datetimeoffset), CAST('9999-12-31 23:59 +01:00' AS datetimeoffset)",
    )
    low = dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-1)))
    high = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert row == (low, high)
