"""The session layer driven by a raw TDS client: ATTENTION, vanishing clients, packet sizes, TM requests."""

from __future__ import annotations

import socket
import ssl
import struct
import time

import pyarrow as pa
import pytest

from mssql_standin import serve, wire
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, USER, StubEngine


def _login7(user: str, password: str, database: str, packet_size: int) -> bytes:
    def enc_pw(p: str) -> bytes:
        return bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in p.encode("utf-16-le"))

    values = [("h", False), (user, False), (password, True), ("raw", False), ("srv", False)]
    var = bytearray()
    ptrs = bytearray()
    for text, pw in values:
        raw = enc_pw(text) if pw else text.encode("utf-16-le")
        ptrs += struct.pack("<HH", 94 + len(var), len(raw) // 2)
        var += raw
    end = 94 + len(var)
    ptrs += struct.pack("<HH", end, 0) * 3  # extension, client interface, language
    ptrs += struct.pack("<HH", end, len(database))
    ptrs += b"\x00" * 6 + struct.pack("<HHHHHHI", end + 2 * len(database), 0, 0, 0, 0, 0, 0)
    head = struct.pack("<IIIIII", 0, 0x74000004, packet_size, 0, 0, 0) + bytes(4) + struct.pack("<ii", 0, 0)
    body = head + ptrs + var + database.encode("utf-16-le")
    return struct.pack("<I", len(body)) + body[4:]


class RawClient:
    """Just enough of a TDS client to poke at the server's session handling."""

    def __init__(self, host: str, port: int, packet_size: int = 4096, password: str = PASSWORD, tls: bool = False):
        self.sock = socket.create_connection((host, port))
        self.buf = bytearray()
        self.tls: ssl.SSLObject | None = None
        enc = wire.ENCRYPT_ON if tls else wire.ENCRYPT_NOT_SUP
        prelogin = bytes([1]) + struct.pack(">HH", 6, 1) + b"\xff" + bytes([enc])
        self.send(wire.PKT_PRELOGIN, prelogin)
        self.read_message()
        if tls:
            self._handshake()
        self.send(wire.PKT_LOGIN7, _login7(USER, password, "standin", packet_size))
        self.login_reply = self.read_message()

    def _handshake(self) -> None:
        """TLS inside PRELOGIN packets, then TLS records straight on the socket (full encryption)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.send(wire.PKT_PRELOGIN, outgoing.read())
                incoming.write(self.read_message())
        self._out_bio, self._in_bio, self.tls = outgoing, incoming, obj
        if pending := outgoing.read():
            self.sock.sendall(pending)

    def send(self, ptype: int, payload: bytes, size: int = 4096) -> None:
        for pkt in wire.packetize(ptype, payload, size):
            if self.tls is None:
                self.sock.sendall(pkt)
            else:
                self.tls.write(pkt)
                self.sock.sendall(self._out_bio.read())

    def batch(self, sql: str) -> None:
        headers = struct.pack("<IIH", 22, 18, 2) + bytes(8) + struct.pack("<I", 1)
        self.send(wire.PKT_SQL_BATCH, headers + sql.encode("utf-16-le"))

    def read_packet(self) -> tuple[int, bytes]:
        while len(self.buf) < 8:
            self._recv()
        _t, status, length = struct.unpack_from(">BBH", self.buf)
        while len(self.buf) < length:
            self._recv()
        payload = bytes(self.buf[8:length])
        del self.buf[:length]
        return status, payload

    def _recv(self) -> None:
        while True:
            if self.tls is not None:
                try:
                    self.buf += self.tls.read(65536)
                    return
                except ssl.SSLWantReadError:
                    pass
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            if self.tls is None:
                self.buf += data
                return
            self._in_bio.write(data)

    def read_message(self) -> bytes:
        parts = []
        while True:
            status, payload = self.read_packet()
            parts.append(payload)
            if status & wire.ST_EOM:
                return b"".join(parts)


def done_tokens(stream: bytes) -> list[tuple[int, int]]:
    """(status, rowcount) of every DONE token, parsing just COLMETADATA(bigint) + ROWs + DONE."""
    r = wire.Reader(stream)
    out = []
    meta: list = []
    while r.remaining():
        tok = r.u8()
        if tok == wire.TOK_COLMETADATA:
            meta = [ti for _spec, ti in wire.read_colmetadata(r)]
        elif tok == wire.TOK_ROW:
            for ti in meta:
                wire.read_value(r, ti, in_row=True)
        elif tok in (wire.TOK_DONE, wire.TOK_DONEINPROC, wire.TOK_DONEPROC):
            status, _cmd, count = struct.unpack("<HHQ", r.take(12))
            out.append((status, count))
        elif tok in (wire.TOK_ENVCHANGE, wire.TOK_INFO, wire.TOK_ERROR, wire.TOK_LOGINACK):
            r.take(r.u16())
        else:
            raise AssertionError(f"unexpected token {tok:#x}")
    return out


@pytest.fixture
def big_server(stub_engine: StubEngine):
    n = 2_000_000
    cols = [ColumnSpec("a", "bigint", nullable=False), ColumnSpec("s", "nvarchar", length=40)]
    stub_engine.add_table("huge", cols, pa.table({"a": pa.array(range(n)), "s": ["row text"] * n}))
    with serve("standin", user=USER, password=PASSWORD, encryption="off", engine=stub_engine) as srv:
        yield srv


def test_login_reply_announces_packet_size_and_done(stub_server) -> None:
    c = RawClient(stub_server.host, stub_server.port, packet_size=8192)
    assert "8192".encode("utf-16-le") in c.login_reply
    assert done_tokens_after_login(c.login_reply)[-1] == (0, 0)


def done_tokens_after_login(reply: bytes) -> list[tuple[int, int]]:
    r = wire.Reader(reply)
    out = []
    while r.remaining():
        tok = r.u8()
        if tok == wire.TOK_DONE:
            status, _cmd, count = struct.unpack("<HHQ", r.take(12))
            out.append((status, count))
        elif tok == wire.TOK_FEATUREEXTACK:
            while r.u8() != 0xFF:
                r.take(r.u32())
        else:
            r.take(r.u16())
    return out


def test_wrong_password_reply_is_18456_with_sql_server_wording(stub_server) -> None:
    c = RawClient(stub_server.host, stub_server.port, password="bad")
    r = wire.Reader(c.login_reply)
    assert r.u8() == wire.TOK_ERROR
    r.u16()
    number, state, severity = struct.unpack("<iBB", r.take(6))
    assert (number, state, severity, r.us_varchar()) == (18456, 1, 14, "Login failed for user 'sa'.")


def test_attention_stops_streaming_at_a_token_boundary(big_server) -> None:
    c = RawClient(big_server.host, big_server.port, packet_size=4096)
    c.batch("select * from huge")
    got = bytearray()
    for _ in range(5):
        got += c.read_packet()[1]
    c.send(wire.PKT_ATTENTION, b"")
    start = time.monotonic()
    got += c.read_message()
    assert time.monotonic() - start < 30
    dones = done_tokens(bytes(got))  # parses: the cut happened between ROW tokens
    assert dones[-1][0] & wire.DONE_ATTN
    assert len(got) < 50_000_000
    c.batch("set nocount on")  # the session goes on
    assert done_tokens(c.read_message()) == [(0, 0)]


def test_attention_when_idle_is_acknowledged(stub_server) -> None:
    c = RawClient(stub_server.host, stub_server.port)
    c.send(wire.PKT_ATTENTION, b"")
    assert done_tokens(c.read_message()) == [(wire.DONE_ATTN, 0)]


def test_client_vanishing_mid_stream_ends_the_session_cleanly(big_server, stub_engine: StubEngine) -> None:
    c = RawClient(big_server.host, big_server.port)
    c.batch("select * from huge")
    c.read_packet()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()
    deadline = time.monotonic() + 10
    while stub_engine.closed_sessions == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub_engine.closed_sessions == 1
    assert not big_server.sessions
    c2 = RawClient(big_server.host, big_server.port)  # the server still serves
    c2.batch("set nocount on")
    assert done_tokens(c2.read_message()) == [(0, 0)]


def test_packets_use_the_negotiated_size(big_server) -> None:
    c = RawClient(big_server.host, big_server.port, packet_size=32767)
    c.batch("select * from huge")
    while len(c.buf) < 32767:
        c._recv()
    assert struct.unpack_from(">H", c.buf, 2)[0] == 32767


def test_transaction_manager_requests(stub_server, stub_engine: StubEngine) -> None:
    c = RawClient(stub_server.host, stub_server.port)
    headers = struct.pack("<IIH", 22, 18, 2) + bytes(8) + struct.pack("<I", 1)
    c.send(wire.PKT_TM, headers + struct.pack("<HB", 5, 0) + b"\x00")
    reply = c.read_message()
    assert reply[:4] == bytes([wire.TOK_ENVCHANGE, 11, 0, wire.ENV_BEGIN_TRAN])
    descriptor = reply[5:13]
    c.send(wire.PKT_TM, headers + struct.pack("<H", 8) + b"\x00\x00")
    reply = c.read_message()
    assert reply[3] == wire.ENV_ROLLBACK_TRAN and reply[4] == 0 and reply[5] == 8 and reply[6:14] == descriptor
    assert stub_engine.tm_log == ["rollback"]


def test_engine_bug_becomes_an_error_and_the_session_lives(stub_server) -> None:
    c = RawClient(stub_server.host, stub_server.port)
    c.batch("crash")
    reply = c.read_message()
    assert reply[0] == wire.TOK_ERROR and struct.unpack_from("<i", reply, 3)[0] == 50000
    assert "stub engine bug" in reply.decode("utf-16-le", errors="ignore") or b"s\x00t\x00u\x00b" in reply
    c.batch("set nocount on")
    assert done_tokens(c.read_message()) == [(0, 0)]


@pytest.mark.parametrize("packet_size", [4096, 32767])
def test_attention_under_full_tls(stub_engine: StubEngine, packet_size: int) -> None:
    """Forced encryption: the ATTENTION arrives as a TLS record while rows stream out as TLS records."""
    n = 2_000_000
    stub_engine.add_table("huge", [ColumnSpec("a", "bigint", nullable=False)], pa.table({"a": pa.array(range(n))}))
    with serve("standin", user=USER, password=PASSWORD, encryption="on", engine=stub_engine) as srv:
        c = RawClient(srv.host, srv.port, packet_size=packet_size, tls=True)
        assert done_tokens_after_login(c.login_reply)[-1] == (0, 0)
        c.batch("select * from huge")
        got = bytearray(c.read_packet()[1])
        c.send(wire.PKT_ATTENTION, b"")
        got += c.read_message()
        dones = done_tokens(bytes(got))
        assert dones[-1][0] & wire.DONE_ATTN
        c.batch("set nocount on")
        assert done_tokens(c.read_message()) == [(0, 0)]


def test_login7_packet_size_zero_lets_the_server_decide(stub_engine: StubEngine) -> None:
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine, packet_size=16384) as srv:
        c = RawClient(srv.host, srv.port, packet_size=0)
        assert wire.envchange(wire.ENV_PACKETSIZE, "16384", "4096") in c.login_reply
        c2 = RawClient(srv.host, srv.port, packet_size=100_000)  # more than TDS allows: clamped
        assert wire.envchange(wire.ENV_PACKETSIZE, "32767", "4096") in c2.login_reply


def test_error_longer_than_a_token_is_truncated_and_the_session_lives(stub_server) -> None:
    c = RawClient(stub_server.host, stub_server.port)
    c.batch("raise 50000 1 16 " + "é" * 70_000)
    reply = c.read_message()
    r = wire.Reader(reply)
    assert r.u8() == wire.TOK_INFO
    r.take(r.u16())
    assert r.u8() == wire.TOK_ERROR
    r.u16()
    assert struct.unpack("<iBB", r.take(6)) == (50000, 1, 16)
    assert r.us_varchar() == "é" * 2044 + "..."
    c.batch("set nocount on")
    assert done_tokens(c.read_message()) == [(0, 0)]
