"""--data-dir: a stand-in stopped (or killed) and started again on the same directory serves the same tables, types,
catalog and values, read back through pymssql and python-tds, and continues identity and rowversion values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pymssql
import pytds
import pytest

from mssql_standin import persist
from mssql_standin.engine import Engine
from mssql_standin.results import ResultSet, SqlServerError
from mssql_standin.syscatalog import Table
from tests.helpers import assert_one_line_error, cli

from .conftest import PASSWORD, USER
from .standin_process import listening_port, running, standin, stop

__all__ = ["running"]  # the fixture

DB = "Kept"

SCHEMA = """
CREATE TABLE dbo.kinds (
  id int IDENTITY(100, 5) NOT NULL CONSTRAINT PK_kinds PRIMARY KEY,
  txt nvarchar(max) NULL,
  note nvarchar(20) COLLATE Latin1_General_CI_AS NULL,
  code varchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL CONSTRAINT DF_kinds_code DEFAULT ('x'),
  at datetime2(7) NULL,
  amount decimal(38, 10) NULL,
  total AS (amount * 2),
  stamp AS CONVERT(varchar(27), at, 121),
  cash money NULL,
  g uniqueidentifier NULL,
  raw varbinary(max) NULL,
  dto datetimeoffset(7) NULL,
  rv rowversion,
  CONSTRAINT CK_kinds_amount CHECK (amount >= 0)
)
GO
CREATE INDEX IX_kinds_note ON dbo.kinds (note DESC) INCLUDE (code)
GO
CREATE SCHEMA sales
GO
CREATE TABLE sales.down (n bigint IDENTITY(-1, -1) CONSTRAINT PK_down PRIMARY KEY,
  kind_id int NULL CONSTRAINT FK_down_kinds REFERENCES dbo.kinds (id))
GO
CREATE VIEW dbo.kinds_v AS SELECT id, txt FROM dbo.kinds
GO
INSERT INTO dbo.kinds (txt, note, at, amount, cash, g, raw, dto) VALUES
  (N'héllo 😀 世界', N'Ünïcode', '2020-05-17 12:34:56.1234567', 12345678901234567890.0123456789, 922337203685477.5807,
   '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0x00FF10, '2020-05-17 12:34:56.1234567 -04:30')
INSERT INTO dbo.kinds (txt, note, code, amount) VALUES (N'', NULL, 'y', 0)
INSERT INTO dbo.kinds (txt, amount) VALUES (REPLICATE(CAST(N'λ' AS nvarchar(max)), 9000), NULL)
INSERT INTO sales.down (kind_id) VALUES (100), (105)
"""

CATALOG_QUERIES = [
    "SELECT s.name, t.name, t.object_id, t.create_date FROM sys.tables t JOIN sys.schemas s "
    "ON s.schema_id = t.schema_id ORDER BY 1, 2",
    "SELECT object_id, column_id, name, system_type_id, max_length, precision, scale, collation_name, is_nullable, "
    "is_identity, is_computed FROM sys.columns ORDER BY object_id, column_id",
    "SELECT object_id, name, seed_value, increment_value FROM sys.identity_columns ORDER BY object_id",
    "SELECT object_id, name, index_id, type_desc, is_unique, is_primary_key FROM sys.indexes ORDER BY object_id, "
    "index_id",
    "SELECT name, parent_object_id, definition FROM sys.default_constraints ORDER BY name",
    "SELECT name, definition FROM sys.check_constraints ORDER BY name",
    "SELECT name, parent_object_id, referenced_object_id FROM sys.foreign_keys ORDER BY name",
    "SELECT name, definition FROM sys.computed_columns ORDER BY name",
    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, "
    "NUMERIC_SCALE, DATETIME_PRECISION, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS ORDER BY 1, 2, ORDINAL_POSITION",
    "SELECT name FROM sys.views",
]

DATA_QUERIES = [
    "SELECT id, txt, note, code, at, amount, total, cash, g, raw, dto, rv, stamp FROM dbo.kinds ORDER BY id",
    # the digits no Python client type carries: 100 ns and the offset, as SQL Server's own text
    "SELECT id, CONVERT(varchar(27), at, 121), CAST(dto AS varchar(34)), CONVERT(varchar(40), amount) "
    "FROM dbo.kinds ORDER BY id",
    "SELECT n, kind_id FROM sales.down ORDER BY n DESC",
    "SELECT id, datalength(txt) FROM dbo.kinds_v ORDER BY id",
]


def pymssql_rows(port: int, queries: list[str]) -> list[list[tuple[Any, ...]]]:
    conn = pymssql.connect(server="127.0.0.1", port=str(port), user=USER, password=PASSWORD, database=DB)
    try:
        cur = conn.cursor()
        out = []
        for q in queries:
            cur.execute(q)
            out.append(list(cur.fetchall()))
        return out
    finally:
        conn.close()


def pytds_rows(port: int, queries: list[str]) -> list[list[tuple[Any, ...]]]:
    conn = pytds.connect(dsn="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB)
    with conn, conn.cursor() as cur:
        out = []
        for q in queries:
            cur.execute(q)
            out.append([tuple(r) for r in cur.fetchall()])
        return out


def execute(port: int, sql: str) -> None:
    conn = pymssql.connect(
        server="127.0.0.1", port=str(port), user=USER, password=PASSWORD, database=DB, autocommit=True
    )
    try:
        cur = conn.cursor()
        for batch in sql.split("\nGO\n"):
            cur.execute(batch)
    finally:
        conn.close()


def test_a_restart_on_the_same_data_dir_keeps_tables_types_values_and_identity(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    data = tmp_path / "data"
    running.append(standin("--database", DB, "--data-dir", str(data)))
    port = listening_port(running[-1])
    execute(port, SCHEMA)
    catalog_before = pymssql_rows(port, CATALOG_QUERIES)
    data_before = pymssql_rows(port, DATA_QUERIES)
    pytds_before = pytds_rows(port, DATA_QUERIES)
    stop(running[-1])

    running.append(standin("--database", DB, "--data-dir", str(data)))
    port = listening_port(running[-1])
    assert pymssql_rows(port, CATALOG_QUERIES) == catalog_before
    data_after = pymssql_rows(port, DATA_QUERIES)
    assert data_after == data_before
    assert pytds_rows(port, DATA_QUERIES) == pytds_before
    kinds, text, down, view = data_after
    # total AS (amount * 2): decimal(38,10) times the literal 2, a decimal(1,0), is decimal(40,10) reduced to
    # decimal(38,8) (SQL Server's precision and scale rules), so the stored value is rounded to 8 digits
    assert kinds[0][:10] == (
        100, "héllo 😀 世界", "Ünïcode", "x", dt.datetime(2020, 5, 17, 12, 34, 56, 123456),
        Decimal("12345678901234567890.0123456789"), Decimal("24691357802469135780.02469136"),
        Decimal("922337203685477.5807"), uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF"), b"\x00\xff\x10",
    )  # fmt: skip
    assert kinds[1][1:4] == ("", None, "y")
    assert kinds[0][12] == "2020-05-17 12:34:56.1234567"  # a computed column over a macro of the reopened file
    assert text[0][1:] == (
        "2020-05-17 12:34:56.1234567", "2020-05-17 12:34:56.1234567 -04:30", "12345678901234567890.0123456789"
    )  # fmt: skip
    assert down == [(-1, 100), (-2, 105)]
    assert view == [(100, 22), (105, 0), (110, 18000)]

    # identity continues where it stood (up by 5 from 110; down by 1 from -2); rowversion past every old one
    execute(port, "INSERT INTO dbo.kinds (txt) VALUES (N'after')\nGO\nINSERT INTO sales.down (kind_id) VALUES (110)")
    (new_kind, new_down) = pymssql_rows(
        port, ["SELECT id, rv FROM dbo.kinds WHERE txt = N'after'", "SELECT min(n) FROM sales.down"]
    )
    assert new_kind[0][0] == 115 and new_down == [(-3,)]
    assert new_kind[0][1] > max(r[11] for r in kinds)


def test_a_killed_server_reopens_with_what_was_committed(tmp_path: Path, running: list[subprocess.Popen[str]]) -> None:
    data = tmp_path / "data"
    running.append(standin("--database", DB, "--data-dir", str(data)))
    port = listening_port(running[-1])
    execute(
        port,
        "CREATE TABLE dbo.t (id bigint IDENTITY(1, 1) PRIMARY KEY, s nvarchar(max), d datetime2(7))\nGO\n"
        "INSERT INTO dbo.t (s, d) VALUES (N'a', '2001-02-03 04:05:06.7000001'), (N'', NULL), (NULL, NULL)\nGO\n"
        "CREATE TABLE dbo.dropped (a int)\nGO\nDROP TABLE dbo.dropped",
    )
    open_tx = pymssql.connect(server="127.0.0.1", port=str(port), user=USER, password=PASSWORD, database=DB)
    cur = open_tx.cursor()  # pymssql opens a transaction: nothing below is committed when the server dies
    cur.execute("CREATE TABLE dbo.ghost (a int)")
    cur.execute("INSERT INTO dbo.t (s) VALUES (N'uncommitted')")
    cur.execute("ALTER TABLE dbo.t ADD extra int NULL")
    running[-1].send_signal(signal.SIGKILL)
    running[-1].wait(timeout=30)
    open_tx.close()

    running.append(standin("--database", DB, "--data-dir", str(data)))
    port = listening_port(running[-1])
    tables, columns, rows = pymssql_rows(
        port,
        [
            "SELECT name FROM sys.tables ORDER BY name",
            "SELECT c.name, type_name(c.system_type_id), c.max_length, c.scale, c.is_identity FROM sys.columns c "
            "WHERE c.object_id = object_id('dbo.t') ORDER BY c.column_id",
            "SELECT id, s, CONVERT(varchar(27), d, 121) FROM dbo.t ORDER BY id",
        ],
    )
    assert tables == [("t",)]
    assert columns == [("id", "bigint", 8, 0, True), ("s", "nvarchar", -1, 0, False), ("d", "datetime2", 8, 7, False)]
    assert rows == [(1, "a", "2001-02-03 04:05:06.7000001"), (2, "", None), (3, None, None)]
    execute(port, "INSERT INTO dbo.t (s) VALUES (N'next')")
    # the killed transaction's identity value 4 was handed out but never committed: SQL Server may skip such
    # values after a crash too; what must hold is that no committed value is handed out again
    assert pymssql_rows(port, ["SELECT id FROM dbo.t WHERE s = N'next'"])[0][0][0] >= 4


def test_a_data_dir_in_use_is_refused_in_one_line(tmp_path: Path, running: list[subprocess.Popen[str]]) -> None:
    data = tmp_path / "data"
    running.append(standin("--database", DB, "--data-dir", str(data)))
    listening_port(running[-1])
    second = standin("--database", DB, "--data-dir", str(data))
    out, err = second.communicate(timeout=60)
    assert_one_line_error(
        subprocess.CompletedProcess(second.args, second.returncode, out, err),
        2,
        f"cannot open --data-dir {data} (database {DB})",
    )


def test_without_a_data_dir_nothing_is_kept(tmp_path: Path, running: list[subprocess.Popen[str]]) -> None:
    running.append(standin("--database", DB))
    execute(listening_port(running[-1]), "CREATE TABLE dbo.t (a int)")
    stop(running[-1])
    running.append(standin("--database", DB))
    assert pymssql_rows(listening_port(running[-1]), ["SELECT name FROM sys.tables"]) == [[]]
    assert not list(tmp_path.iterdir())


def so_counts(port: int) -> list[tuple[str, int, int]]:
    """Each StackOverflow table's name, row count and largest Id, as SQL Server reports them."""
    from mssql_standin.preloaded import DATABASE
    from mssql_standin.preloaded import PASSWORD as SO_PASSWORD
    from mssql_standin.preloaded import USER as SO_USER

    conn = pymssql.connect(server="127.0.0.1", port=str(port), user=SO_USER, password=SO_PASSWORD, database=DATABASE)
    try:
        cur = conn.cursor()
        cur.execute("SELECT name FROM sys.tables ORDER BY name")
        out = []
        for (name,) in cur.fetchall():
            cur.execute(f"SELECT count(*), max(Id) FROM dbo.[{name}]")
            count, top = cur.fetchone()
            out.append((name, count, top))
        return out
    finally:
        conn.close()


def test_a_stackoverflow_load_reopens_without_generating_and_copies_to_postgres(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], fresh_db: str
) -> None:
    from mssql_standin.preloaded import preloaded_standin
    from ray_replicator.demo import stackoverflow_preload
    from ray_replicator.synth import stackoverflow as so

    data = tmp_path / "so"
    with preloaded_standin(stackoverflow_preload(0.001, 42), data_dir=data) as src:
        loaded = so_counts(src.port)
    assert "rows loaded" in capfd.readouterr().err
    assert [name for name, _, _ in loaded] == sorted((t.name for t in so.TABLES), key=str.lower)
    assert all(count > 0 for _, count, _ in loaded)

    with preloaded_standin(stackoverflow_preload(0.001, 42), data_dir=data) as src:
        assert "StackOverflow2010 scale 0.001 seed 42 reopened" in capfd.readouterr().err
        assert so_counts(src.port) == loaded
        done = cli("run", "--source", src.url(), "--target", fresh_db)
        assert done.returncode == 0, done.stderr[-3000:]
    with psycopg.connect(fresh_db) as conn:
        copied = [
            (name, *conn.execute(f'SELECT count(*), max("Id") FROM dbo."{name}"').fetchone())  # type: ignore[misc]
            for name, _, _ in loaded
        ]
    assert copied == loaded

    other = preloaded_standin(stackoverflow_preload(0.002, 42), data_dir=data)
    with pytest.raises(RuntimeError, match="stopped before serving"), other:  # another load is not mixed in
        pass
    assert "holds 'StackOverflow2010 scale 0.001 seed 42', not 'StackOverflow2010 scale 0.002" in capfd.readouterr().err


# -------------------------------------------------------------------------------- in-process: the engine itself


def engine_rows(session: Any, sql: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in session.execute(sql):
        if isinstance(r, ResultSet):
            for b in r.batches:
                out += b.to_pylist()
    return out


def test_failed_or_rolled_back_ddl_leaves_neither_data_nor_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine("E", data_dir=str(tmp_path))
    s = engine.session()
    engine_rows(s, "CREATE TABLE dbo.t (a int)")
    with pytest.raises(SqlServerError) as dup:
        engine_rows(s, "CREATE TABLE dbo.t (b int)")
    assert dup.value.number == 2714
    engine_rows(s, "BEGIN TRAN")
    engine_rows(s, "CREATE TABLE dbo.rolled (a int)")
    engine_rows(s, "ALTER TABLE dbo.t ADD b nvarchar(5)")
    engine_rows(s, "ROLLBACK")

    def refuse(obj: Any) -> Any:
        raise TypeError("cannot persist a Widget in the catalog")

    monkeypatch.setattr(persist, "to_plain", refuse)
    with pytest.raises(SqlServerError, match="could not save its catalog, nothing was committed: cannot persist a W"):
        engine_rows(s, "CREATE TABLE dbo.unsaved (a int)")
    monkeypatch.undo()
    other = engine.session()  # no stale private catalog is left behind in either session
    engine_rows(other, "CREATE TABLE dbo.u (a int)")
    assert engine_rows(s, "SELECT name FROM sys.tables ORDER BY name") == [{"name": "t"}, {"name": "u"}]
    s.close()
    other.close()
    engine.close()

    reopened = Engine("E", data_dir=str(tmp_path))
    s = reopened.session()
    assert engine_rows(s, "SELECT name FROM sys.tables ORDER BY name") == [{"name": "t"}, {"name": "u"}]
    assert engine_rows(s, "SELECT name FROM sys.columns WHERE object_id = object_id('dbo.t')") == [{"name": "a"}]
    tables = reopened.con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dbo' ORDER BY 1"
    ).fetchall()
    assert tables == [("t",), ("u",)]
    s.close()
    reopened.close()


def test_every_catalog_field_round_trips_through_the_codec() -> None:
    """Field by field, not through our reader: a field added to the catalog later is stored without a change here."""
    engine = Engine("C")
    s = engine.session()
    for batch in SCHEMA.split("\nGO\n"):
        engine_rows(s, batch)
    for t in engine.catalog.tables.values():
        plain = persist.to_plain(t)
        assert persist.from_plain(Table, json.loads(json.dumps(plain))) == t
        assert set(plain) == {f.name for f in dataclasses.fields(Table)}
    s.close()


CRASHING_LOAD = """
import dataclasses, sys, time
import pyarrow as pa
from mssql_standin.engine import Engine
from mssql_standin.preloaded import Preload, load_tables

@dataclasses.dataclass
class Col:
    name: str
    sql_type: str
    nullable: bool = True

@dataclasses.dataclass
class Tab:
    name: str
    columns: list
    pk_columns: list

def batches(name):
    for i in range(3):
        yield pa.record_batch([pa.array(range(i * 1000 + 1, i * 1000 + 1001)), pa.array(["é😀"] * 1000)],
                              names=["Id", "Txt"])
        if name == "Second" and i == 1:
            print("half way", flush=True)
            time.sleep(600)

engine = Engine("Crash", data_dir=sys.argv[1])
tables = [Tab(n, [Col("Id", "int", False), Col("Txt", "nvarchar(max)")], ["Id"]) for n in ("First", "Second")]
load_tables(engine, Preload(tables, batches, "crash test"))
"""


def test_a_load_killed_half_way_reopens_consistent_and_is_not_taken_for_finished(tmp_path: Path) -> None:
    from mssql_standin.preloaded import Preload, load_tables

    child = subprocess.Popen([sys.executable, "-c", CRASHING_LOAD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline() == "half way\n"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    engine = Engine("Crash", data_dir=str(tmp_path))
    s = engine.session()
    try:
        assert sorted(engine.catalog.tables) == [("dbo", "first"), ("dbo", "second")]
        in_duckdb = engine.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dbo' ORDER BY 1"
        ).fetchall()
        assert in_duckdb == [("First",), ("Second",)]
        assert engine_rows(s, "SELECT count(*) AS n, max(Id) AS top, max(Txt) AS t FROM dbo.First") == [
            {"n": 3000, "top": 3000, "t": "é😀"}
        ]
        assert engine_rows(s, "SELECT count(*) AS n FROM dbo.Second") == [{"n": 0}]  # its transaction never ended
        with pytest.raises(RuntimeError, match="holds an unfinished or hand-made load, not 'crash test'"):
            load_tables(engine, Preload([], lambda name: [], "crash test"))
        engine_rows(s, "INSERT INTO dbo.Second (Txt) VALUES (N'next')")  # identity rebuilt from the data
        assert engine_rows(s, "SELECT Id FROM dbo.Second") == [{"Id": 1}]
    finally:
        s.close()
        engine.close()


def test_a_database_name_that_is_no_file_name_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = standin("--database", "../escape", "--data-dir", str(tmp_path / "data"))
    out, err = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_line_error(done, 2, "cannot keep database '../escape' in --data-dir", "not a file name")
    assert not (tmp_path / "escape.duckdb").exists()


@dataclasses.dataclass
class _Extra:
    """A catalog object of a shape the codec must handle when someone adds such a field."""

    names: set[str]
    ids: frozenset[int]
    pair: tuple[str, int] | None
    when: dt.datetime
    nested: list[_Extra] = dataclasses.field(default_factory=list)


def test_the_codec_keeps_sets_tuples_datetimes_and_nesting_and_refuses_what_it_cannot_store() -> None:
    inner = _Extra({"b"}, frozenset(), None, dt.datetime(2024, 1, 2, 3, 4, 5))
    value = _Extra({"q", "p"}, frozenset({3, 1}), ("x", 2), dt.datetime(2026, 12, 7, 21, 0), [inner])
    assert persist.from_plain(_Extra, json.loads(json.dumps(persist.to_plain(value)))) == value
    with pytest.raises(TypeError, match="cannot persist a Decimal in the catalog"):
        persist.to_plain(_Extra({Decimal(1)}, frozenset(), None, dt.datetime(2024, 1, 1)))  # type: ignore[arg-type]


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "data-dir"])
def test_a_failed_ddl_statement_leaves_the_session_seeing_others_ddl(tmp_path: Path, on_disk: bool) -> None:
    engine = Engine("S", data_dir=str(tmp_path) if on_disk else None)
    mine, other = engine.session(), engine.session()
    try:
        engine_rows(mine, "CREATE TABLE dbo.t (a int)")
        with pytest.raises(SqlServerError, match="There is already an object named 't'"):
            engine_rows(mine, "CREATE TABLE dbo.t (a int)")
        engine_rows(other, "CREATE TABLE dbo.u (a int)")
        assert engine_rows(mine, "SELECT name FROM sys.tables ORDER BY name") == [{"name": "t"}, {"name": "u"}]
        assert engine_rows(mine, "SELECT count(*) AS n FROM dbo.u") == [{"n": 0}]
    finally:
        mine.close()
        other.close()
        engine.close()
