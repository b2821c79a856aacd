"""CONVERT styles SQL Server documents as exact, through pymssql and mssql-python: datetimeoffset with styles
121/126/127 keeps every fractional digit and the offset (127 writes a zero offset as Z), float/real style 3 reads
back as the same value, money style 2 keeps four decimals, a string becomes datetime2/time with all seven digits,
and CAST(sql_variant AS <its base type>) converts the base value itself, not its style-0 text; N'...' literals count
UTF-16 units."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mssql_standin import ProcessServer, serve_process
from tests.standin.conftest import PASSWORD, USER
from tests.standin.test_tsql_fidelity import CLIENTS

TWO_CLIENTS = ["pymssql", "mssql_python"]

INIT_SQL = """
create table dbo.dto (id int primary key, v datetimeoffset(7) not null, v3 datetimeoffset(3) not null);
insert into dbo.dto values (1, '2020-01-01 10:00:00.1234567 +14:00', '2020-01-01 10:00:00.120 +05:30'),
    (2, '9999-12-31 09:59:59.9999999 -14:00', '2020-01-01 10:00:00 +00:00'),
    (3, '0001-01-01 14:00:00.0000001 +14:00', '0001-01-01 00:00:00 +00:00');
create table dbo.num (id int primary key, f float not null, r real not null, m money not null, s nvarchar(40) null);
insert into dbo.num values (1, 0.1, 0.1, 12.3456, N'2020-01-01 10:00:00.1234567'),
    (2, 1e308, 3.4e38, -922337203685477.5808, N'9999-12-31 23:59:59.9999999');
create table dbo.var (id int primary key, x sql_variant null);
insert into dbo.var values (1, cast(0.1 as float)), (2, cast(12.3456 as money)), (3, cast('2020-01-02 03:04:05.997'
    as datetime)), (4, cast('12:34:56.1234567' as time(7))), (5, cast('0001-01-01 00:00:00.0000001' as datetime2)),
    (6, cast(0x00ff as varbinary(2))), (7, cast(0x00 as binary(1)))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT_SQL) as srv:
        yield srv


def _rows(server: ProcessServer, client: str, sql: str) -> list[tuple[object, ...]]:
    cur = CLIENTS[client](server)
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_datetimeoffset_styles_keep_100ns_and_the_offset(server: ProcessServer, client: str) -> None:
    sql = (
        "SELECT CONVERT(varchar(40), v, 121), CONVERT(nvarchar(40), v, 126), CONVERT(varchar(40), v, 127), "
        "CONVERT(varchar(40), v3, 121), CONVERT(varchar(40), v3, 127) FROM dbo.dto ORDER BY id"
    )
    assert _rows(server, client, sql) == [
        (
            "2020-01-01 10:00:00.1234567 +14:00",
            "2020-01-01T10:00:00.1234567+14:00",
            "2020-01-01T10:00:00.1234567+14:00",
            "2020-01-01 10:00:00.120 +05:30",
            "2020-01-01T10:00:00.120+05:30",
        ),
        (
            "9999-12-31 09:59:59.9999999 -14:00",
            "9999-12-31T09:59:59.9999999-14:00",
            "9999-12-31T09:59:59.9999999-14:00",
            "2020-01-01 10:00:00.000 +00:00",
            "2020-01-01T10:00:00Z",
        ),
        (
            "0001-01-01 14:00:00.0000001 +14:00",
            "0001-01-01T14:00:00.0000001+14:00",
            "0001-01-01T14:00:00.0000001+14:00",
            "0001-01-01 00:00:00.000 +00:00",
            "0001-01-01T00:00:00Z",
        ),
    ]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_float_style_3_money_style_2_and_seven_digit_strings(server: ProcessServer, client: str) -> None:
    rows = _rows(
        server,
        client,
        "SELECT CONVERT(varchar(30), f, 3), CONVERT(varchar(30), r, 3), CONVERT(nvarchar(30), m, 2), "
        "CONVERT(varchar(30), CAST(s AS datetime2(7)), 121), CONVERT(varchar(30), CAST(f AS float), 3) "
        "FROM dbo.num ORDER BY id",
    )
    assert rows == [
        ("0.10000000000000001", "0.100000001", "12.3456", "2020-01-01 10:00:00.1234567", "0.10000000000000001"),
        ("1E+308", "3.39999995E+38", "-922337203685477.5808", "9999-12-31 23:59:59.9999999", "1E+308"),
    ]
    assert [float(r[0]) for r in rows] == [0.1, 1e308]


VARIANT_CASTS = (
    (1, "CONVERT(varchar(30), CAST(x AS float), 3)", "0.10000000000000001"),
    (2, "CONVERT(varchar(30), CAST(x AS money), 2)", "12.3456"),
    (3, "CONVERT(varchar(30), CAST(x AS datetime), 121)", "2020-01-02 03:04:05.997"),
    (4, "CONVERT(varchar(30), CAST(x AS time(7)), 121)", "12:34:56.1234567"),
    (5, "CONVERT(varchar(30), CAST(x AS datetime2(7)), 121)", "0001-01-01 00:00:00.0000001"),
    (6, "CONVERT(varchar(30), CAST(x AS varbinary(8000)), 1)", "0x00FF"),
    (7, "CONVERT(varchar(30), CAST(x AS varbinary(8000)), 1)", "0x00"),
)
"""(row of dbo.var, a CAST of its sql_variant to the base type written with an exact style, the text)."""


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_cast_of_sql_variant_converts_the_base_value(server: ProcessServer, client: str) -> None:
    got = [_rows(server, client, f"SELECT {expr} FROM dbo.var WHERE id = {row}") for row, expr, _ in VARIANT_CASTS]
    assert got == [[(text,)] for _, _, text in VARIANT_CASTS]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_a_unicode_literal_counts_utf16_units(server: ProcessServer, client: str) -> None:
    """N'emoji 😀' is nvarchar(8): the emoji takes two UTF-16 units, so a sql_variant made from it has MaxLength 16
    and CAST to nvarchar(8) keeps it whole."""
    sql = (
        "SELECT CAST(SQL_VARIANT_PROPERTY(CAST(N'emoji 😀' AS sql_variant), 'MaxLength') AS int), "
        "CAST(N'emoji 😀' AS nvarchar(8))"
    )
    assert _rows(server, client, sql) == [(16, "emoji 😀")]
