"""Alias types (CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL], DROP TYPE) through real clients, as
SQL Server's "CREATE TYPE (Transact-SQL)", "DROP TYPE (Transact-SQL)" and "sys.types" pages describe them: a
schema-scoped name for a system type; sys.types lists it with is_user_defined 1, the base type's system_type_id, a
user_type_id from 257 and the size and nullability of its declaration; a column declared with it points at it in
sys.columns.user_type_id, takes its nullability unless it says NULL or NOT NULL, and holds values of the base type
(COLMETADATA sends the base type with the alias's id in UserType)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mssql_standin import ProcessServer, serve_process, wire
from mssql_standin.engine import Engine
from mssql_standin.results import ResultSet
from tests.standin.conftest import PASSWORD, USER, client_cursor, client_rows
from tests.standin.test_persist import engine_rows

INIT = """
create type dbo.Phone from varchar(20) not null;
create type Flag from bit null;
create type dbo.Amount from decimal(12, 3);
create table dbo.people (id int not null primary key, phone dbo.Phone, alt Phone null, active Flag,
                         paid dbo.Amount not null);
insert into dbo.people values (1, '+1 555 0100', null, 1, 12.345), (2, '', '0123456789abcdefghij', null, 0),
                              (3, 'x', null, 0, -999999999.999);
"""
CLIENTS = ["pymssql", "mssql_python"]
ALIAS_TYPES = """SELECT name, system_type_id, user_type_id, schema_id, max_length, precision, scale, collation_name,
       is_nullable, is_user_defined, is_assembly_type FROM sys.types WHERE user_type_id > 256 ORDER BY user_type_id"""

PEOPLE_COLUMNS = """SELECT c.name, c.system_type_id, c.user_type_id, TYPE_NAME(c.user_type_id), t.name, c.max_length,
       c.is_nullable FROM sys.columns c JOIN sys.types t ON t.user_type_id = c.user_type_id
WHERE c.object_id = OBJECT_ID('dbo.people') ORDER BY c.column_id"""


@pytest.fixture(scope="module")
def srv() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT) as s:
        yield s


def _error(client: str, srv: ProcessServer, sql: str) -> str:
    """The message of the error `sql` gets through `client`."""
    cur = client_cursor(client, srv)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each client has its own exception classes
        cur.execute(sql)
        cur.fetchall()
    return str(caught.value)


@pytest.mark.parametrize("client", CLIENTS)
def test_sys_types_lists_each_alias_as_declared(srv: ProcessServer, client: str) -> None:
    rows = client_rows(client, srv, ALIAS_TYPES)
    assert [tuple(bool(v) if i >= 8 else v for i, v in enumerate(r)) for r in rows] == [
        ("Phone", 167, 257, 1, 20, 0, 0, "SQL_Latin1_General_CP1_CI_AS", False, True, False),
        ("Flag", 104, 258, 1, 1, 1, 0, None, True, True, False),
        ("Amount", 106, 259, 1, 9, 12, 3, None, True, True, False),
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_columns_point_at_the_alias_and_take_its_nullability(srv: ProcessServer, client: str) -> None:
    rows = client_rows(client, srv, PEOPLE_COLUMNS)
    assert [(*r[:6], bool(r[6])) for r in rows] == [
        ("id", 56, 56, "int", "int", 4, False),
        ("phone", 167, 257, "Phone", "Phone", 20, False),  # the alias's NOT NULL
        ("alt", 167, 257, "Phone", "Phone", 20, True),  # the column's own NULL wins
        ("active", 104, 258, "Flag", "Flag", 1, True),
        ("paid", 106, 259, "Amount", "Amount", 9, False),
    ]
    assert client_rows(
        client,
        srv,
        "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE, DOMAIN_SCHEMA, DOMAIN_NAME "
        "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'people' ORDER BY ORDINAL_POSITION",
    ) == [
        ("id", "int", None, "NO", None, None),
        ("phone", "varchar", 20, "NO", "dbo", "Phone"),
        ("alt", "varchar", 20, "YES", "dbo", "Phone"),
        ("active", "bit", None, "YES", "dbo", "Flag"),
        ("paid", "decimal", None, "NO", "dbo", "Amount"),
    ]
    assert client_rows(client, srv, "SELECT TYPE_ID('dbo.Phone'), TYPE_ID('Flag'), TYPE_NAME(259)") == [
        (257, 258, "Amount")
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_values_behave_as_the_base_type(srv: ProcessServer, client: str) -> None:
    rows = client_rows(client, srv, "SELECT id, phone, alt, active, paid FROM dbo.people ORDER BY id")
    assert [(i, p, a, None if f is None else bool(f), str(m)) for i, p, a, f, m in rows] == [
        (1, "+1 555 0100", None, True, "12.345"),
        (2, "", "0123456789abcdefghij", None, "0.000"),
        (3, "x", None, False, "-999999999.999"),
    ]
    assert client_rows(client, srv, "SELECT COUNT(*) FROM dbo.people WHERE phone = '' AND paid = 0") == [(1,)]


def test_colmetadata_sends_the_base_type_with_the_alias_in_user_type() -> None:
    engine = Engine("A")
    s = engine.session()
    engine_rows(s, INIT)
    [result] = [r for r in s.execute("SELECT phone, active, id FROM dbo.people") if isinstance(r, ResultSet)]
    specs = result.columns
    assert [(c.type_name, c.length, c.user_type) for c in specs] == [
        ("varchar", 20, 257),
        ("bit", 1, 258),
        ("int", 4, 0),
    ]
    meta = wire.colmetadata(specs)
    assert struct.unpack_from("<I", meta, 3)[0] == 257  # token, column count, then the first column's UserType
    s.close()
    engine.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_errors_are_sql_servers(srv: ProcessServer, client: str) -> None:
    assert "The type 'dbo.Phone' already exists, or you do not have permission to create it." in _error(
        client, srv, "CREATE TYPE Phone FROM int"
    )
    assert (
        "Cannot drop type 'dbo.Phone' because it is being referenced by object 'people'. There may be other "
        "objects that reference this type." in _error(client, srv, "DROP TYPE dbo.Phone")
    )
    assert "Cannot find the type 'dbo.Nope', because it does not exist or you do not have permission." in _error(
        client, srv, "DROP TYPE dbo.Nope"
    )
    assert "Cannot find data type dbo.Nope." in _error(client, srv, "CREATE TABLE dbo.bad (a dbo.Nope)")
    assert "Cannot insert the value NULL into column 'phone'" in _error(
        client, srv, "INSERT INTO dbo.people (id, phone, paid) VALUES (9, NULL, 1)"
    )
    assert client_rows(client, srv, "SELECT COUNT(*) FROM dbo.people") == [(3,)]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_type_is_dropped_once_no_column_uses_it(srv: ProcessServer, client: str) -> None:
    cur = client_cursor(client, srv)
    cur.execute(f"CREATE TYPE dbo.Code_{client} FROM nchar(4) NOT NULL")
    cur.execute(f"CREATE TABLE dbo.codes_{client} (c Code_{client})")
    cur.execute(f"INSERT INTO dbo.codes_{client} VALUES (N'λab')")
    assert client_rows(client, srv, f"SELECT c FROM dbo.codes_{client}") == [("λab ",)]
    assert f"being referenced by object 'codes_{client}'" in _error(client, srv, f"DROP TYPE Code_{client}")
    cur.execute(f"DROP TABLE dbo.codes_{client}")
    cur.execute(f"DROP TYPE dbo.Code_{client}")
    cur.execute(f"DROP TYPE IF EXISTS dbo.Code_{client}")
    assert client_rows(client, srv, f"SELECT COUNT(*) FROM sys.types WHERE name = 'Code_{client}'") == [(0,)]


def _catalog_rows(s: Any) -> list[dict[str, Any]]:
    return engine_rows(s, "SELECT name, user_type_id, is_nullable FROM sys.types WHERE user_type_id > 256")


def test_a_rolled_back_type_is_gone_and_a_committed_one_survives_a_restart(tmp_path: Path) -> None:
    engine = Engine("P", data_dir=str(tmp_path))
    s = engine.session()
    engine_rows(s, "BEGIN TRAN")
    engine_rows(s, "CREATE TYPE dbo.Gone FROM int")
    assert _catalog_rows(s) == [{"name": "Gone", "user_type_id": 257, "is_nullable": True}]
    engine_rows(s, "ROLLBACK")
    engine_rows(s, "CREATE TYPE dbo.Phone FROM nvarchar(20) NOT NULL")
    engine_rows(s, "CREATE TABLE dbo.t (p Phone)")
    engine_rows(s, "INSERT INTO dbo.t VALUES (N'😀 x')")
    s.close()
    engine.close()

    reopened = Engine("P", data_dir=str(tmp_path))
    s = reopened.session()
    assert _catalog_rows(s) == [{"name": "Phone", "user_type_id": 257, "is_nullable": False}]
    assert engine_rows(s, "SELECT TYPE_NAME(user_type_id) AS n FROM sys.columns WHERE object_id = OBJECT_ID('t')") == [
        {"n": "Phone"}
    ]
    assert engine_rows(s, "SELECT p FROM dbo.t") == [{"p": "😀 x"}]
    s.close()
    reopened.close()


def test_clients_bulk_copy_into_columns_of_alias_types(srv: ProcessServer) -> None:
    """The clients read the table's COLMETADATA (UserType 257, 258) and send rows of the base types back."""
    client_cursor("pymssql", srv).execute("CREATE TABLE dbo.bulk_people (id int NOT NULL, phone Phone, active Flag)")
    rows = [(1, "+1 555 0100", True), (2, "0123456789abcdefghij", None)]
    cur = client_cursor("mssql_python", srv)
    cur.bulkcopy("dbo.bulk_people", rows)
    pymssql_cursor = client_cursor("pymssql", srv)
    pymssql_cursor.connection.bulk_copy("bulk_people", [(3, "x", False)])
    got = client_rows("pymssql", srv, "SELECT id, phone, active FROM dbo.bulk_people ORDER BY id")
    assert [(i, p, None if a is None else bool(a)) for i, p, a in got] == [*rows, (3, "x", False)]


@pytest.mark.parametrize("client", CLIENTS)
def test_an_alias_is_scoped_to_its_schema(srv: ProcessServer, client: str) -> None:
    """sales.Code is not dbo.Code; ALTER TABLE ADD takes an alias too; the schema cannot go while the type is in it."""
    schema = f"sales_{client}"
    cur = client_cursor(client, srv)
    cur.execute(f"CREATE SCHEMA {schema}")
    cur.execute(f"CREATE TYPE {schema}.Code FROM int NOT NULL")
    assert "Cannot find data type Code." in _error(client, srv, f"CREATE TABLE {schema}.bad (c Code)")
    cur.execute(f"CREATE TABLE {schema}.items (id int NOT NULL)")
    cur.execute(f"ALTER TABLE {schema}.items ADD code {schema}.Code NULL")
    cur.execute(f"INSERT INTO {schema}.items VALUES (1, 42), (2, NULL)")
    assert client_rows(client, srv, f"SELECT id, code FROM {schema}.items ORDER BY id") == [(1, 42), (2, None)]
    assert client_rows(
        client,
        srv,
        f"SELECT t.name, s.name, t.is_nullable FROM sys.types t JOIN sys.schemas s ON s.schema_id = t.schema_id "
        f"WHERE t.user_type_id = (SELECT user_type_id FROM sys.columns WHERE object_id = OBJECT_ID('{schema}.items') "
        "AND name = 'code')",
    ) == [("Code", schema, False)]
    cur.execute(f"DROP TABLE {schema}.items")
    assert f"Cannot drop schema '{schema}'" in _error(client, srv, f"DROP SCHEMA {schema}")
    cur.execute(f"DROP TYPE {schema}.Code")
    cur.execute(f"DROP SCHEMA {schema}")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_variable_declared_with_an_alias_holds_the_base_type(srv: ProcessServer, client: str) -> None:
    assert client_rows(
        client, srv, "DECLARE @p dbo.Phone = '+1 555 0100', @f Flag = 1; SELECT @p, @f, DATALENGTH(@p)"
    ) == [("+1 555 0100", True, 11)]
    assert "Cannot find data type dbo.Nope." in _error(client, srv, "DECLARE @n dbo.Nope")
