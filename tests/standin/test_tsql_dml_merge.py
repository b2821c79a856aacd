"""UPDATE ... FROM / DELETE ... FROM with joins and MERGE as SQL Server 2022 documents them ("UPDATE", "DELETE",
"MERGE (Transact-SQL)"), through pymssql/FreeTDS and mssql-python/ODBC 18: the rows changed, the rows-affected
count of the DONE token (cursor.rowcount) and @@ROWCOUNT."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mssql_standin import ProcessServer, serve_process
from tests.standin.conftest import PASSWORD, USER
from tests.standin.test_tsql_fidelity import CLIENTS, one_row, refused

INIT_SQL = """
create table dbo.tgt (id int primary key, v int null, note varchar(10) null);
create table dbo.src (id int primary key, v int null)
"""

TWO_CLIENTS = ["pymssql", "mssql_python"]


@pytest.fixture(scope="module")
def server() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT_SQL) as srv:
        yield srv


def fresh(server: ProcessServer, client: str) -> Any:
    """A cursor over tgt = (1,10,'a'), (2,20,'b'), (3,30,'c') and src = (2,200), (3,300), (4,400)."""
    cur = CLIENTS[client](server)
    cur.execute(
        "DELETE FROM dbo.tgt; DELETE FROM dbo.src; INSERT INTO dbo.tgt VALUES (1, 10, 'a'), (2, 20, 'b'), "
        "(3, 30, 'c'); INSERT INTO dbo.src VALUES (2, 200), (3, 300), (4, 400)"
    )
    return cur


def rows(cur: Any) -> list[tuple[Any, ...]]:
    cur.execute("SELECT id, v, note FROM dbo.tgt ORDER BY id")
    return [tuple(r) for r in cur.fetchall()]


def changed(cur: Any, sql: str) -> tuple[int, int]:
    """(rows affected as the DONE token reports it, @@ROWCOUNT right after)."""
    cur.execute(sql)
    count = cur.rowcount
    return count, one_row(cur, "SELECT @@ROWCOUNT")[0]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_update_from_a_join_by_alias(server: ProcessServer, client: str) -> None:
    cur = fresh(server, client)
    assert changed(cur, "UPDATE t SET v = s.v, note = 'j' FROM dbo.tgt AS t JOIN dbo.src AS s ON s.id = t.id") == (2, 2)
    assert rows(cur) == [(1, 10, "a"), (2, 200, "j"), (3, 300, "j")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_update_from_with_the_target_by_name_and_a_where(server: ProcessServer, client: str) -> None:
    """The target named as in FROM (no alias), a WHERE over both tables, an expression of both."""
    cur = fresh(server, client)
    sql = "UPDATE dbo.tgt SET v = s.v + tgt.v FROM dbo.tgt INNER JOIN dbo.src s ON s.id = tgt.id WHERE s.v > 250"
    assert changed(cur, sql) == (1, 1)
    assert rows(cur) == [(1, 10, "a"), (2, 20, "b"), (3, 330, "c")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_update_from_without_the_target_in_from(server: ProcessServer, client: str) -> None:
    """UPDATE dbo.tgt ... FROM dbo.src WHERE src.id = tgt.id: the target joins the FROM sources through WHERE."""
    cur = fresh(server, client)
    assert changed(cur, "UPDATE dbo.tgt SET note = 'w' FROM dbo.src WHERE src.id = tgt.id") == (2, 2)
    assert rows(cur) == [(1, 10, "a"), (2, 20, "w"), (3, 30, "w")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_update_from_counts_each_target_row_once(server: ProcessServer, client: str) -> None:
    """A target row several source rows match is updated once (from one of them) and counted once."""
    cur = fresh(server, client)
    assert changed(cur, "UPDATE t SET note = 'many' FROM dbo.tgt t JOIN dbo.src s ON s.id >= t.id") == (3, 3)
    assert [r[2] for r in rows(cur)] == ["many"] * 3


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_update_from_keeps_the_checks(server: ProcessServer, client: str) -> None:
    """A value too long for the column is error 2628 and changes nothing; a duplicate key 2627."""
    cur = fresh(server, client)
    sql = "UPDATE t SET note = REPLICATE('x', 11) FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id"
    refused(
        cur, client, sql, 2628, "String or binary data would be truncated in table 'standin.dbo.tgt', column 'note'"
    )
    sql = "UPDATE t SET id = 1 FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id WHERE s.id = 2"
    refused(cur, client, sql, 2627, "Violation of PRIMARY KEY constraint")
    assert rows(cur) == [(1, 10, "a"), (2, 20, "b"), (3, 30, "c")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE t FROM dbo.tgt AS t JOIN dbo.src AS s ON s.id = t.id WHERE s.v = 300",
        "DELETE FROM t FROM dbo.tgt t INNER JOIN dbo.src s ON s.id = t.id WHERE s.v = 300",
        "DELETE dbo.tgt FROM dbo.src WHERE src.id = tgt.id AND src.v = 300",
    ],
)
def test_delete_from_a_join(server: ProcessServer, client: str, sql: str) -> None:
    cur = fresh(server, client)
    assert changed(cur, sql) == (1, 1)
    assert rows(cur) == [(1, 10, "a"), (2, 20, "b")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_delete_from_a_join_with_output(server: ProcessServer, client: str) -> None:
    cur = fresh(server, client)
    cur.execute("DELETE FROM t OUTPUT deleted.id FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id")
    assert sorted(r[0] for r in cur.fetchall()) == [2, 3]
    assert rows(cur) == [(1, 10, "a")]
