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


MERGE_ALL = """MERGE INTO dbo.tgt AS t USING dbo.src AS s ON t.id = s.id
WHEN MATCHED AND s.v > 250 THEN DELETE
WHEN MATCHED THEN UPDATE SET v = s.v, note = 'm'
WHEN NOT MATCHED BY TARGET THEN INSERT (id, v, note) VALUES (s.id, s.v, 'i')
WHEN NOT MATCHED BY SOURCE AND t.v < 15 THEN UPDATE SET note = 'gone';"""

#: the statements of test_joined_changes_and_merge, by the case they test
STATEMENTS = {
    "update by alias": "UPDATE t SET v = s.v, note = 'j' FROM dbo.tgt AS t JOIN dbo.src AS s ON s.id = t.id",
    "update by name, WHERE over both": "UPDATE dbo.tgt SET v = s.v + tgt.v FROM dbo.tgt INNER JOIN dbo.src s "
    "ON s.id = tgt.id WHERE s.v > 250",
    "update joined through WHERE": "UPDATE dbo.tgt SET note = 'w' FROM dbo.src WHERE src.id = tgt.id",
    # each target row once, however many source rows match it
    "update matched many times": "UPDATE t SET note = 'many' FROM dbo.tgt t JOIN dbo.src s ON s.id >= t.id",
    "delete by alias": "DELETE t FROM dbo.tgt AS t JOIN dbo.src AS s ON s.id = t.id WHERE s.v = 300",
    "delete with both FROMs": "DELETE FROM t FROM dbo.tgt t INNER JOIN dbo.src s ON s.id = t.id WHERE s.v = 300",
    "delete joined through WHERE": "DELETE dbo.tgt FROM dbo.src WHERE src.id = tgt.id AND src.v = 300",
    # matched 3 (s.v 300 > 250) deleted, matched 2 updated by the second WHEN MATCHED, source row 4 inserted,
    # target row 1 (no source row, v < 15) updated: four rows, one count for the statement
    "merge, every branch": MERGE_ALL,
    # USING (VALUES ...) AS s (id, v); INSERT without a column list, with DEFAULT; NOT MATCHED BY SOURCE deletes
    "merge from VALUES": "MERGE dbo.tgt USING (VALUES (1, 5), (9, 90)) AS s (id, v) ON tgt.id = s.id WHEN MATCHED "
    "THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v, DEFAULT) WHEN NOT MATCHED BY SOURCE "
    "THEN DELETE;",
    # TOP (2): two rows acted on in all (the two matched ones here, so no insert)
    "merge TOP (2)": "MERGE TOP (2) dbo.tgt AS t USING dbo.src AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET "
    "note = 'top' WHEN NOT MATCHED THEN INSERT (id, v, note) VALUES (s.id, s.v, 'i');",
}

#: (rows the statement changes, tgt afterwards), starting from the rows fresh() writes
CHANGES = {
    "update by alias": (2, [(1, 10, "a"), (2, 200, "j"), (3, 300, "j")]),
    "update by name, WHERE over both": (1, [(1, 10, "a"), (2, 20, "b"), (3, 330, "c")]),
    "update joined through WHERE": (2, [(1, 10, "a"), (2, 20, "w"), (3, 30, "w")]),
    "update matched many times": (3, [(1, 10, "many"), (2, 20, "many"), (3, 30, "many")]),
    "delete by alias": (1, [(1, 10, "a"), (2, 20, "b")]),
    "delete with both FROMs": (1, [(1, 10, "a"), (2, 20, "b")]),
    "delete joined through WHERE": (1, [(1, 10, "a"), (2, 20, "b")]),
    "merge, every branch": (4, [(1, 10, "gone"), (2, 200, "m"), (4, 400, "i")]),
    "merge from VALUES": (4, [(1, 5, "a"), (9, 90, None)]),
    "merge TOP (2)": (2, [(1, 10, "a"), (2, 20, "top"), (3, 30, "top")]),
}


@pytest.mark.parametrize("client", TWO_CLIENTS)
@pytest.mark.parametrize("case", CHANGES)
def test_joined_changes_and_merge(server: ProcessServer, client: str, case: str) -> None:
    """The rows changed, the DONE token's count and @@ROWCOUNT (each target row once)."""
    count, after = CHANGES[case]
    cur = fresh(server, client)
    assert changed(cur, STATEMENTS[case]) == (count, count)
    assert rows(cur) == after


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
def test_joined_changes_take_top_and_output(server: ProcessServer, client: str) -> None:
    """UPDATE TOP (1) ... FROM changes one joined row; OUTPUT of UPDATE ... FROM gives both images, of
    DELETE ... FROM the deleted rows."""
    cur = fresh(server, client)
    assert changed(cur, "UPDATE TOP (1) t SET note = 'top' FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id") == (1, 1)
    assert [r[2] for r in rows(cur)].count("top") == 1
    cur.execute("UPDATE t SET v = s.v OUTPUT deleted.v, inserted.v FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id")
    assert sorted(tuple(r) for r in cur.fetchall()) == [(20, 200), (30, 300)]
    cur.execute("DELETE FROM t OUTPUT deleted.id FROM dbo.tgt t JOIN dbo.src s ON s.id = t.id")
    assert sorted(r[0] for r in cur.fetchall()) == [2, 3]
    assert rows(cur) == [(1, 10, "a")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_merge_inside_a_transaction_rolls_back_with_it(server: ProcessServer, client: str) -> None:
    cur = fresh(server, client)
    cur.execute("BEGIN TRANSACTION")
    cur.execute(MERGE_ALL)
    cur.execute("ROLLBACK")
    assert rows(cur) == [(1, 10, "a"), (2, 20, "b"), (3, 30, "c")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
@pytest.mark.parametrize(
    ("sql", "number", "text"),
    [
        (
            "MERGE dbo.tgt USING dbo.src ON tgt.id = src.id WHEN MATCHED THEN DELETE",
            10713,
            "A MERGE statement must be terminated by a semi-colon (;).",
        ),
        (
            "MERGE dbo.tgt AS t USING (SELECT 2 AS id UNION ALL SELECT 2) AS s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET note = 'twice';",
            8672,
            "The MERGE statement attempted to UPDATE or DELETE the same row more than once.",
        ),
        (
            "MERGE dbo.tgt AS t USING dbo.src AS s ON t.id = s.id + 1 "
            "WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id - 1, s.v);",
            2627,
            "Violation of PRIMARY KEY constraint",
        ),
    ],
)
def test_merge_refusals_change_nothing(server: ProcessServer, client: str, sql: str, number: int, text: str) -> None:
    """No semicolon (10713), a target row two source rows match (8672), an insert that breaks the key (2627):
    refused with SQL Server's error, the table as it was."""
    cur = fresh(server, client)
    refused(cur, client, sql, number, text)
    assert rows(cur) == [(1, 10, "a"), (2, 20, "b"), (3, 30, "c")]


@pytest.mark.parametrize("client", TWO_CLIENTS)
def test_merge_output_names_each_rows_action(server: ProcessServer, client: str) -> None:
    """OUTPUT $action (nvarchar(10)) with inserted.* and deleted.*: an image a row lacks is NULL, the count is
    the statement's."""
    cur = fresh(server, client)
    cur.execute(MERGE_ALL.rstrip(";") + " OUTPUT $action, inserted.id, deleted.id, deleted.v AS old_v, inserted.note;")
    got = sorted((tuple(r) for r in cur.fetchall()), key=lambda r: r[1] or r[2])
    assert got == [
        ("UPDATE", 1, 1, 10, "gone"),
        ("UPDATE", 2, 2, 20, "m"),
        ("DELETE", None, 3, 30, None),
        ("INSERT", 4, None, None, "i"),
    ]
    assert one_row(cur, "SELECT @@ROWCOUNT") == (4,)
    assert rows(cur) == [(1, 10, "gone"), (2, 200, "m"), (4, 400, "i")]
