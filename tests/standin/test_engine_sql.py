"""Engine: the T-SQL the replicator and its tests send (queries, DML, functions, parameters, batches)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from mssql_standin.engine import Engine, EngineSession
from mssql_standin.results import Done, Info, ResultSet, RowCount

from .test_engine_types import err, result, rows, run


@pytest.fixture
def s() -> EngineSession:
    sess = Engine("testdb").session()
    run(
        sess,
        "CREATE TABLE dbo.k (id int NOT NULL PRIMARY KEY, grp varchar(10), amount decimal(10,2), name nvarchar(50))",
    )
    values = ", ".join(f"({i}, 'g{i % 3}', {i}.50, N'n{i}')" for i in range(1, 101))
    run(sess, f"INSERT INTO k VALUES {values}")
    return sess


def test_where_order_top_offset(s: EngineSession) -> None:
    assert rows(s, "SELECT TOP 3 id FROM k WHERE id > 10 ORDER BY id DESC") == [(100,), (99,), (98,)]
    assert rows(s, "SELECT TOP (2) id FROM k ORDER BY id") == [(1,), (2,)]
    assert rows(s, "SELECT id FROM k ORDER BY id OFFSET 5 ROWS FETCH NEXT 3 ROWS ONLY") == [(6,), (7,), (8,)]
    assert rows(s, "SELECT id FROM k WHERE id BETWEEN 3 AND 5 AND grp IN ('g0', 'g2') ORDER BY id") == [
        (3,),
        (5,),
    ]
    assert rows(s, "SELECT id FROM k WHERE name LIKE N'n9%' ORDER BY id")[0] == (9,)


def test_ntile_and_row_number(s: EngineSession) -> None:
    got = rows(
        s,
        "SELECT k, MIN(id), MAX(id), COUNT(*) FROM (SELECT id, NTILE(4) OVER (ORDER BY id) AS k FROM k) x "
        "GROUP BY k ORDER BY k",
    )
    assert got == [(1, 1, 25, 25), (2, 26, 50, 25), (3, 51, 75, 25), (4, 76, 100, 25)]
    rs = result(s, "SELECT id, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY id DESC) AS rn FROM k WHERE id <= 4")
    assert [c.type_name for c in rs.columns] == ["int", "bigint"]
    assert sorted(rows(s, "SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM k WHERE id < 3")) == [
        (1, 1),
        (2, 2),
    ]


def test_aggregates_keep_sql_server_types(s: EngineSession) -> None:
    rs = result(s, "SELECT COUNT(*), COUNT_BIG(*), SUM(id), AVG(id), MIN(name), MAX(amount), SUM(amount) FROM k")
    assert [c.type_name for c in rs.columns][:5] == ["int", "bigint", "int", "int", "nvarchar"]
    assert rows(s, "SELECT COUNT(*), COUNT_BIG(*), SUM(id), AVG(id), MIN(name), MAX(amount) FROM k") == [
        (100, 100, 5050, 50, "n1", Decimal("100.50"))
    ]
    assert rows(s, "SELECT grp, COUNT(*) FROM k GROUP BY grp HAVING COUNT(*) > 33 ORDER BY grp") == [("g1", 34)]


def test_integer_division_and_divide_by_zero(s: EngineSession) -> None:
    assert rows(s, "SELECT 7 / 2, -7 / 2, 7 % 3, 7.0 / 2") == [(3, -3, 1, Decimal("3.5"))]
    assert err(s, "SELECT id / 0 FROM k").number == 8134


def test_strings(s: EngineSession) -> None:
    assert rows(
        s,
        "SELECT name + N'-' + grp, LEN('ab  '), DATALENGTH(N'ab😀'), ISNULL(NULL, 'x'), "
        "UPPER(grp), SUBSTRING(name, 1, 2), LEFT(grp, 1) FROM k WHERE id = 1",
    ) == [("n1-g1", 2, 8, "x", "G1", "n1", "g")]
    assert rows(s, "SELECT 'a' + NULL") == [(None,)]
    assert rows(s, "SELECT COUNT(*) FROM k WHERE grp = 'G1'") == [(34,)]  # case-insensitive collation
    assert rows(s, "SELECT CONCAT('a', NULL, 1)") == [("a1",)]


def test_cast_and_convert(s: EngineSession) -> None:
    assert rows(
        s,
        "SELECT CAST('12' AS int) + 1, CAST(2.7 AS int), CONVERT(varchar(10), 123), "
        "CAST('2020-01-02' AS date), CONVERT(decimal(5,1), 1.25)",
    ) == [(13, 2, "123", __import__("datetime").date(2020, 1, 2), Decimal("1.3"))]
    assert err(s, "SELECT CONVERT(int, 'x')").number == 245
    assert rows(s, "SELECT TRY_CONVERT(int, 'x')") == [(None,)]


def test_hashbytes_matches_sql_server_bytes(s: EngineSession) -> None:
    (r,) = rows(s, "SELECT HASHBYTES('MD5', name), HASHBYTES('SHA2_256', grp) FROM k WHERE id = 5")
    assert r[0] == hashlib.md5("n5".encode("utf-16-le")).digest()
    assert r[1] == hashlib.sha256(b"g2").digest()
    assert rows(s, "SELECT CHECKSUM_AGG(id) FROM k WHERE id IN (1, 2, 4)") == [(7,)]
    assert err(s, "SELECT CHECKSUM(id) FROM k").number == 40517


def test_bracketed_names(s: EngineSession) -> None:
    run(s, "CREATE SCHEMA [my schema]")
    run(s, 'CREATE TABLE [my schema].[Tab "x" ]]é] ([col one] int, [User] nvarchar(5), [Kéy😀] int)')
    run(s, "INSERT INTO [my schema].[Tab \"x\" ]]é] ([col one], [User], [Kéy😀]) VALUES (1, N'u', 2)")
    rs = result(s, 'SELECT [col one], [User] AS [the user], [Kéy😀] FROM [my schema].[Tab "x" ]]é] AS [t t]')
    assert [c.name for c in rs.columns] == ["col one", "the user", "Kéy😀"]
    assert rows(s, "SELECT t.[col one] FROM [my schema].[Tab \"x\" ]]é] t WHERE t.[User] = 'U'") == [(1,)]


def test_update_delete(s: EngineSession) -> None:
    out = list(s.execute("UPDATE k SET amount = amount * 2, name = N'x' + name WHERE id <= 10"))
    assert out == [RowCount(10, "UPDATE")]
    assert rows(s, "SELECT amount, name FROM k WHERE id = 10") == [(Decimal("21.00"), "xn10")]
    assert list(s.execute("DELETE FROM k WHERE grp = 'g0'")) == [RowCount(33, "DELETE")]
    assert rows(s, "SELECT COUNT(*) FROM k") == [(67,)]
    assert err(s, "UPDATE k SET grp = 'abcdefghijklmnop' WHERE id = 1").number == 2628
    assert err(s, "UPDATE k SET id = 2 WHERE id = 1").number == 2627
    assert rows(s, "SELECT COUNT(*) FROM k WHERE id IN (1, 2)") == [(2,)]


def test_parameters(s: EngineSession) -> None:
    got = rows(s, "SELECT id FROM k WHERE id >= @lo AND id < @hi ORDER BY id", {"@lo": (None, 5), "@hi": (None, 8)})
    assert got == [(5,), (6,), (7,)]
    assert err(s, "SELECT @nope").number == 137


def test_variables_and_batches(s: EngineSession) -> None:
    out = list(s.execute("DECLARE @n int = 3\nSET @n = @n + 1\nSELECT TOP (@n) id FROM k ORDER BY id\nPRINT 'hi'"))
    rs = [r for r in out if isinstance(r, ResultSet)]
    assert len(rs) == 1 and sum(b.num_rows for b in rs[0].batches) == 4
    assert Info(0, "hi", 1, 0) in out
    assert isinstance(out[0], Done)


def test_subqueries_ctes_unions_joins(s: EngineSession) -> None:
    run(s, "CREATE TABLE g (grp varchar(10), label nvarchar(10))")
    run(s, "INSERT INTO g VALUES ('g0', N'zero'), ('g1', N'one')")
    assert rows(s, "SELECT g.label, COUNT(*) FROM k JOIN g ON g.grp = k.grp GROUP BY g.label ORDER BY g.label") == [
        ("one", 34),
        ("zero", 33),
    ]
    assert rows(s, "SELECT COUNT(*) FROM k LEFT JOIN g ON g.grp = k.grp WHERE g.grp IS NULL") == [(33,)]
    assert rows(s, "WITH c AS (SELECT id FROM k WHERE id < 4) SELECT SUM(id) FROM c") == [(6,)]
    assert rows(s, "SELECT id FROM k WHERE id < 3 UNION ALL SELECT 99 ORDER BY 1") == [(1,), (2,), (99,)]
    assert rows(s, "SELECT COUNT(*) FROM k WHERE EXISTS (SELECT 1 FROM g WHERE g.grp = k.grp)") == [(67,)]
    assert rows(s, "SELECT (SELECT MAX(id) FROM k) - 1") == [(99,)]


def test_hints_and_set_options_are_accepted(s: EngineSession) -> None:
    sets = (
        "SET NOCOUNT ON; SET TEXTSIZE 2147483647; SET ANSI_NULLS ON; SET ANSI_WARNINGS ON; SET "
        "QUOTED_IDENTIFIER ON;"
        " SET DATEFORMAT ymd; SET LOCK_TIMEOUT 5000; SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SET "
        "ARITHABORT ON;"
        " SET CONCAT_NULL_YIELDS_NULL ON; SET ANSI_PADDING ON; SET XACT_ABORT OFF"
    )
    assert all(isinstance(r, Done) for r in s.execute(sets))
    assert rows(s, "SELECT COUNT(*) FROM k WITH (NOLOCK) WHERE id < 5") == [(4,)]
    assert rows(s, "SELECT COUNT(*) FROM dbo.k WITH (TABLOCK)") == [(100,)]
    assert rows(s, "SELECT COUNT(*) FROM testdb.dbo.k") == [(100,)]


def test_untranslatable_constructs_fail_clearly(s: EngineSession) -> None:
    for sql, number in [
        ("SELECT FOO(id) FROM k", 195),
        ("SELECT * FROM k WHERE", 102),
        ("WHILE 1 = 1 SELECT 1", 40517),
        ("IF 1 = 1 BEGIN SELECT 1 END", 40517),
        ("SELECT * INTO k2 FROM k", 40517),
    ]:
        assert err(s, sql).number == number, sql


def test_temporal_and_money_text_forms(s: EngineSession) -> None:
    run(s, "CREATE TABLE d (a datetime2(7), b datetime, c date, t time(7), o datetimeoffset(7), m money)")
    run(
        s,
        "INSERT INTO d VALUES ('2024-01-02 03:04:05.1234567', '2024-01-02 15:04:05.997', '2024-01-02', "
        "'23:59:59.9999999', '2024-01-02 03:04:05.1234567 -05:30', 2.5)",
    )
    assert rows(
        s,
        "SELECT CAST(a AS varchar(27)), CAST(b AS varchar(30)), CAST(c AS varchar(10)), "
        "CAST(t AS varchar(16)), CAST(o AS varchar(34)), CAST(CAST(o AS datetimeoffset(6)) AS varchar(34)), "
        "CAST(m AS varchar(10)) FROM d",
    ) == [
        (
            "2024-01-02 03:04:05.1234567",
            "Jan  2 2024  3:04PM",
            "2024-01-02",
            "23:59:59.9999999",
            "2024-01-02 03:04:05.1234567 -05:30",
            "2024-01-02 03:04:05.123457 -05:30",
            "2.50",
        )
    ]


def test_strings_compare_with_trailing_spaces_ignored(s: EngineSession) -> None:
    run(s, "CREATE TABLE c (a char(5), b nvarchar(10))")
    run(s, "INSERT INTO c VALUES ('x', N'y  '), ('z', N'a' + NCHAR(0) + N'b')")
    assert rows(s, "SELECT COUNT(*) FROM c WHERE a = 'x' AND b = N'y'") == [(1,)]
    assert rows(s, "SELECT COUNT(*) FROM c WHERE b = N'a' + NCHAR(0) + N'b'") == [(1,)]


def test_if_and_dynamic_sql(s: EngineSession) -> None:
    run(s, "IF OBJECT_ID(N'dbo.k') IS NULL CREATE TABLE x (a int) ELSE INSERT INTO k (id) VALUES (1000)")
    assert rows(s, "SELECT COUNT(*) FROM k") == [(101,)]
    run(s, "IF OBJECT_ID(N'dbo.nope') IS NULL EXEC(N'CREATE TABLE nope (a int)')")
    run(s, "IF EXISTS (SELECT 1 FROM k WHERE id = 1) EXEC sp_executesql N'INSERT INTO nope VALUES (7)'")
    assert rows(s, "SELECT a FROM nope") == [(7,)]


def test_views(s: EngineSession) -> None:
    run(s, "CREATE SCHEMA v")
    run(s, "CREATE VIEW v.k_small AS SELECT id, name AS label FROM dbo.k WHERE id < 3")
    assert rows(s, "SELECT label FROM v.k_small ORDER BY id") == [("n1",), ("n2",)]
    assert rows(s, "SELECT TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'k_small'") == [("VIEW",)]
    run(s, "CREATE VIEW v.k_load AS SELECT id, grp FROM dbo.k")
    run(s, "INSERT INTO v.k_load (id, grp) VALUES (500, 'gx')")
    assert rows(s, "SELECT grp FROM k WHERE id = 500") == [("gx",)]
    assert err(s, "INSERT INTO v.k_small (id) VALUES (501)").number == 4405
    assert err(s, "DROP TABLE v.k_load").number == 3705
    run(s, "DROP VIEW v.k_load; DROP VIEW IF EXISTS v.k_load")
    assert rows(s, "SELECT name FROM sys.views") == [("k_small",)]


def test_the_replicators_catalog_queries(s: EngineSession) -> None:
    from ray_replicator.engines.mssql import catalog as m

    for name in (
        "_TABLES_SQL",
        "_COLUMNS_SQL",
        "_INDEXES_SQL",
        "_INDEX_COLUMNS_SQL",
        "_FKS_SQL",
        "_FK_COLUMNS_SQL",
        "_ROWS_SQL",
        "_BYTES_SQL",
    ):
        got = rows(s, getattr(m, name))
        assert got or name in ("_FKS_SQL", "_FK_COLUMNS_SQL"), name
    assert rows(s, m._ROWS_SQL)[0][1] == 100


def test_like_is_case_insensitive_with_character_classes(s: EngineSession) -> None:
    run(s, "CREATE TABLE l (a nvarchar(10))")
    run(s, "INSERT INTO l VALUES (N'Abc'), (N'xbc'), (N'a_c'), (N'aXc')")
    assert rows(s, "SELECT a FROM l WHERE a LIKE N'A%' ORDER BY a") == [("a_c",), ("Abc",), ("aXc",)]
    assert rows(s, "SELECT a FROM l WHERE a LIKE N'[ax]bc' ORDER BY a") == [("Abc",), ("xbc",)]
    assert rows(s, "SELECT a FROM l WHERE a LIKE N'a[_]c'") == [("a_c",)]
    assert rows(s, "SELECT a FROM l WHERE a NOT LIKE N'[^a]%' ORDER BY a") == [("a_c",), ("Abc",), ("aXc",)]
    assert err(s, "SELECT a FROM l WHERE a LIKE a").number == 40517


def test_date_functions_keep_types_and_100ns(s: EngineSession) -> None:
    import datetime as dt

    from .conftest import ticks

    run(s, "CREATE TABLE d (a datetime, b datetime2(7), c date, o datetimeoffset(7), t time(7))")
    run(
        s,
        "INSERT INTO d VALUES ('2024-01-31 10:00:00.997', '2024-01-31 10:00:00.1234567', '2024-02-29', "
        "'2024-01-31 10:00:00 +02:00', '23:00:00')",
    )
    q = (
        "SELECT DATEADD(day, 1, a), DATEADD(month, 1, b), DATEADD(hour, 2, b), "
        "DATEDIFF(day, a, '2024-02-02'), "
        "YEAR(c), DATEPART(weekday, c), DATEPART(hour, o), CAST(o AS datetime2), DATEADD(hour, 2, t) FROM d"
    )
    assert rows(s, q) == [
        (
            dt.datetime(2024, 2, 1, 10, 0, 0, 997000),
            ticks(dt.datetime(2024, 2, 29, 10, 0, 0, 123456), 7),
            ticks(dt.datetime(2024, 1, 31, 12, 0, 0, 123456), 7),
            2,
            2024,
            5,  # Thursday, with SET DATEFIRST 7
            10,  # datetimeoffset parts are local time
            ticks(dt.datetime(2024, 1, 31, 10, 0)),
            36_000_000_000,  # time wraps past midnight
        )
    ]
    assert [c.type_name for c in result(s, q).columns] == [
        "datetime",
        "datetime2",
        "datetime2",
        "int",
        "int",
        "int",
        "int",
        "datetime2",
        "time",
    ]
    assert err(s, "SELECT DATEPART(week, c) FROM d").number == 40517


def test_sp_executesql_in_a_batch(s: EngineSession) -> None:
    run(s, "CREATE TABLE e (id int, a nvarchar(10))")
    run(
        s,
        "EXEC sp_executesql N'INSERT INTO e VALUES (@id, @a)', N'@id int, @a nvarchar(10)', @id = 5, @a = N'x'",
    )
    run(
        s,
        "DECLARE @v int = 7; EXEC sp_executesql N'INSERT INTO e VALUES (@id, @a)', "
        "N'@id int, @a nvarchar(10)', "
        "@id = @v, @a = NULL",
    )
    assert rows(s, "SELECT id, a FROM e ORDER BY id") == [(5, "x"), (7, None)]
    assert rows(s, "EXEC sp_executesql N'SELECT COUNT(*) FROM e WHERE id > @lo', N'@lo int', @lo = 6") == [(1,)]


def test_insert_values_fast_path_matches_the_general_path(s: EngineSession) -> None:
    run(
        s,
        "CREATE TABLE f (id int PRIMARY KEY, d datetime2(7), g uniqueidentifier, m money, b varbinary(4), "
        "n nvarchar(5))",
    )
    run(
        s,
        "INSERT INTO f VALUES (1, CAST('2024-01-02T03:04:05.1234567' AS datetime2(7)), "
        "'6F9619FF-8B86-D011-B42D-00C04FC964FF', -1.5, 0x0102, N'λ'), (2, NULL, NULL, 2, NULL, N'a' + N'b')",
    )
    got = rows(s, "SELECT id, CAST(d AS varchar(27)), CAST(g AS varchar(36)), m, b, n FROM f ORDER BY id")
    assert got == [
        (
            1,
            "2024-01-02 03:04:05.1234567",
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
            Decimal("-1.5000"),
            b"\x01\x02",
            "λ",
        ),
        (2, None, None, Decimal("2.0000"), None, "ab"),
    ]
    assert err(s, "INSERT INTO f VALUES (1, NULL, NULL, 0, NULL, N'dup')").number == 2627


def test_nocount_turns_row_counts_into_done(s: EngineSession) -> None:
    out = list(
        s.execute("SET NOCOUNT ON; UPDATE k SET grp = 'x' WHERE id = 1; SET NOCOUNT OFF; DELETE FROM k WHERE id = 1")
    )
    assert out == [Done("SET"), Done("UPDATE"), Done("SET"), RowCount(1, "DELETE")]
    assert s.nocount is False


def test_statements_after_the_first_in_a_batch(s: EngineSession) -> None:
    """Token positions count from the start of the batch: every statement kind works in any position."""
    out = list(
        s.execute(
            "SET NOCOUNT OFF\n  SELECT 1\n  CREATE TABLE b2 (id int IDENTITY(1,1) PRIMARY KEY, "
            "d datetime DEFAULT getdate(), n nvarchar(10) CHECK (LEN(n) > 0))\n"
            "  INSERT INTO b2 (n) VALUES (N'x' + N'y')\n"
            "  DECLARE @v nvarchar(10) = CONVERT(nvarchar(10), 12)\n"
            "  IF @v = N'12' INSERT INTO b2 (n) VALUES (@v)\n"
            "  SELECT n, LEN(n), CAST(id AS varchar(5)) FROM b2 ORDER BY id"
        )
    )
    last = [r for r in out if isinstance(r, ResultSet)][-1]
    got = [r for b in last.batches for r in zip(*[c.to_pylist() for c in b.columns], strict=True)]
    assert got == [("xy", 2, "1"), ("12", 2, "2")]


def test_what_sqlglot_would_drop_is_refused(s: EngineSession) -> None:
    for sql in (
        "SELECT * FROM k FOR JSON AUTO",
        "SELECT RAND(1)",
        "SELECT id FROM k WHERE grp = 'G1' COLLATE Latin1_General_CS_AS",
    ):
        assert err(s, sql).number == 40517, sql


def test_insert_target_table_hints(s: EngineSession) -> None:
    run(s, "CREATE TABLE h (id int IDENTITY(5,2), v int)")
    run(s, "INSERT INTO h WITH (TABLOCK) (v) VALUES (1)")
    run(s, "INSERT h WITH (TABLOCK, HOLDLOCK) (v) SELECT 2")
    run(s, "INSERT INTO dbo.h WITH (ROWLOCK) VALUES (3)")
    assert rows(s, "SELECT id, v FROM h ORDER BY id") == [(5, 1), (7, 2), (9, 3)]
    assert err(s, "INSERT INTO h WITH (NOLOCK) (v) VALUES (4)").number == 1065
    assert err(s, "INSERT INTO h WITH (BOGUS) (v) VALUES (4)").number == 321
