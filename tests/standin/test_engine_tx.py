"""Engine: transactions, identity, constraint errors and sessions sharing one database."""

from __future__ import annotations

import pytest

from mssql_standin import variant
from mssql_standin.engine import Engine, EngineSession
from mssql_standin.results import Done, EnvChange, Info
from mssql_standin.types import make_type

from .test_engine_types import err, rows, run


@pytest.fixture
def e() -> Engine:
    eng = Engine("testdb")
    s = eng.session()
    run(
        s,
        "CREATE TABLE dbo.t (id int IDENTITY(10, 5) NOT NULL CONSTRAINT PK_t PRIMARY KEY, name nvarchar(10) NOT NULL)",
    )
    s.close()
    return eng


@pytest.fixture
def s(e: Engine) -> EngineSession:
    """A session on `e` (a test that needs a second one opens it from `e`)."""
    return e.session()


def test_begin_commit_rollback_with_trancount(s: EngineSession) -> None:
    out = list(s.execute("BEGIN TRAN"))
    assert isinstance(out[0], EnvChange) and out[0].kind == "begin_tran" and len(out[0].new_value) == 8
    run(s, "BEGIN TRANSACTION")
    assert rows(s, "SELECT @@TRANCOUNT") == [(2,)]
    run(s, "INSERT INTO t (name) VALUES (N'a')")
    assert [r for r in s.execute("COMMIT") if isinstance(r, EnvChange)] == []  # inner commit only decrements
    assert s.trancount == 1
    out = list(s.execute("ROLLBACK"))
    assert out[0].kind == "rollback_tran" and s.trancount == 0  # type: ignore[union-attr]
    assert rows(s, "SELECT COUNT(*) FROM t") == [(0,)]
    run(s, "BEGIN TRAN; INSERT INTO t (name) VALUES (N'b'); COMMIT TRAN")
    assert rows(s, "SELECT id, name FROM t") == [(15, "b")]  # 10 was used by the rolled-back insert


def test_commit_or_rollback_without_begin(s: EngineSession) -> None:
    x = err(s, "COMMIT")
    assert (x.number, x.message) == (
        3902,
        "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
    )
    assert err(s, "ROLLBACK TRANSACTION").number == 3903


def test_tm_requests(e: Engine, s: EngineSession) -> None:
    d = s.begin()
    assert len(d) == 8 and s.trancount == 1
    run(s, "INSERT INTO t (name) VALUES (N'x')")
    s.rollback()
    assert rows(s, "SELECT COUNT(*) FROM t") == [(0,)]
    s.begin()
    run(s, "INSERT INTO t (name) VALUES (N'y')")
    s.commit()
    assert rows(e.session(), "SELECT name FROM t") == [("y",)]


def test_isolation_between_sessions(e: Engine) -> None:
    a, b = e.session(), e.session()
    run(a, "BEGIN TRAN; INSERT INTO t (name) VALUES (N'a')")
    assert rows(b, "SELECT COUNT(*) FROM t") == [(0,)]
    run(a, "COMMIT")
    assert rows(b, "SELECT COUNT(*) FROM t") == [(1,)]


def test_errors_detected_first_keep_the_transaction(s: EngineSession) -> None:
    run(s, "BEGIN TRAN; INSERT INTO t (name) VALUES (N'a')")
    assert err(s, "SELECT nope FROM t").number == 207
    assert err(s, "SELECT * FROM nope").number == 208
    assert err(s, "INSERT INTO t (name) VALUES (NULL)").number == 515
    assert err(s, "INSERT INTO t (id, name) VALUES (1, N'x')").number == 544
    assert s.trancount == 1
    run(s, "COMMIT")
    assert rows(s, "SELECT COUNT(*) FROM t") == [(1,)]


def test_ddl_rolls_back(e: Engine, s: EngineSession) -> None:
    run(s, "BEGIN TRAN; CREATE TABLE u (a int); INSERT INTO u VALUES (1)")
    assert rows(s, "SELECT COUNT(*) FROM sys.tables WHERE name = 'u'") == [(1,)]
    assert rows(e.session(), "SELECT COUNT(*) FROM sys.tables WHERE name = 'u'") == [(0,)]
    run(s, "ROLLBACK")
    assert err(s, "SELECT * FROM u").number == 208
    run(s, "DROP TABLE t")
    assert err(e.session(), "SELECT * FROM t").number == 208


def test_error_messages(s: EngineSession) -> None:
    x = err(s, "INSERT INTO t (name) VALUES (NULL)")
    assert x.message == (
        "Cannot insert the value NULL into column 'name', table 'testdb.dbo.t'; column does not "
        "allow nulls. INSERT fails."
    )
    assert (x.number, x.state, x.severity) == (515, 1, 16)
    run(
        s,
        "SET IDENTITY_INSERT dbo.t ON; INSERT INTO t (id, name) VALUES (7, N'x'); SET IDENTITY_INSERT dbo.t OFF",
    )
    x = err(s, "SET IDENTITY_INSERT dbo.t ON; INSERT INTO t (id, name) VALUES (7, N'dup')")
    assert x.message == (
        "Violation of PRIMARY KEY constraint 'PK_t'. Cannot insert duplicate key in object 'dbo.t'. "
        "The duplicate key value is (7)."
    )
    assert (x.number, x.severity) == (2627, 14)
    x = err(s, "SET IDENTITY_INSERT dbo.t OFF; INSERT INTO t (id, name) VALUES (8, N'x')")
    assert x.message == (
        "Cannot insert explicit value for identity column in table 't' when IDENTITY_INSERT is set to OFF."
    )
    assert err(s, "SELECT nope FROM t").message == "Invalid column name 'nope'."
    assert err(s, "SELECT * FROM dbo.nope").message == "Invalid object name 'dbo.nope'."
    assert err(s, "SELEC 1").number == 102


def test_unique_constraint_and_composite_keys(s: EngineSession) -> None:
    run(
        s,
        "CREATE TABLE c (a int NOT NULL, b nvarchar(5) NOT NULL, u varchar(5) NULL, CONSTRAINT PK_c PRIMARY "
        "KEY (a, b), "
        "CONSTRAINT UQ_c UNIQUE (u))",
    )
    run(s, "INSERT INTO c VALUES (1, N'x', 'p'), (1, N'y', NULL)")
    x = err(s, "INSERT INTO c VALUES (1, N'x', 'q')")
    assert x.message.endswith("The duplicate key value is (1, x).")
    x = err(s, "INSERT INTO c VALUES (2, N'x', NULL)")  # SQL Server allows one NULL in a UNIQUE column
    assert x.number == 2627 and "UNIQUE KEY constraint 'UQ_c'" in x.message
    x = err(s, "INSERT INTO c VALUES (3, N'a', 'z'), (4, N'a', 'z')")
    assert "(z)" in x.message
    assert rows(s, "SELECT COUNT(*) FROM c") == [(2,)]
    x = err(s, "INSERT INTO c VALUES (2, N'X', 'P')")  # case-insensitive collation: 'P' duplicates 'p'
    assert x.number == 2627


def test_identity_functions_and_reseed(s: EngineSession) -> None:
    assert rows(s, "SELECT IDENT_CURRENT('dbo.t'), SCOPE_IDENTITY()") == [(10, None)]
    run(s, "INSERT INTO t (name) VALUES (N'a'), (N'b')")
    assert rows(s, "SELECT IDENT_CURRENT('t'), SCOPE_IDENTITY(), @@IDENTITY") == [(15, 15, 15)]
    out = list(s.execute("DBCC CHECKIDENT ('dbo.t', RESEED, 100)"))
    assert any(isinstance(r, Info) and r.number == 2560 for r in out) and isinstance(out[-1], Done)
    run(s, "INSERT INTO t (name) VALUES (N'c')")
    assert rows(s, "SELECT MAX(id) FROM t") == [(105,)]
    run(s, "SET IDENTITY_INSERT t ON; INSERT INTO t (id, name) VALUES (500, N'd'); SET IDENTITY_INSERT t OFF")
    run(s, "INSERT INTO t (name) VALUES (N'e')")
    assert rows(s, "SELECT MAX(id), IDENT_CURRENT('t') FROM t") == [(505, 505)]
    last = rows(s, "SELECT last_value FROM sys.identity_columns")  # a sql_variant holding an int
    assert [variant.decode(v) for (v,) in last] == [(make_type("int", []), 505)]
    run(s, "TRUNCATE TABLE t")
    run(s, "INSERT INTO t (name) VALUES (N'f')")
    assert rows(s, "SELECT id FROM t") == [(10,)]
    run(s, "DELETE FROM t; DBCC CHECKIDENT ('t', RESEED, 0)")
    run(s, "INSERT INTO t (name) VALUES (N'g')")
    assert rows(s, "SELECT id FROM t") == [(5,)]


def test_use_database(s: EngineSession) -> None:
    out = list(s.execute("USE [testdb]"))
    assert out[0] == EnvChange("database", "testdb", "testdb")
    assert Info(5701, "Changed database context to 'testdb'.", 2, 0) in out
    assert err(s, "USE [nope]").number == 911


def test_defaults(s: EngineSession) -> None:
    run(
        s,
        "CREATE TABLE d (id int, a nvarchar(5) DEFAULT N'x', b int DEFAULT ((0)), c datetime DEFAULT "
        "getdate(), "
        "g uniqueidentifier DEFAULT newid())",
    )
    run(s, "INSERT INTO d (id) VALUES (1), (2)")
    run(s, "INSERT INTO d (id, a, b) VALUES (3, DEFAULT, NULL)")
    run(s, "INSERT INTO d DEFAULT VALUES")
    got = rows(s, "SELECT id, a, b, c, g FROM d ORDER BY id")
    assert [(r[0], r[1], r[2]) for r in got] == [(None, "x", 0), (1, "x", 0), (2, "x", 0), (3, "x", None)]
    assert all(r[3] is not None for r in got)
    assert len({r[4] for r in got}) == 4


def test_check_constraints_are_enforced(s: EngineSession) -> None:
    run(s, "CREATE TABLE ck (a int CONSTRAINT CK_a CHECK (a > 0), b nvarchar(5), CHECK (LEN(b) > 1))")
    run(s, "INSERT INTO ck VALUES (1, N'ab')")
    assert err(s, "INSERT INTO ck VALUES (0, N'ab')").number == 547
    assert err(s, "INSERT INTO ck VALUES (1, N'a')").number == 547
    q = "SELECT name, definition FROM sys.check_constraints WHERE name = 'CK_a'"
    assert rows(s, q) == [("CK_a", "([a]>(0))")]
    assert rows(s, "SELECT COUNT(*) FROM ck") == [(1,)]


def test_sessions_in_threads(e: Engine) -> None:
    import threading

    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            s = e.session()
            for i in range(20):
                run(s, f"INSERT INTO t (name) VALUES (N'w{k}_{i}')")
                assert rows(s, f"SELECT COUNT(*) FROM t WHERE name = N'w{k}_{i}'") == [(1,)]
            s.close()
        except BaseException as ex:  # noqa: BLE001 - collected and asserted below
            errors.append(ex)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    s = e.session()
    assert rows(s, "SELECT COUNT(*), COUNT(DISTINCT id) FROM t") == [(80, 80)]


def test_write_conflict_rolls_back_the_loser(e: Engine) -> None:
    a, b = e.session(), e.session()
    run(a, "INSERT INTO t (name) VALUES (N'x')")
    run(a, "BEGIN TRAN; UPDATE t SET name = N'a'")
    run(b, "BEGIN TRAN")
    x = err(b, "UPDATE t SET name = N'b'")
    assert x.number == 1205 and b.trancount == 0
    run(a, "COMMIT")
    assert rows(b, "SELECT name FROM t") == [("a",)]


def test_results_stream_and_an_abandoned_result_is_dropped(e: Engine) -> None:
    import numpy as np
    import pyarrow as pa

    from mssql_standin.results import ColumnSpec, ResultSet

    n = 500_000
    e.load_arrow(
        "big",
        [ColumnSpec("id", "int", nullable=False)],
        pa.table({"id": pa.array(np.arange(n, dtype=np.int32))}),
    )
    s = e.session()
    rs = next(r for r in s.execute("SELECT id FROM big ORDER BY id") if isinstance(r, ResultSet))
    first = next(iter(rs.batches))
    assert 0 < first.num_rows < n  # streamed in batches, not materialised
    assert rows(s, "SELECT COUNT(*) FROM big") == [(n,)]  # a new batch after ATTENTION-like abandonment
    out = list(s.execute("SELECT TOP 3 id FROM big ORDER BY id; SELECT COUNT(*) FROM big"))
    sets = [r for r in out if isinstance(r, ResultSet)]
    assert [b.num_rows for b in sets[0].batches] == [3]  # unread results of one batch are kept for the reader
    assert [b.column(0).to_pylist() for b in sets[1].batches] == [[n]]
