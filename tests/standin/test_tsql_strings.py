"""LEN and DATALENGTH over supplementary characters on every path a string takes (column, (max) column,
literal, variable, parameter, REPLICATE, CONCAT), and PRINT as SQL Server sends it (an INFO message, number 0,
class 0), checked through pymssql/FreeTDS and mssql-python/ODBC 18 (python-tds for the reported types).

"LEN (Transact-SQL)": characters without trailing spaces; bigint for varchar(max)/nvarchar(max)/varbinary(max),
else int; only SC collations count a surrogate pair as one character, so under the server's
SQL_Latin1_General_CP1_CI_AS an emoji counts 2. DATALENGTH counts bytes (2 per UTF-16 unit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mssql_standin import ProcessServer, serve_process
from tests.standin.conftest import PASSWORD, USER
from tests.standin.test_tsql_fidelity import CLIENTS, TDS_INT4, TDS_INT8, one_row

INIT_SQL = """
create table dbo.emoji (id int primary key, n nvarchar(20) null, m nvarchar(max) null, c nchar(6) null);
insert into dbo.emoji values (1, N'a😀b  ', N'😀😀 ', N'😀')
"""

TWO_CLIENTS = ["pymssql", "mssql_python"]


@pytest.fixture(scope="module")
def server() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT_SQL) as srv:
        yield srv


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_len_counts_utf16_units_without_trailing_spaces_on_columns(server: ProcessServer, client: str) -> None:
    """nvarchar(20) 'a😀b  ' is 4 units without its two trailing spaces and 12 bytes; nvarchar(max) '😀😀 ' is
    4 units, 10 bytes; nchar(6) '😀' is padded to 6 units (12 bytes) and LEN drops the padding."""
    cur = CLIENTS[client](server)
    row = one_row(cur, "SELECT LEN(n), DATALENGTH(n), LEN(m), DATALENGTH(m), LEN(c), DATALENGTH(c) FROM dbo.emoji")
    assert row == (4, 12, 4, 10, 2, 12)
    assert one_row(cur, "SELECT id FROM dbo.emoji WHERE LEN(n) = 4 AND LEN(m) = 4") == (1,)


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_len_of_literals_variables_and_parameters(server: ProcessServer, client: str) -> None:
    """A literal, a variable and an sp_executesql parameter count alike: N'😀x ' is 3 units, 8 bytes."""
    cur = CLIENTS[client](server)
    assert one_row(cur, "SELECT LEN(N'😀'), DATALENGTH(N'😀'), LEN(N'a😀 '), LEN(N'   '), LEN(N'')") == (2, 4, 3, 0, 0)
    assert one_row(cur, "DECLARE @s nvarchar(20) = N'😀x '; SELECT LEN(@s), DATALENGTH(@s)") == (3, 8)
    sql = "EXEC sp_executesql N'SELECT LEN(@p), DATALENGTH(@p)', N'@p nvarchar(20)', @p = N'😀x '"
    assert one_row(cur, sql) == (3, 8)


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_len_of_computed_strings(server: ProcessServer, client: str) -> None:
    """REPLICATE, + and CONCAT keep counting units: 😀 three times is 6, an nvarchar(max) cast keeps its trailing
    space for DATALENGTH only, and a column joined with an emoji is 8 units."""
    cur = CLIENTS[client](server)
    row = one_row(
        cur,
        "SELECT LEN(REPLICATE(N'😀', 3)), DATALENGTH(REPLICATE(N'😀 ', 2)), LEN(CAST(N'😀 ' AS nvarchar(max))), "
        "DATALENGTH(CAST(N'😀 ' AS nvarchar(max))), LEN(n + N'😀'), LEN(CONCAT(N'😀', N'a ')), "
        "LEN(CONCAT(m, N'x')) FROM dbo.emoji",
    )
    assert row == (6, 12, 2, 6, 8, 3, 6)


def test_len_type_is_bigint_only_for_max_arguments(server: ProcessServer) -> None:
    """LEN's type follows its argument: int for nvarchar(n) and for CONCAT of short strings (CONCAT's result is
    nvarchar(<= 4000) then), bigint for nvarchar(max) and for CONCAT with a (max) argument."""
    cur = CLIENTS["pytds"](server)
    one_row(cur, "SELECT LEN(n), LEN(m), LEN(CONCAT(N'😀', N'a ')), LEN(CONCAT(m, N'x')), LEN(REPLICATE(N'😀', 3)) "
                 "FROM dbo.emoji")  # fmt: skip
    assert [d[1] for d in cur.description] == [TDS_INT4, TDS_INT8, TDS_INT4, TDS_INT8, TDS_INT4]


def test_concat_result_type_and_length(server: ProcessServer) -> None:
    """CONCAT is varchar unless an argument is nvarchar; its length is the sum of its arguments' (an int counts
    12); an argument longer than 8000 characters in total is cut there when no argument is (max)."""
    cur = CLIENTS["pytds"](server)
    row = one_row(cur, "SELECT CONCAT('a', 1), CONCAT(N'x', 'y'), LEN(CONCAT(REPLICATE('a', 8000), 'bc')), "
                       "CONCAT(NULL, NULL)")  # fmt: skip
    assert row == ("a1", "xy", 8000, "")
    assert [(d[1], d[3]) for d in cur.description] == [(167, 13), (231, 2), (TDS_INT4, 4), (167, 1)]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_positions_in_nvarchar_count_utf16_units(server: ProcessServer, client: str) -> None:
    """SUBSTRING, LEFT, RIGHT and CHARINDEX count an emoji as two characters like LEN ("Collation and Unicode
    support": without an SC collation they work on UTF-16 code units): SUBSTRING(N'😀abc', 3, 1) is 'a'. A cut
    through a pair keeps neither half (SQL Server would return the lone surrogate)."""
    cur = CLIENTS[client](server)
    row = one_row(
        cur,
        "SELECT SUBSTRING(N'😀abc', 3, 1), SUBSTRING(N'😀abc', 1, 2), SUBSTRING(N'😀abc', 0, 3), LEFT(N'a😀b', 3), "
        "RIGHT(N'a😀b', 3), CHARINDEX(N'b', N'a😀b'), SUBSTRING(n, 2, 3), CHARINDEX(N'b', n), "
        "SUBSTRING(N'abc', -1, 3), SUBSTRING('abcdef', 2, 3) FROM dbo.emoji",
    )
    assert row == ("a", "😀", "😀", "a😀", "😀b", 4, "😀b", 4, "a", "bcd")


def print_messages(client: str, server: ProcessServer, batch: str) -> tuple[list[str], list[Any]]:
    """The messages a batch's PRINTs send and the rows of its one result set, as the client reports them."""
    cur = CLIENTS[client](server)
    if client == "pymssql":
        got: list[tuple[Any, ...]] = []
        cur.connection._conn.set_msghandler(lambda *args: got.append(args))
        cur.execute(batch)
        rows = cur.fetchall()
        # (state, severity, server, procedure, line, text): PRINT is message 0 of class 0, state 1
        assert all(m[0] == 1 and m[1] == 0 for m in got)
        return [m[5].decode() for m in got], rows
    cur.execute(batch)
    rows = cur.fetchall()
    # ODBC reports an informational message as SQLSTATE 01000 with the native error number 0
    assert all(state == "[01000] (0)" for state, _ in cur.messages)
    return [text.rsplit("]", 1)[1] for _, text in cur.messages], rows


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_print_without_semicolons_ends_where_the_next_statement_starts(server: ProcessServer, client: str) -> None:
    """`PRINT 'a' PRINT N'b' + ...` then a SELECT on the next line, no semicolons: two messages, then the rows
    (SQL Server's parser ends PRINT's expression where the next statement begins)."""
    batch = "PRINT 'a' PRINT N'b😀' + CAST(LEN(N'😀') AS varchar(3))\nSELECT 1 AS one"
    messages, rows = print_messages(client, server, batch)
    assert messages == ["a", "b😀2"]
    assert [tuple(r) for r in rows] == [(1,)]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_print_with_and_without_a_semicolon(server: ProcessServer, client: str) -> None:
    """A last PRINT with no semicolon, a PRINT of a number (implicitly a string) and of NULL (an empty message)."""
    messages, rows = print_messages(client, server, "SELECT 2 AS two; PRINT 42; PRINT NULL\nPRINT 'last'")
    assert messages == ["42", "", "last"]
    assert [tuple(r) for r in rows] == [(2,)]
