"""Engine: INFORMATION_SCHEMA, sys.* views and metadata functions answer as SQL Server does."""

from __future__ import annotations

import pytest

from mssql_standin import variant
from mssql_standin.engine import Engine, EngineSession
from mssql_standin.results import ResultSet
from mssql_standin.types import make_type

from .test_engine_types import err, result, rows, run

DDL = """
CREATE SCHEMA sales
CREATE TABLE dbo.Users (
    Id int IDENTITY(5, 2) NOT NULL,
    Name nvarchar(40) NOT NULL CONSTRAINT DF_Users_Name DEFAULT (N'x'),
    Created datetime NOT NULL DEFAULT getdate(),
    Score decimal(9, 3) NULL DEFAULT ((0)),
    Code char(4) NULL,
    Twice AS (Id * 2),
    Token uniqueidentifier NOT NULL DEFAULT newid(),
    Blob varbinary(max) NULL,
    CONSTRAINT PK_Users PRIMARY KEY CLUSTERED (Id ASC),
    CONSTRAINT UQ_Users_Name UNIQUE (Name)
)
CREATE TABLE sales.Orders (OrderId bigint NOT NULL, UserId int NOT NULL, Amount money, Note varchar(max))
ALTER TABLE sales.Orders ADD CONSTRAINT PK_Orders PRIMARY KEY NONCLUSTERED (OrderId DESC, UserId)
ALTER TABLE sales.Orders ADD CONSTRAINT FK_Orders_Users FOREIGN KEY (UserId) REFERENCES dbo.Users
    (Id) ON DELETE CASCADE
CREATE INDEX IX_Orders_User ON sales.Orders (UserId) INCLUDE (Amount) WHERE Amount IS NOT NULL
INSERT INTO dbo.Users (Name) VALUES (N'a'), (N'b')
INSERT INTO sales.Orders VALUES (1, 5, 1.5, 'x')
"""


@pytest.fixture
def s() -> EngineSession:
    sess = Engine("shop").session()
    run(sess, DDL)
    return sess


def test_information_schema(s: EngineSession) -> None:
    assert rows(
        s,
        "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME",
    ) == [("shop", "dbo", "Users", "BASE TABLE"), ("shop", "sales", "Orders", "BASE TABLE")]
    cols = rows(
        s,
        "SELECT COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, "
        "CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, "
        "DATETIME_PRECISION FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'Users' "
        "ORDER BY ORDINAL_POSITION",
    )
    assert cols[0] == ("Id", 1, None, "NO", "int", None, None, 10, 0, None)
    assert cols[1] == ("Name", 2, "(N'x')", "NO", "nvarchar", 40, 80, None, None, None)
    assert cols[2] == ("Created", 3, "(getdate())", "NO", "datetime", None, None, None, None, 3)
    assert cols[3] == ("Score", 4, "((0))", "YES", "decimal", None, None, 9, 3, None)
    assert cols[7] == ("Blob", 8, None, "YES", "varbinary", -1, -1, None, None, None)
    assert rows(
        s,
        "SELECT CONSTRAINT_NAME, CONSTRAINT_TYPE FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS ORDER BY CONSTRAINT_NAME",
    ) == [
        ("FK_Orders_Users", "FOREIGN KEY"),
        ("PK_Orders", "PRIMARY KEY"),
        ("PK_Users", "PRIMARY KEY"),
        ("UQ_Users_Name", "UNIQUE"),
    ]
    assert rows(
        s,
        "SELECT CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE "
        "WHERE TABLE_NAME = 'Orders' ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
    ) == [("FK_Orders_Users", "UserId", 1), ("PK_Orders", "OrderId", 1), ("PK_Orders", "UserId", 2)]
    assert rows(
        s,
        "SELECT CONSTRAINT_NAME, UNIQUE_CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE "
        "FROM INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS",
    ) == [("FK_Orders_Users", "PK_Users", "NO ACTION", "CASCADE")]


def test_sys_tables_columns_types(s: EngineSession) -> None:
    assert rows(s, "SELECT t.name, SCHEMA_NAME(t.schema_id) FROM sys.tables t ORDER BY t.name") == [
        ("Orders", "sales"),
        ("Users", "dbo"),
    ]
    got = rows(
        s,
        "SELECT c.name, TYPE_NAME(c.system_type_id), c.max_length, c.precision, c.scale, c.is_nullable, "
        "c.is_identity, c.is_computed FROM sys.columns c WHERE c.object_id = OBJECT_ID('dbo.Users') "
        "ORDER BY c.column_id",
    )
    assert got[0] == ("Id", "int", 4, 10, 0, False, True, False)
    assert got[1] == ("Name", "nvarchar", 80, 0, 0, False, False, False)
    assert got[3] == ("Score", "decimal", 5, 9, 3, True, False, False)
    assert got[5] == ("Twice", "int", 4, 10, 0, True, False, True)
    assert got[7] == ("Blob", "varbinary", -1, 0, 0, True, False, False)
    assert rows(
        s,
        "SELECT name, system_type_id, max_length FROM sys.types WHERE name IN ('int', 'nvarchar') ORDER BY name",
    ) == [("int", 56, 4), ("nvarchar", 231, 8000)]
    assert rows(s, "SELECT COUNT(*) FROM sys.all_columns WHERE object_id = OBJECT_ID('[sales].[Orders]')") == [(4,)]


def test_identity_computed_defaults(s: EngineSession) -> None:
    got = rows(s, "SELECT name, seed_value, increment_value, last_value FROM sys.identity_columns")
    assert [(r[0], *(variant.decode(v) for v in r[1:])) for r in got] == [
        ("Id", *((make_type("int", []), n) for n in (5, 2, 7)))  # sql_variant holding int, as in SQL Server
    ]
    assert rows(s, "SELECT name, definition FROM sys.computed_columns") == [("Twice", "([Id]*(2))")]
    assert rows(s, "SELECT name, definition FROM sys.default_constraints ORDER BY parent_column_id")[0] == (
        "DF_Users_Name",
        "(N'x')",
    )
    assert rows(s, "SELECT Id, Twice FROM dbo.Users ORDER BY Id") == [(5, 10), (7, 14)]


def test_keys_indexes_foreign_keys(s: EngineSession) -> None:
    assert rows(s, "SELECT name, type, unique_index_id FROM sys.key_constraints ORDER BY name") == [
        ("PK_Orders", "PK", 2),
        ("PK_Users", "PK", 1),
        ("UQ_Users_Name", "UQ", 2),
    ]
    idx = rows(
        s,
        "SELECT i.name, i.index_id, i.type, i.is_unique, i.is_primary_key, i.filter_definition "
        "FROM sys.indexes i WHERE i.object_id = OBJECT_ID('sales.Orders') ORDER BY i.index_id",
    )
    assert idx == [
        (None, 0, 0, False, False, None),
        ("PK_Orders", 2, 2, True, True, None),  # nonclustered on a heap: index_id 2
        ("IX_Orders_User", 3, 2, False, False, "([Amount] IS NOT NULL)"),
    ]
    ic = rows(
        s,
        "SELECT ic.index_id, COL_NAME(ic.object_id, ic.column_id), ic.key_ordinal, ic.is_descending_key, "
        "ic.is_included_column FROM sys.index_columns ic WHERE ic.object_id = OBJECT_ID('sales.Orders') "
        "ORDER BY ic.index_id, ic.index_column_id",
    )
    assert ic == [
        (2, "OrderId", 1, True, False),
        (2, "UserId", 2, False, False),
        (3, "UserId", 1, False, False),
        (3, "Amount", 0, False, True),
    ]
    assert rows(
        s,
        "SELECT fk.name, OBJECT_NAME(fk.referenced_object_id), fk.delete_referential_action_desc, "
        "COL_NAME(fkc.parent_object_id, fkc.parent_column_id) FROM sys.foreign_keys fk "
        "JOIN sys.foreign_key_columns fkc ON fkc.constraint_object_id = fk.object_id",
    ) == [("FK_Orders_Users", "Users", "CASCADE", "UserId")]
    assert rows(
        s,
        "SELECT p.index_id, p.rows FROM sys.partitions p WHERE p.object_id = OBJECT_ID('dbo.Users') "
        "ORDER BY p.index_id",
    ) == [(1, 2), (2, 2)]


def test_metadata_functions(s: EngineSession) -> None:
    (r,) = rows(
        s,
        "SELECT DB_NAME(), SCHEMA_NAME(), OBJECT_NAME(OBJECT_ID('dbo.Users')), OBJECT_ID('nope'), "
        "COLUMNPROPERTY(OBJECT_ID('dbo.Users'), 'Id', 'IsIdentity'), "
        "DATABASEPROPERTYEX(DB_NAME(), 'Collation'), SERVERPROPERTY('ProductMajorVersion'), "
        "IDENT_CURRENT('dbo.Users'), @@SPID",
    )
    assert r[:8] == ("shop", "dbo", "Users", None, 1, "SQL_Latin1_General_CP1_CI_AS", "16", 7)
    assert isinstance(r[8], int)
    (v,) = rows(s, "SELECT @@VERSION")
    assert v[0].startswith("Microsoft SQL Server 2022") and "stand-in" in v[0]


def test_fmtonly_returns_declared_metadata_without_rows(s: EngineSession) -> None:
    out = list(s.execute("SET FMTONLY ON select * from dbo.Users SET FMTONLY OFF"))
    (rs,) = [r for r in out if isinstance(r, ResultSet)]
    assert sum(b.num_rows for b in rs.batches) == 0
    spec = {c.name: c for c in rs.columns}
    assert (spec["Name"].type_name, spec["Name"].length, spec["Name"].nullable) == ("nvarchar", 80, False)
    assert (spec["Score"].precision, spec["Score"].scale) == (9, 3)
    assert spec["Id"].identity and spec["Twice"].computed
    assert rows(s, "SELECT COUNT(*) FROM dbo.Users") == [(2,)]


def test_pymssql_bulk_copy_query(s: EngineSession) -> None:
    got = rows(
        s,
        "SELECT column_id, TYPE_NAME(system_type_id) AS system_type_name, is_identity FROM sys.columns "
        "WHERE object_id = OBJECT_ID('dbo.Users')",
    )
    assert got[:2] == [(1, "int", True), (2, "nvarchar", False)]


def test_sqlbulkcopy_metadata_batch(s: EngineSession) -> None:
    batch = """SELECT @@TRANCOUNT;

DECLARE @Column_Names NVARCHAR(MAX) = NULL;
DECLARE @object_id INT = OBJECT_ID(N'[dbo].[Users]');
DECLARE @sql NVARCHAR(MAX);
SET @sql = N'SELECT @CN = COALESCE(@CN + N'', '', N'''') + QUOTENAME([name]) FROM sys.all_columns
    WHERE [object_id] = @ObjId';
IF EXISTS (SELECT TOP 1 * FROM sys.all_columns WHERE [object_id] = OBJECT_ID('sys.all_columns') AND
    [name] = 'graph_type')
    SET @sql = @sql + N' AND COALESCE([graph_type], 0) NOT IN (1, 3, 4, 6, 7)';
SET @sql = @sql + N' ORDER BY [column_id] ASC';
EXEC sp_executesql @sql, N'@CN NVARCHAR(MAX) OUTPUT, @ObjId INT', @CN = @Column_Names OUTPUT,
    @ObjId = @object_id;

SELECT @Column_Names = COALESCE(@Column_Names, '*');

SET FMTONLY ON;
EXEC(N'SELECT ' + @Column_Names + N' FROM [dbo].[Users]');
SET FMTONLY OFF;

EXEC sp_tablecollations_100 N'[dbo].[Users]';"""
    sets = [r for r in s.execute(batch) if isinstance(r, ResultSet)]
    assert len(sets) == 3
    assert [b.to_pylist() for b in sets[0].batches] == [[{"": 0}]]
    assert [c.name for c in sets[1].columns][:2] == ["Id", "Name"] and not list(sets[1].batches)
    coll = [r for b in sets[2].batches for r in b.to_pylist()]
    assert coll[1] == {
        "colid": 2,
        "name": "Name",
        "tds_collation": bytes.fromhex("0904D00034"),
        "collation": "SQL_Latin1_General_CP1_CI_AS",
    }
    assert coll[0]["collation"] is None
    assert [c.name for c in result(s, "EXEC ..sp_tablecollations_100 N'dbo.Users'").columns] == [
        "colid",
        "name",
        "tds_collation",
        "collation",
    ]


def test_catalog_queries_with_computed_names(s: EngineSession) -> None:
    """The shapes migration tools send: OBJECT_ID of a concatenated name, SCHEMA_NAME of a column, aliases as
    strings, default texts cut with SUBSTRING/LEN."""
    got = rows(
        s,
        "SET NOCOUNT ON; SELECT c.COLUMN_NAME AS 'col', "
        "COLUMNPROPERTY(OBJECT_ID(c.TABLE_SCHEMA + '.' + c.TABLE_NAME), c.COLUMN_NAME, 'IsIdentity') "
        "AS ident, CASE WHEN c.COLUMN_DEFAULT LIKE '((%' "
        "THEN SUBSTRING(c.COLUMN_DEFAULT, 3, LEN(c.COLUMN_DEFAULT) - 4) "
        "ELSE c.COLUMN_DEFAULT END AS dflt "
        "FROM INFORMATION_SCHEMA.COLUMNS c JOIN INFORMATION_SCHEMA.TABLES t ON t.TABLE_NAME = c.TABLE_NAME "
        "AND t.TABLE_SCHEMA = c.TABLE_SCHEMA WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_NAME = 'Users' "
        "ORDER BY c.ORDINAL_POSITION",
    )
    assert got[:4] == [
        ("Id", 1, None),
        ("Name", 0, "(N'x')"),
        ("Created", 0, "(getdate())"),
        ("Score", 0, "0"),
    ]
    assert rows(
        s,
        "SELECT SCHEMA_NAME(schema_id) AS s, o.name, i.name FROM sys.indexes i JOIN sys.objects o "
        "ON o.object_id = i.object_id WHERE SCHEMA_NAME(schema_id) NOT IN ('sys') AND i.is_primary_key = 1 "
        "ORDER BY 1",
    ) == [("dbo", "Users", "PK_Users"), ("sales", "Orders", "PK_Orders")]
    assert rows(s, "SELECT OBJECT_SCHEMA_NAME(OBJECT_ID('sales.Orders')), OBJECT_ID('Orders')") == [("sales", None)]


def test_alter_table_add_column_and_default(s: EngineSession) -> None:
    run(
        s,
        "ALTER TABLE sales.Orders ADD Flag bit NOT NULL CONSTRAINT DF_Flag DEFAULT ((1)), Memo nvarchar(20) NULL",
    )
    run(s, "ALTER TABLE sales.Orders ADD CONSTRAINT DF_Memo DEFAULT (N'm') FOR Memo")
    run(s, "INSERT INTO sales.Orders (OrderId, UserId) VALUES (2, 5)")
    assert rows(s, "SELECT OrderId, Flag, Memo FROM sales.Orders ORDER BY OrderId") == [
        (1, True, None),
        (2, True, "m"),
    ]
    assert rows(
        s,
        "SELECT name, definition FROM sys.default_constraints WHERE name IN ('DF_Flag', 'DF_Memo') ORDER BY name",
    ) == [("DF_Flag", "((1))"), ("DF_Memo", "(N'm')")]
    assert err(s, "ALTER TABLE sales.Orders ADD Needed int NOT NULL").number == 4901


def test_page_counts_follow_stored_bytes() -> None:
    """Planners size tables by sys.dm_db_partition_stats: an nvarchar(max) column's values must count (as
    UTF-16, long ones on LOB pages), however small its declared max_length looks."""
    sess = Engine("pages").session()
    run(
        sess,
        "CREATE TABLE dbo.Docs (Id int NOT NULL PRIMARY KEY, Body nvarchar(max) NULL)\n"
        "CREATE TABLE dbo.Narrow (Id int NOT NULL PRIMARY KEY, Name nvarchar(400) NULL)\n"
        "CREATE INDEX IX_Narrow_Name ON dbo.Narrow (Name)",
    )
    run(
        sess,
        "INSERT INTO dbo.Docs VALUES "
        + ", ".join(f"({i}, REPLICATE(CAST(N'λ' AS nvarchar(max)), 5000))" for i in range(1, 101)),
    )
    run(sess, "INSERT INTO dbo.Docs VALUES (101, N'short'), (102, NULL)")
    run(sess, "INSERT INTO dbo.Narrow VALUES " + ", ".join(f"({i}, N'ab')" for i in range(1, 1001)))
    stats = rows(
        sess,
        "SELECT OBJECT_NAME(object_id), index_id, row_count, in_row_used_page_count, lob_used_page_count, "
        "used_page_count FROM sys.dm_db_partition_stats ORDER BY 1, 2",
    )
    # Docs: 102 rows of 11 + 4 + (26 pointer | 10 + 2 | 2) bytes in-row; 100 × 10,000 bytes of LOB
    # Narrow: 1000 rows of 11 + 4 + 4 + 2 bytes; its index is sized by its declared columns (+ key, + locator)
    assert stats == [
        ("Docs", 1, 102, 1, 125, 126),
        ("Narrow", 1, 1000, 3, 0, 3),
        ("Narrow", 2, 1000, 102, 0, 102),
    ]
