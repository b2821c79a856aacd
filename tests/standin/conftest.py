"""Fixtures for the stand-in's TDS front end: a stub engine (so the wire is tested without the SQL side),
a served stand-in per test module, and the real engine when it exists."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mssql_standin import Server, serve
from mssql_standin.results import (
    BulkLoadRequest,
    ColumnSpec,
    Done,
    EnvChange,
    Info,
    ResultSet,
    ReturnValue,
    RowCount,
    SqlServerError,
)
from mssql_standin.wire import arrow_type

USER = "sa"
PASSWORD = "Str0ng!Passw0rd"


def to_convention(spec: ColumnSpec, v: Any) -> Any:
    """A parameter value (plain Python) in the ResultSet's Arrow conventions, to echo it back."""
    if v is None or isinstance(v, (int, dict)) and spec.type_name in ("time", "datetime2", "datetimeoffset"):
        return v
    if spec.type_name == "uniqueidentifier":
        return v.bytes
    if spec.type_name == "time":
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 10_000_000 + v.microsecond * 10
    if spec.type_name == "datetime2":
        return ticks(v)
    if spec.type_name == "datetimeoffset":
        off = int(v.utcoffset().total_seconds() // 60)
        return {"utc": ticks(v.replace(tzinfo=None)) - off * 600_000_000, "offset_min": off}
    return v


class StubSession:
    """Answers a handful of statement shapes from in-memory Arrow tables; everything else is a no-op."""

    def __init__(self, engine: StubEngine):
        self.engine = engine
        self.database = engine.database
        self.trancount = 0
        self.bulk_batches: list[tuple[BulkLoadRequest, pa.RecordBatch]] = engine.bulk_batches

    def _table(self, name: str) -> tuple[list[ColumnSpec], pa.Table]:
        key = name.strip("[]").split(".")[-1].strip("[]").lower()
        if key not in self.engine.tables:
            raise SqlServerError(208, f"Invalid object name '{name}'.", state=1, severity=16)
        return self.engine.tables[key]

    def execute(self, sql: str, params: dict[str, tuple[ColumnSpec | None, object]] | None = None) -> Iterator[Any]:
        self.engine.log.append((sql, params))
        text = sql.strip()
        low = text.lower()
        if m := re.fullmatch(r"set fmtonly on\s+select \* from (\S+)\s+set fmtonly off", low):
            cols, _ = self._table(m.group(1))
            yield ResultSet(cols, iter([]))
            return
        if m := re.search(r"from sys.columns where object_id = object_id\(n'([^']+)'\)", low):
            cols, _ = self._table(m.group(1))
            specs = [ColumnSpec("column_id", "int"), ColumnSpec("system_type_name", "nvarchar", length=256),
                     ColumnSpec("is_identity", "bit")]  # fmt: skip
            batch = pa.record_batch(
                [
                    pa.array(range(1, len(cols) + 1), pa.int32()),
                    [c.type_name for c in cols],
                    [c.identity for c in cols],
                ],
                names=[s.name for s in specs],
            )
            yield ResultSet(specs, iter([batch]))
            return
        if m := re.match(r"insert bulk (\S+)", low):
            cols, _ = self._table(m.group(1))
            yield BulkLoadRequest(m.group(1), cols)
            return
        if m := re.fullmatch(r"select \* from (\w+)", low):
            cols, table = self._table(m.group(1))
            yield ResultSet(cols, iter(table.to_batches(max_chunksize=50_000)))
            return
        if m := re.fullmatch(r"select (@\w+(?:\s*,\s*@\w+)*)", text, flags=re.I):
            names = [n.strip() for n in m.group(1).split(",")]
            specs, arrays = [], []
            for n in names:
                spec, value = (params or {})[n]
                assert spec is not None
                spec = ColumnSpec(
                    n[1:], spec.type_name, spec.length, spec.precision, spec.scale, collation=spec.collation
                )
                specs.append(spec)
                arrays.append(pa.array([to_convention(spec, value)], type=arrow_type(spec)))
            yield ResultSet(specs, iter([pa.record_batch(arrays, names=[s.name for s in specs])]))
            return
        if m := re.fullmatch(r"raise (\d+) (\d+) (\d+) (.*)", text, flags=re.S):
            yield Info(0, "before the error")
            raise SqlServerError(int(m.group(1)), m.group(4), int(m.group(2)), int(m.group(3)))
        if low == "crash":
            raise RuntimeError("stub engine bug")
        if m := re.fullmatch(r"set @(\w+) = (\d+)", low):
            yield ReturnValue("@" + m.group(1), int(m.group(2)), ColumnSpec(m.group(1), "int"))
            yield Done()
            return
        if low.startswith("begin tran"):
            self.trancount += 1
            yield EnvChange("begin_tran", self.begin_descriptor())
            yield Done()
            return
        if low in ("commit", "commit tran", "rollback", "rollback tran"):
            self.trancount = 0
            yield EnvChange("commit_tran" if low.startswith("commit") else "rollback_tran")
            yield Done()
            return
        if m := re.fullmatch(r"use \[?([^\]]+)\]?", low):
            if m.group(1) not in ("master", self.engine.database.lower(), "tempdb"):
                raise SqlServerError(911, f"Database '{m.group(1)}' does not exist. Make sure that the name is "
                                     "entered correctly.", 1, 16)  # fmt: skip
            old, self.database = self.database, m.group(1)
            yield EnvChange("database", self.database, old)
            yield Info(5701, f"Changed database context to '{self.database}'.", 2)
            yield Done()
            return
        if m := re.fullmatch(r"delete from (\w+)", low):
            self.engine.tables.pop(m.group(1), None)
            yield RowCount(3, "delete")
            return
        yield Done()

    def begin_descriptor(self) -> bytes:
        self.engine.tran_counter += 1
        return self.engine.tran_counter.to_bytes(8, "little")

    def bulk_insert(self, request: BulkLoadRequest, batch: pa.RecordBatch) -> int:
        self.bulk_batches.append((request, batch))
        if self.engine.dump_dir is not None:
            path = os.path.join(self.engine.dump_dir, f"bulk{len(self.bulk_batches)}.arrow")
            with pa.OSFile(path + ".tmp", "wb") as f, pa.ipc.new_file(f, batch.schema) as w:
                w.write_batch(batch)
            os.rename(path + ".tmp", path)
        return batch.num_rows

    def begin(self) -> bytes:
        self.trancount += 1
        return self.begin_descriptor()

    def commit(self) -> None:
        self.engine.tm_log.append("commit")
        self.trancount = 0

    def rollback(self) -> None:
        self.engine.tm_log.append("rollback")
        self.trancount = 0

    def close(self) -> None:
        self.engine.closed_sessions += 1


class StubEngine:
    def __init__(self, database: str = "master"):
        self.database = database
        self.tables: dict[str, tuple[list[ColumnSpec], pa.Table]] = {}
        self.log: list[tuple[str, Any]] = []
        self.tm_log: list[str] = []
        self.bulk_batches: list[tuple[BulkLoadRequest, pa.RecordBatch]] = []
        self.tran_counter = 0
        self.closed_sessions = 0
        self.dump_dir: str | None = None

    def session(self) -> StubSession:
        return StubSession(self)

    def add_table(self, name: str, columns: list[ColumnSpec], table: pa.Table) -> None:
        self.tables[name.lower()] = (columns, table)


@pytest.fixture
def stub_engine() -> StubEngine:
    return StubEngine("standin")


@pytest.fixture(params=["off"])
def stub_server(request: pytest.FixtureRequest, stub_engine: StubEngine) -> Iterator[Server]:
    with serve("standin", user=USER, password=PASSWORD, encryption=request.param, engine=stub_engine) as srv:
        yield srv


# ------------------------------------------------------------------------------------------------------
# A table holding every type at its minimum, its maximum, NULL, and awkward middles ('' , emoji, 100 ns)
# ------------------------------------------------------------------------------------------------------

TICKS_PER_DAY = 864_000_000_000
D0001 = dt.date(1, 1, 1)


def ticks(d: dt.datetime, extra_100ns: int = 0) -> int:
    """100 ns units since 0001-01-01 of a naive datetime (plus sub-microsecond units)."""
    delta = d - dt.datetime(1, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10 + extra_100ns


GUID = uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")
EMOJI_TEXT = "héllo 😀 世界 λ"

TYPED_COLUMNS = [
    ColumnSpec("id", "int", nullable=False),
    ColumnSpec("c_int", "int"),
    ColumnSpec("c_bigint", "bigint"),
    ColumnSpec("c_smallint", "smallint"),
    ColumnSpec("c_tinyint", "tinyint"),
    ColumnSpec("c_bit", "bit"),
    ColumnSpec("c_float", "float"),
    ColumnSpec("c_real", "real"),
    ColumnSpec("c_dec", "decimal", precision=38, scale=10),
    ColumnSpec("c_num", "numeric", precision=9, scale=2),
    ColumnSpec("c_money", "money", precision=19, scale=4),
    ColumnSpec("c_smallmoney", "smallmoney", precision=10, scale=4),
    ColumnSpec("c_char", "char", length=10),
    ColumnSpec("c_varchar", "varchar", length=50),
    ColumnSpec("c_nchar", "nchar", length=20),
    ColumnSpec("c_nvarchar", "nvarchar", length=100),
    ColumnSpec("c_nvmax", "nvarchar", length=-1),
    ColumnSpec("c_vmax", "varchar", length=-1),
    ColumnSpec("c_binary", "binary", length=4),
    ColumnSpec("c_varbinary", "varbinary", length=50),
    ColumnSpec("c_vbmax", "varbinary", length=-1),
    ColumnSpec("c_date", "date"),
    ColumnSpec("c_time", "time", scale=7),
    ColumnSpec("c_datetime", "datetime"),
    ColumnSpec("c_sdt", "smalldatetime"),
    ColumnSpec("c_dt2", "datetime2", scale=7),
    ColumnSpec("c_dto", "datetimeoffset", scale=7),
    ColumnSpec("c_guid", "uniqueidentifier"),
    ColumnSpec("c_rv", "timestamp", length=8),
    ColumnSpec("c_xml", "xml", length=-1),
]

D = Decimal
# One tuple per row, in TYPED_COLUMNS order, in the ResultSet's Python conventions.
TYPED_ROWS: list[tuple[Any, ...]] = [
    (1, -2147483648, -9223372036854775808, -32768, 0, False, -1.7976931348623157e308, -3.4028234663852886e38,
     D("-9999999999999999999999999999.9999999999"), D("-9999999.99"), D("-922337203685477.5808"),
     D("-214748.3648"), "a         ", "", "", "", "", "", b"\x00\x00\x00\x00", b"", b"",
     D0001, 0, dt.datetime(1753, 1, 1), dt.datetime(1900, 1, 1), 0, {"utc": 0, "offset_min": 840},
     bytes(16), bytes(8), "<a/>"),
    (2, 2147483647, 9223372036854775807, 32767, 255, True, 1.7976931348623157e308, 3.4028234663852886e38,
     D("9999999999999999999999999999.9999999999"), D("9999999.99"), D("922337203685477.5807"),
     D("214748.3647"), "ÿé€Ž      ", "café € Œ", "λ😀", EMOJI_TEXT, EMOJI_TEXT * 3, "abc\x00def",
     b"\xff\xff\xff\xff", b"\x00\xff", b"\x01" * 9000,
     dt.date(9999, 12, 31), TICKS_PER_DAY - 1, dt.datetime(9999, 12, 31, 23, 59, 59, 997000),
     dt.datetime(2079, 6, 6, 23, 59), ticks(dt.datetime(9999, 12, 31, 23, 59, 59, 999999), 9),
     {"utc": ticks(dt.datetime(9999, 12, 31, 9, 59, 59, 999999), 9), "offset_min": 840},
     b"\xff" * 16, b"\x00\x00\x00\x00\x00\x00\x07\xd1", '<r a="1">λ😀</r>'),
    (3,) + (None,) * (len(TYPED_COLUMNS) - 1),
    (4, 0, -1, 1, 128, True, 0.1, 0.5, D("0.0000000001"), D("-0.01"), D("0.0001"), D("-0.0001"),
     "          ", " lead", "  ", " ", "", "x", b"\x00\x01\x02\x03", b"\x00", b"",
     dt.date(2020, 2, 29), ticks(dt.datetime(1, 1, 1, 12, 34, 56, 123456), 7),
     dt.datetime(2020, 5, 17, 12, 34, 56, 787000), dt.datetime(2020, 5, 17, 12, 35),
     ticks(dt.datetime(2020, 5, 17, 12, 34, 56, 123456), 7),
     {"utc": ticks(dt.datetime(2020, 5, 17, 17, 4, 56, 123456), 7), "offset_min": -270},
     GUID.bytes, b"\x00\x00\x00\x00\x00\x00\x00\x01", ""),
]  # fmt: skip


def typed_table() -> pa.Table:
    arrays = [pa.array([row[i] for row in TYPED_ROWS], type=arrow_type(c)) for i, c in enumerate(TYPED_COLUMNS)]
    return pa.table(arrays, names=[c.name for c in TYPED_COLUMNS])


def dt2_python(t: int | None) -> dt.datetime | None:
    """A datetime2 tick count as a client's datetime (microseconds, truncated)."""
    if t is None:
        return None
    return dt.datetime(1, 1, 1) + dt.timedelta(microseconds=t // 10)


def time_python(t: int | None) -> dt.time | None:
    if t is None:
        return None
    us = t // 10
    return dt.time(us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60, us % 1_000_000)


def dto_python(v: dict[str, int] | None) -> dt.datetime | None:
    if v is None:
        return None
    tz = dt.timezone(dt.timedelta(minutes=v["offset_min"]))
    local = dt2_python(v["utc"] + v["offset_min"] * 600_000_000)
    assert local is not None
    return local.replace(tzinfo=tz)


@pytest.fixture
def typed_server(stub_engine: StubEngine) -> Iterator[Server]:
    stub_engine.add_table("typed", TYPED_COLUMNS, typed_table())
    with serve("standin", user=USER, password=PASSWORD, encryption="off", engine=stub_engine) as srv:
        yield srv


def expected_python(spec: ColumnSpec, value: Any) -> Any:
    """What a Python client should return for a value in the ResultSet conventions (µs clocks truncate)."""
    if value is None:
        return None
    t = spec.type_name
    if t == "time":
        return time_python(value)
    if t == "datetime2":
        return dt2_python(value)
    if t == "datetimeoffset":
        return dto_python(value)
    if t == "uniqueidentifier":
        return uuid.UUID(bytes=value)
    return value


def assert_row_equal(columns: list[ColumnSpec], got: tuple[Any, ...] | list[Any], want: tuple[Any, ...]) -> None:
    """Compare a fetched row with TYPED_ROWS exactly (real compared at float32 precision, offsets compared)."""
    assert len(got) == len(want)
    for spec, g, w in zip(columns, got, want, strict=True):
        e = expected_python(spec, w)
        if spec.type_name == "real" and e is not None:
            assert g == pytest.approx(e, rel=1e-7), spec.name
        elif spec.type_name == "datetimeoffset" and e is not None:
            assert (g.replace(tzinfo=None), g.utcoffset()) == (e.replace(tzinfo=None), e.utcoffset()), spec.name
        else:
            assert g == e, spec.name
            assert type(g) is type(e), spec.name


def assert_typed_table_read(cur: Any) -> None:
    """Select the typed table through a client's DB-API cursor: its column names, and every row equal to TYPED_ROWS."""
    cur.execute("select * from typed")
    rows = cur.fetchall()
    assert [d[0] for d in cur.description] == [c.name for c in TYPED_COLUMNS]
    for got, want in zip(rows, TYPED_ROWS, strict=True):
        assert_row_equal(TYPED_COLUMNS, tuple(got), want)


def client_cursor(client: str, srv: Any) -> Any:
    """An autocommit DB-API cursor of `client` ("pymssql", "pytds" or "mssql_python") on the stand-in at
    srv.host:srv.port, database standin, as USER."""
    if client == "pymssql":
        import pymssql

        conn = pymssql.connect(
            server=srv.host, port=srv.port, user=USER, password=PASSWORD, database="standin", autocommit=True
        )
    elif client == "pytds":
        import pytds

        conn = pytds.connect(srv.host, "standin", USER, PASSWORD, port=srv.port, autocommit=True)
    else:
        import mssql_python

        conn = mssql_python.connect(
            f"Server=tcp:{srv.host},{srv.port};Database=standin;UID={USER};PWD={PASSWORD};Encrypt=no", autocommit=True
        )
    return conn.cursor()


def client_rows(client: str, srv: Any, sql: str) -> list[tuple[Any, ...]]:
    """The rows of `sql` as `client` reads them (client_cursor), each as a tuple."""
    cur = client_cursor(client, srv)
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def assert_rollback_and_commit_reach_engine(conn: Any, engine: StubEngine) -> None:
    """A client connection with autocommit off: its rollback() and commit() arrive as transaction-manager calls."""
    cur = conn.cursor()
    cur.execute("set nocount on")
    conn.rollback()
    cur.execute("set nocount on")
    conn.commit()
    conn.close()
    assert engine.tm_log[:2] == ["rollback", "commit"]


def freebcp_in(table: str, rows_file: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load a tab-separated file into a stand-in table with Debian's freebcp (character mode), as USER;
    `env` names the freetds.conf that says where the [standin] server is."""
    return subprocess.run(
        ["freebcp", table, "in", str(rows_file), "-S", "standin", "-U", USER, "-P", PASSWORD, "-D", "standin", "-c"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


# ------------------------------------------------------------------------------------------------------
# A stub-engine server in another process, for clients that hold the GIL while they wait on the socket
# (pymssql's bulk_copy does): an in-process server thread could never answer them. (With the real engine,
# mssql_standin.serve_process does the same.)
# ------------------------------------------------------------------------------------------------------


def _serve_in_child(conn: Any, tables: dict[str, tuple[list[ColumnSpec], pa.Table]], dump_dir: str, kw: dict) -> None:
    engine = StubEngine("standin")
    engine.tables.update(tables)
    engine.dump_dir = dump_dir
    with serve("standin", engine=engine, **kw) as srv:
        conn.send((srv.host, srv.port))
        conn.recv()


class ChildServer:
    """host/port of a stub server in a child process; bulk loads it received, read back from Arrow files."""

    def __init__(self, host: str, port: int, dump_dir: Path):
        self.host, self.port, self.dump_dir = host, port, dump_dir

    def bulk_batches(self) -> list[pa.RecordBatch]:
        files = sorted(self.dump_dir.glob("bulk*.arrow"), key=lambda p: int(p.stem[4:]))
        return [pa.ipc.open_file(str(p)).get_batch(0) for p in files]


@pytest.fixture
def child_server(tmp_path: Path) -> Iterator[Any]:
    """Call with tables -> a started ChildServer; stopped at teardown."""
    ctx = multiprocessing.get_context("spawn")
    started: list[tuple[Any, Any]] = []

    def start(tables: dict[str, tuple[list[ColumnSpec], pa.Table]], **kw: Any) -> ChildServer:
        kw.setdefault("user", USER)
        kw.setdefault("password", PASSWORD)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve_in_child, args=(child, tables, str(tmp_path), kw), daemon=True)
        proc.start()
        started.append((proc, parent))
        if not parent.poll(60):
            raise RuntimeError("stand-in child did not start")
        host, port = parent.recv()
        return ChildServer(host, port, tmp_path)

    yield start
    for proc, parent in started:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()
