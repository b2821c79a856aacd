"""pymssql (FreeTDS inside) against the stand-in: login, encryption modes, every type, errors, bulk copy."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pyarrow as pa
import pymssql
import pytest

from mssql_standin import serve
from mssql_standin.results import ColumnSpec
from mssql_standin.wire import arrow_type
from tests.standin.conftest import (
    PASSWORD,
    USER,
    StubEngine,
    assert_typed_table_read,
)


def connect(srv, **kw):
    args = {"server": srv.host, "port": srv.port, "user": USER, "password": PASSWORD, "database": "standin"}
    args.update(kw)
    return pymssql.connect(**args)


@pytest.mark.parametrize("encryption", ["off", "on", "notsup"])
def test_login_in_each_encryption_mode(stub_engine: StubEngine, encryption: str) -> None:
    with serve("standin", user=USER, password=PASSWORD, encryption=encryption, engine=stub_engine) as srv:
        conn = connect(srv)
        assert conn._conn.connected
        conn.close()


def test_wrong_password_is_error_18456(stub_server) -> None:
    with pytest.raises(pymssql.OperationalError) as ei:
        connect(stub_server, password="wrong")
    text = str(ei.value)
    assert "18456" in text and "Login failed for user 'sa'." in text


def test_unknown_database_fails_login(stub_server) -> None:
    with pytest.raises(pymssql.OperationalError) as ei:
        connect(stub_server, database="nope")
    assert "4060" in str(ei.value) or "18456" in str(ei.value)


def test_every_type_exact(typed_server) -> None:
    conn = connect(typed_server)
    cur = conn.cursor()
    assert_typed_table_read(cur)


def test_multi_megabyte_max_values_are_not_truncated(stub_engine: StubEngine) -> None:
    big_text = "ab😀" * 1_000_000
    big_bytes = bytes(range(256)) * 20_000
    cols = [ColumnSpec("t", "nvarchar", length=-1), ColumnSpec("b", "varbinary", length=-1)]
    stub_engine.add_table("big", cols, pa.table({"t": [big_text, "x"], "b": [big_bytes, b""]}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        cur = connect(srv).cursor()
        cur.execute("select * from big")
        rows = cur.fetchall()
    assert rows[0][0] == big_text and rows[0][1] == big_bytes and rows[1] == ("x", b"")


@pytest.mark.parametrize(("number", "state", "severity"), [(102, 1, 15), (207, 1, 16), (208, 1, 16), (515, 2, 16),
                                                           (2627, 1, 14), (8152, 30, 16), (4860, 1, 16)])  # fmt: skip
def test_error_number_state_and_class_reach_the_client(stub_server, number: int, state: int, severity: int) -> None:
    conn = connect(stub_server)
    cur = conn.cursor()
    with pytest.raises(pymssql.DatabaseError) as ei:
        cur.execute(f"raise {number} {state} {severity} Message for {number}.")
    assert ei.value.args[0] == number
    assert f"Message for {number}.".encode() in ei.value.args[1]
    inner = ei.value.__context__
    assert (inner.number, inner.state, inner.severity) == (number, state, severity)  # type: ignore[union-attr]
    cur.execute("set nocount on")  # the session survives the error


def test_bulk_copy_rows_arrive_decoded(child_server) -> None:
    cols = [
        ColumnSpec("id", "int", nullable=False),
        ColumnSpec("name", "nvarchar", length=100),
        ColumnSpec("amount", "decimal", precision=18, scale=4),
        ColumnSpec("at", "datetime"),
        ColumnSpec("score", "float"),
        ColumnSpec("blob", "varbinary", length=50),
        ColumnSpec("flag", "bit"),
    ]
    empty = pa.table({c.name: pa.array([], type=arrow_type(c)) for c in cols})
    rows = [
        (1, "héllo 😀", Decimal("12.3456"), dt.datetime(2024, 1, 2, 3, 4, 5, 997000), 1.5, b"\x00\x01", True),
        (2, None, Decimal("-0.0001"), None, -2.25, None, False),
    ]
    srv = child_server({"target": (cols, empty)})
    conn = connect(srv)
    conn.bulk_copy("target", rows)
    conn.commit()
    batches = srv.bulk_batches()
    assert len(batches) == 1
    got = batches[0].to_pylist()
    assert [r["id"] for r in got] == [1, 2]
    assert got[0]["name"] == "héllo 😀" and got[1]["name"] is None
    assert got[0]["amount"] == Decimal("12.3456") and got[1]["amount"] == Decimal("-0.0001")
    assert got[0]["score"] == 1.5 and got[1]["blob"] is None and got[0]["blob"] == b"\x00\x01"
    assert [r["flag"] for r in got] == [True, False]
    assert got[0]["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 997000) and got[1]["at"] is None


def test_cancel_stops_a_streaming_result(stub_engine: StubEngine) -> None:
    n = 3_000_000
    stub_engine.add_table("huge", [ColumnSpec("a", "bigint", nullable=False)], pa.table({"a": pa.array(range(n))}))
    stub_engine.add_table("small", [ColumnSpec("b", "int")], pa.table({"b": pa.array([7], pa.int32())}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        conn = connect(srv)
        cur = conn.cursor()
        cur.execute("select * from huge")
        assert [cur.fetchone() for _ in range(10)] == [(i,) for i in range(10)]
        start = time.monotonic()
        conn._conn.cancel()
        assert time.monotonic() - start < 30  # generous: the box may be loaded; draining is not what happens
        cur.execute("select * from small")  # the same session answers the next request
        assert cur.fetchall() == [(7,)]
