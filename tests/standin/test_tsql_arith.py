"""Arithmetic result types and values as SQL Server 2022 documents them, through pymssql/FreeTDS and
mssql-python/ODBC 18 (python-tds for the TDS type each column is described with).

- "Data type precedence (Transact-SQL)": an operator over two types yields the one of higher precedence; "When both
  operand expressions have the same data type, the result of the operation has that data type" — so tinyint +
  tinyint is tinyint and smallint * smallint smallint, and a result the type cannot hold is error 8115
  ("Arithmetic overflow error converting expression to data type tinyint.").
- "Precision, scale, and length (Transact-SQL)": e1 / e2 is decimal(p1 - s1 + s2 + max(6, s1 + p2 + 1),
  max(6, s1 + p2 + 1)), e1 * e2 decimal(p1 + p2 + 1, s1 + s2), e1 + e2 decimal(max(s1, s2) + max(p1 - s1, p2 - s2)
  + 1, max(s1, s2)); above 38 the scale gives way (to at most 38 - integral digits, or 6). An integer constant
  counts its digits (10.0 / 3 is numeric(8,6)). Quotients are computed exactly and cut, not rounded through a
  float."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from mssql_standin import ProcessServer, serve_process
from tests.standin.conftest import PASSWORD, USER
from tests.standin.test_tsql_fidelity import CLIENTS, TDS_DECIMAL, TDS_INT4, TDS_INT8, TDS_MONEY, one_row, refused

INIT_SQL = """
create table dbo.nums (id int primary key, t tinyint not null, s smallint not null, i int not null, b bigint not null,
                       d decimal(38,10) not null, m money not null);
insert into dbo.nums values (1, 200, 32767, 2147483647, 9223372036854775807, 12345678901234567890.1234567890, 2)
"""

TWO_CLIENTS = ["pymssql", "mssql_python"]
TDS_INT1, TDS_INT2 = 48, 52


@pytest.fixture(scope="module")
def server() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT_SQL) as srv:
        yield srv


def test_integer_operators_keep_the_operand_type_of_higher_precedence(server: ProcessServer) -> None:
    """tinyint op tinyint is tinyint (TDS INT1), smallint op smallint/tinyint smallint (INT2), int op bigint bigint;
    bit + bit is int; an int constant makes the result int."""
    cur = CLIENTS["pytds"](server)
    row = one_row(
        cur,
        "SELECT CAST(1 AS tinyint) + CAST(2 AS tinyint), CAST(7 AS tinyint) / CAST(2 AS tinyint), "
        "CAST(3 AS smallint) * CAST(2 AS smallint), CAST(2 AS tinyint) * CAST(3 AS smallint), "
        "CAST(-7 AS smallint) % CAST(3 AS tinyint), CAST(1 AS int) + CAST(2 AS bigint), "
        "CAST(1 AS bit) + CAST(1 AS bit), t + 1, -i FROM dbo.nums",
    )
    assert row == (3, 3, 6, 6, -1, 3, 2, 201, -2147483647)
    kinds = [TDS_INT1, TDS_INT1, TDS_INT2, TDS_INT2, TDS_INT2, TDS_INT8, TDS_INT4, TDS_INT4, TDS_INT4]
    assert [d[1] for d in cur.description] == kinds


@pytest.mark.parametrize("client", TWO_CLIENTS)
@pytest.mark.parametrize(
    ("sql", "type_name"),
    [
        ("SELECT t + t FROM dbo.nums", "tinyint"),
        ("SELECT CAST(1 AS tinyint) - CAST(2 AS tinyint)", "tinyint"),
        ("SELECT s * CAST(2 AS smallint) FROM dbo.nums", "smallint"),
        ("SELECT i + 1 FROM dbo.nums", "int"),
        ("SELECT -CAST(-2147483648 AS int)", "int"),
        ("SELECT CAST(-2147483648 AS int) / -1", "int"),
        ("SELECT b + 1 FROM dbo.nums", "bigint"),
        ("SELECT b * CAST(2 AS int) FROM dbo.nums", "bigint"),
        ("SELECT SUM(x) FROM (SELECT i AS x FROM dbo.nums UNION ALL SELECT i FROM dbo.nums) AS u", "int"),
        ("SELECT AVG(x) FROM (SELECT i AS x FROM dbo.nums UNION ALL SELECT i FROM dbo.nums) AS u", "int"),
        ("SELECT CAST(922337203685477.5807 AS money) + CAST(0.0001 AS money)", "money"),
        ("SELECT CAST(900000000000000 AS money) * 2", "money"),
        ("SELECT CAST(900000000000000 AS money) / CAST(0.5 AS money)", "money"),
        (
            "SELECT SUM(x) FROM (SELECT CAST(922337203685477.5807 AS money) AS x UNION ALL SELECT m FROM dbo.nums) u",
            "money",
        ),
        ("SELECT CAST(99999999999999999999999999999999999999 AS decimal(38,0)) + 1", "numeric"),
        ("SELECT CAST(99999999999999999999999999999999999999 AS decimal(38,0)) / CAST(0.1 AS decimal(2,1))", "numeric"),
    ],
)
def test_results_the_type_cannot_hold_are_error_8115(
    server: ProcessServer, client: str, sql: str, type_name: str
) -> None:
    refused(
        CLIENTS[client](server),
        client,
        sql,
        8115,
        f"Arithmetic overflow error converting expression to data type {type_name}.",
    )


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_values_the_type_holds_are_not_refused(server: ProcessServer, client: str) -> None:
    """The edges themselves: 200 + 55 is 255 in tinyint, s - s is 0 in smallint, int's, bigint's and money's
    extremes by subtraction."""
    cur = CLIENTS[client](server)
    row = one_row(
        cur, "SELECT t + CAST(55 AS tinyint), s - s, i - 1, b - 1, CAST(-2147483647 AS int) - 1 FROM dbo.nums"
    )
    assert row == (255, 0, 2147483646, 9223372036854775806, -2147483648)
    lowest = one_row(cur, "SELECT -CAST(922337203685477.5807 AS money) - CAST(0.0001 AS money)")
    assert lowest == (Decimal("-922337203685477.5808"),)


def test_decimal_division_types_follow_the_formula(server: ProcessServer) -> None:
    """decimal(38,10) / 3: p 40 > 38 with 28 integral digits (< 32), so the scale is 38 - 28 = 10; 10.0 / 3 is
    numeric(8,6); decimal(38,0) / decimal(38,0) has 38 integral digits, so the scale is 6; money / int is money."""
    cur = CLIENTS["pytds"](server)
    row = one_row(
        cur,
        "SELECT CAST(1 AS decimal(38,10)) / 3, 10.0 / 3, CAST(1 AS decimal(38,0)) / CAST(3 AS decimal(38,0)), "
        "m / 3, CAST(1 AS decimal(10,2)) / CAST(3 AS decimal(5,1)) FROM dbo.nums",
    )
    assert row == (Decimal("0.3333333333"), Decimal("3.333333"), Decimal("0.333333"), Decimal("0.6666"),
                   Decimal("0.33333333"))  # fmt: skip
    # (type, precision, scale): p1 - s1 + s2 + s with s = max(6, s1 + p2 + 1)
    assert [(d[1], d[4], d[5]) for d in cur.description] == [
        (TDS_DECIMAL, 38, 10),
        (TDS_DECIMAL, 8, 6),
        (TDS_DECIMAL, 38, 6),
        (TDS_MONEY, None, None),
        (TDS_DECIMAL, 17, 8),
    ]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_decimal_division_is_exact_and_cut(server: ProcessServer, client: str) -> None:
    """Quotients beyond a double's 17 digits are exact, and cut (not rounded) to the result's scale: 2.0 / 3 is
    0.666666, $2 / 3 is $0.6666, 1.67574 / 10000 at decimal(38,10) is 0.000167."""
    cur = CLIENTS[client](server)
    row = one_row(
        cur,
        "SELECT d / 7, CAST(1 AS decimal(20,10)) / CAST(7 AS decimal(20,10)), 2.0 / 3, -2.0 / 3, m / 3, "
        "CAST(100 AS money) / CAST(339 AS money), CAST(1.67574 AS decimal(38,10)) / CAST(10000 AS decimal(38,10)) "
        "FROM dbo.nums",
    )
    assert row == (
        Decimal("1763668414462081127.1604938270"),
        Decimal("0.142857142857142857"),
        Decimal("0.666666"),
        Decimal("-0.666666"),
        Decimal("0.6666"),
        Decimal("0.2949"),
        Decimal("0.000167"),
    )


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_decimal_products_and_sums_past_38_digits(server: ProcessServer, client: str) -> None:
    """decimal(38,10) * decimal(38,10) is decimal(38,6) (77 digits, 57 integral: scale 6), exact even where a
    DECIMAL(38,20) intermediate could not hold it; decimal(38,37) + decimal(38,0) is decimal(38,0), rounded half
    away from zero; a remainder keeps the dividend's sign."""
    cur = CLIENTS[client](server)
    row = one_row(
        cur,
        "SELECT d * CAST(2 AS decimal(38,10)), CAST(1.5 AS decimal(38,37)) + CAST(1 AS decimal(38,0)), "
        "CAST(-7.5 AS decimal(38,1)) % CAST(2 AS decimal(38,1)), CAST(1.00005 AS decimal(10,5)) * "
        "CAST(1.00005 AS decimal(10,5)) FROM dbo.nums",
    )
    assert row == (Decimal("24691357802469135780.246914"), Decimal("3"), Decimal("-1.5"), Decimal("1.0001000025"))


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_integer_constants_past_int_are_decimal(server: ProcessServer, client: str) -> None:
    """ "int, bigint, smallint, and tinyint": an integer constant greater than 2,147,483,647 is decimal, not bigint —
    the page's own example, SELECT 2147483647 / 2, 2147483649 / 2, gives 1073741823 and 1073741824.500000."""
    cur = CLIENTS[client](server)
    row = one_row(cur, "SELECT 2147483647 / 2, 2147483649 / 2, 3000000000 + 1, -9223372036854775808")
    assert row == (1073741823, Decimal("1073741824.500000"), Decimal("3000000001"), Decimal("-9223372036854775808"))
    refused(cur, client, "SELECT 123456789012345678901234567890123456789", 1007,
            "The number '123456789012345678901234567890123456789' is out of the range for numeric representation "
            "(maximum precision 38).")  # fmt: skip


def test_integer_constant_types(server: ProcessServer) -> None:
    """2147483649 / 2 is numeric(16,6) (2147483649 is numeric(10,0)); 3000000000 + 1 numeric(11,0)."""
    cur = CLIENTS["pytds"](server)
    one_row(cur, "SELECT 2147483647 / 2, 2147483649 / 2, 3000000000, 3000000000 + 1")
    assert [(d[1], d[4], d[5]) for d in cur.description] == [
        (TDS_INT4, None, None),
        (TDS_DECIMAL, 16, 6),
        (TDS_DECIMAL, 10, 0),
        (TDS_DECIMAL, 11, 0),
    ]
