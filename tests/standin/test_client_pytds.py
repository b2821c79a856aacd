"""python-tds against the stand-in: RPC sp_executesql parameters of every type, TM transactions, cancel."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytds
import pytest

from mssql_standin import serve
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import (
    PASSWORD,
    TYPED_COLUMNS,
    TYPED_ROWS,
    USER,
    StubEngine,
    assert_rollback_and_commit_reach_engine,
    assert_row_equal,
    assert_typed_table_read,
)


def connect(srv, **kw):
    kw.setdefault("autocommit", True)
    return pytds.connect(srv.host, "standin", USER, kw.pop("password", PASSWORD), port=srv.port, **kw)


def test_login_and_wrong_password(stub_server) -> None:
    connect(stub_server).close()
    with pytest.raises(pytds.OperationalError) as ei:
        connect(stub_server, password="bad")
    assert ei.value.args[0] == "Login failed for user 'sa'."


def test_every_type_exact(typed_server) -> None:
    assert_typed_table_read(connect(typed_server).cursor())


GUID = uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")
TZ = dt.timezone(dt.timedelta(hours=-4, minutes=-30))


@pytest.mark.parametrize(
    ("value", "type_name", "engine_value"),
    [
        (1, "int", 1),
        (-(2**63), "bigint", -(2**63)),
        (2.5, "float", 2.5),
        (True, "bit", True),
        (Decimal("-123.4500"), "decimal", Decimal("-123.4500")),
        ("", "nvarchar", ""),
        ("λ😀" * 3000, "nvarchar", "λ😀" * 3000),
        (pytds.Binary(b""), "varbinary", b""),
        (pytds.Binary(b"\x00\xff" * 5000), "varbinary", b"\x00\xff" * 5000),
        (dt.date(1, 1, 1), "date", dt.date(1, 1, 1)),
        (dt.time(23, 59, 59, 999999), "time", dt.time(23, 59, 59, 999999)),
        (dt.datetime(9999, 12, 31, 23, 59, 59, 999999), "datetime2", dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
        (dt.datetime(2020, 1, 1, 12, 0, tzinfo=TZ), "datetimeoffset", dt.datetime(2020, 1, 1, 12, 0, tzinfo=TZ)),
        (GUID, "uniqueidentifier", GUID),
        (None, None, None),
    ],
)  # fmt: skip
def test_rpc_parameters_decode_exactly(
    stub_server, stub_engine: StubEngine, value: object, type_name: str | None, engine_value: object
) -> None:
    cur = connect(stub_server).cursor()
    cur.execute("select %(x)s", {"x": value})
    sql, params = stub_engine.log[-1]
    if value is None:  # python-tds writes NULL into the text instead of sending a parameter
        assert sql == "select NULL"
        return
    assert sql == "select @P1"
    spec, got = params["@P1"]
    assert got == engine_value and type(got) is type(engine_value) and spec.type_name == type_name
    if isinstance(got, dt.datetime) and got.tzinfo is not None:
        assert got.utcoffset() == TZ.utcoffset(None)
    back = cur.fetchone()[0]
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        assert back == value and back.utcoffset() == value.utcoffset()
    else:
        assert back == value


def test_transactions_through_transaction_manager(stub_server, stub_engine: StubEngine) -> None:
    assert_rollback_and_commit_reach_engine(connect(stub_server, autocommit=False), stub_engine)


def test_output_parameter_comes_back(stub_server) -> None:
    cur = connect(stub_server).cursor()
    out = cur.callproc("sp_executesql", ("set @o = 42", "@o int output", pytds.output(param_type="int")))
    assert out[2] == 42


def test_error_number_state_class(stub_server) -> None:
    cur = connect(stub_server).cursor()
    with pytest.raises(pytds.ProgrammingError) as ei:
        cur.execute("raise 207 1 16 Invalid column name 'nope'.")
    e = ei.value
    assert (e.number, e.state, e.severity) == (207, 1, 16) and e.message.endswith("Invalid column name 'nope'.")
    with pytest.raises(pytds.IntegrityError) as ei2:
        cur.execute("raise 515 2 16 Cannot insert the value NULL into column 'a'.")
    assert ei2.value.number == 515


def test_cancel_mid_stream(stub_engine: StubEngine) -> None:
    n = 2_000_000
    stub_engine.add_table("huge", [ColumnSpec("a", "bigint", nullable=False)], pa.table({"a": pa.array(range(n))}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        conn = connect(srv)
        cur = conn.cursor()
        cur.execute("select * from huge")
        assert cur.fetchone() == (0,)
        cur.cancel()
        cur.execute("select %s", (5,))
        assert cur.fetchall() == [(5,)]


def test_forced_encryption_refuses_a_client_without_tls(stub_engine: StubEngine) -> None:
    """python-tds without a CA file offers no TLS; a server that forces encryption cannot let it in."""
    with (
        serve("standin", user=USER, password=PASSWORD, encryption="on", engine=stub_engine) as srv,
        pytest.raises(Exception),  # noqa: B017 - python-tds raises different types across versions
    ):
        connect(srv, login_timeout=5)


def test_concurrent_sessions(typed_server) -> None:
    """One thread per connection: eight clients at once each get the whole, exact result."""
    from concurrent.futures import ThreadPoolExecutor

    def read(_: int) -> list[tuple[object, ...]]:
        conn = connect(typed_server)
        cur = conn.cursor()
        cur.execute("select * from typed")
        rows = [tuple(r) for r in cur.fetchall()]
        conn.close()
        return rows

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(8)))
    for rows in results:
        for got, want in zip(rows, TYPED_ROWS, strict=True):
            assert_row_equal(TYPED_COLUMNS, got, want)
