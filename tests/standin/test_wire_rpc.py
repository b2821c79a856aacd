"""RPC parameters of every type, encoded byte-exactly and sent by a raw client, decoded by the server and
echoed back: the round trip must give back every value, including 100 ns and offsets."""

from __future__ import annotations

import struct

import pytest

from mssql_standin import wire
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import TYPED_COLUMNS, TYPED_ROWS, StubEngine
from tests.standin.test_wire_session import RawClient

ALL_HEADERS = struct.pack("<IIH", 22, 18, 2) + bytes(8) + struct.pack("<I", 1)


def _nullable(c: ColumnSpec) -> ColumnSpec:
    return ColumnSpec(c.name, c.type_name, c.length, c.precision, c.scale, nullable=True)


def rpc_param(name: str, spec: ColumnSpec, value: object, status: int = 0) -> bytes:
    """ParamName, StatusFlags (1 = output), TYPE_INFO and value, as a client writes them."""
    head = bytes([len(name)]) + name.encode("utf-16-le") + bytes([status])
    return head + wire.type_info(spec) + wire.encode_value(spec, value)


def sp_executesql(sql: str, decl: str, params: list[tuple[str, ColumnSpec, object]], proc: int = 10) -> bytes:
    text = ColumnSpec("", "nvarchar", length=-1)
    body = ALL_HEADERS + struct.pack("<HHH", 0xFFFF, proc, 0)
    body += rpc_param("", text, sql) + rpc_param("", text, decl)
    for name, spec, value in params:
        body += rpc_param(name, spec, value)
    return body


def read_rows(stream: bytes) -> tuple[list[tuple[object, ...]], list[int]]:
    r = wire.Reader(stream)
    rows: list[tuple[object, ...]] = []
    dones: list[int] = []
    meta: list[wire.TypeInfo] = []
    while r.remaining():
        tok = r.u8()
        if tok == wire.TOK_COLMETADATA:
            meta = [ti for _s, ti in wire.read_colmetadata(r)]
        elif tok == wire.TOK_ROW:
            rows.append(tuple(wire.read_value(r, ti, in_row=True) for ti in meta))
        elif tok in (wire.TOK_DONE, wire.TOK_DONEPROC, wire.TOK_DONEINPROC):
            dones.append(tok)
            r.take(12)
        elif tok == wire.TOK_RETURNSTATUS:
            r.take(4)
        elif tok in (wire.TOK_ERROR, wire.TOK_INFO, wire.TOK_ENVCHANGE):
            raise AssertionError(f"unexpected token {tok:#x}: {r.take(r.u16())!r}")
        else:
            raise AssertionError(f"unexpected token {tok:#x}")
    return rows, dones


@pytest.mark.parametrize("row", range(len(TYPED_ROWS)))
def test_every_type_as_rpc_parameter_round_trips(stub_server, stub_engine: StubEngine, row: int) -> None:
    cols = [_nullable(c) for c in TYPED_COLUMNS[1:]]
    values = TYPED_ROWS[row][1:]
    names = [f"@{c.name}" for c in cols]
    c = RawClient(stub_server.host, stub_server.port)
    payload = sp_executesql("select " + ", ".join(names), "", list(zip(names, cols, values, strict=True)))
    c.send(wire.PKT_RPC, payload)
    rows, dones = read_rows(c.read_message())
    assert dones == [wire.TOK_DONEINPROC, wire.TOK_DONEPROC]
    (got,) = rows
    for spec, want, value in zip(cols, values, got, strict=True):
        if spec.type_name == "real" and want is not None:
            assert value == pytest.approx(want, rel=1e-7)
        else:
            assert value == want, spec.name
    _sql, params = stub_engine.log[-1]
    assert params["@c_varchar"][0].type_name == "varchar" and params["@c_money"][0].type_name == "money"


def test_prepare_execute_unprepare(stub_server, stub_engine: StubEngine) -> None:
    c = RawClient(stub_server.host, stub_server.port)
    int_spec = ColumnSpec("", "int")
    text = ColumnSpec("", "nvarchar", length=-1)
    body = ALL_HEADERS + struct.pack("<HHH", 0xFFFF, 11, 0)
    body += rpc_param("@handle", int_spec, None, status=1)
    body += rpc_param("", text, "@a int") + rpc_param("", text, "select @a") + rpc_param("", int_spec, 1)
    c.send(wire.PKT_RPC, body)
    reply = c.read_message()
    assert bytes([wire.TOK_RETURNVALUE]) in reply
    handle = struct.unpack_from("<i", reply, len(reply) - 13 - 4)[0]  # RETURNVALUE's INTN, then DONEPROC
    execute = ALL_HEADERS + struct.pack("<HHH", 0xFFFF, 12, 0)
    execute += rpc_param("", int_spec, handle) + rpc_param("", int_spec, 41)
    c.send(wire.PKT_RPC, execute)
    rows, _ = read_rows(c.read_message())
    assert rows == [(41,)]
    assert stub_engine.log[-1][1]["@a"][1] == 41
    c.send(wire.PKT_RPC, ALL_HEADERS + struct.pack("<HHH", 0xFFFF, 15, 0) + rpc_param("", int_spec, handle))
    rows, dones = read_rows(c.read_message())
    assert rows == [] and dones == [wire.TOK_DONEPROC]
    c.send(wire.PKT_RPC, execute)
    reply = c.read_message()
    assert reply[0] == wire.TOK_ERROR and struct.unpack_from("<i", reply, 3)[0] == 8179


def test_varchar_parameter_in_a_legacy_code_page(stub_server, stub_engine: StubEngine) -> None:
    spec = ColumnSpec("", "varchar", 50, collation="Cyrillic_General_CI_AS")
    c = RawClient(stub_server.host, stub_server.port)
    c.send(wire.PKT_RPC, sp_executesql("select @v", "@v varchar(50)", [("@v", spec, "Привет")]))
    rows, _ = read_rows(c.read_message())
    assert rows == [("Привет",)]
    param_spec, value = stub_engine.log[-1][1]["@v"]
    assert value == "Привет" and param_spec.collation == "Cyrillic_General_CI_AS"
