"""TLS framing on the wire: under full encryption every TLS record carries (part of) exactly one TDS packet, as
SQL Server writes them; ODBC Driver 18.6 spun for ever on records that straddled packets above 16,384 bytes."""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from mssql_standin import serve, wire
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, USER, StubEngine
from tests.standin.test_wire_session import RawClient

TLS_RECORD_MAX = 16384


def _records_of_one_reply(c: RawClient) -> tuple[bytes, list[tuple[int, int]]]:
    """Read one reply record by record: (its plaintext, [(start, end) of each record's plaintext])."""
    assert c.tls is not None
    raw = bytearray()
    plain = bytearray()
    spans: list[tuple[int, int]] = []
    while True:
        while len(raw) < 5 or len(raw) < 5 + struct.unpack_from(">H", raw, 3)[0]:
            raw += c.sock.recv(65536)
        size = 5 + struct.unpack_from(">H", raw, 3)[0]
        c._in_bio.write(bytes(raw[:size]))
        del raw[:size]
        try:
            chunk = c.tls.read(65536)
        except ssl.SSLWantReadError:
            chunk = b""
        spans.append((len(plain), len(plain) + len(chunk)))
        plain += chunk
        pos = 0
        while pos + 8 <= len(plain):
            _t, status, length = struct.unpack_from(">BBH", plain, pos)
            if pos + length > len(plain):
                break
            if status & wire.ST_EOM:
                assert pos + length == len(plain) and not raw
                return bytes(plain), spans
            pos += length


@pytest.mark.parametrize("packet_size", [4096, 16383, 16385, 32767])
def test_each_tls_record_holds_one_packet_or_a_16k_slice_of_it(stub_engine: StubEngine, packet_size: int) -> None:
    n = 300_000
    stub_engine.add_table("big", [ColumnSpec("a", "bigint", nullable=False)], pa.table({"a": pa.array(range(n))}))
    with serve("standin", user=USER, password=PASSWORD, encryption="on", engine=stub_engine) as srv:
        c = RawClient(srv.host, srv.port, packet_size=packet_size, tls=True)
        assert wire.envchange(wire.ENV_PACKETSIZE, str(packet_size), "4096") in c.login_reply, "size honoured"
        c.batch("select * from big")
        plain, spans = _records_of_one_reply(c)
    starts = []
    pos = 0
    while pos < len(plain):
        starts.append(pos)
        length = struct.unpack_from(">H", plain, pos + 2)[0]
        assert length == packet_size or pos + length == len(plain), "every packet but the last is full"
        pos += length
    ends = {s: s + struct.unpack_from(">H", plain, s + 2)[0] for s in starts}
    packet_of = 0
    for start, end in spans:
        while packet_of + 1 < len(starts) and starts[packet_of + 1] <= start:
            packet_of += 1
        first = starts[packet_of]
        assert (start - first) % TLS_RECORD_MAX == 0, f"record at {start} starts inside packet at {first}"
        assert end <= ends[first], f"record {start}-{end} runs past the packet ending at {ends[first]}"
    assert len(spans) == sum(-(-(end - start) // TLS_RECORD_MAX) for start, end in ends.items())


def test_strict_server_hangs_up_on_a_prelogin_first_client(stub_engine: StubEngine) -> None:
    """`--encryption strict` (TDS 8.0 only): a client that starts with a plain PRELOGIN is disconnected."""
    with serve("standin", user=USER, password=PASSWORD, encryption="strict", engine=stub_engine) as srv:
        sock = socket.create_connection((srv.host, srv.port), timeout=30)
        prelogin = bytes([1]) + struct.pack(">HH", 6, 1) + b"\xff" + bytes([wire.ENCRYPT_ON])
        sock.sendall(b"".join(wire.packetize(wire.PKT_PRELOGIN, prelogin, 4096)))
        assert sock.recv(100) == b""
        sock.close()


def test_strict_handshake_offers_alpn_tds8(stub_engine: StubEngine) -> None:
    """TDS 8.0: TLS straight on TCP with ALPN tds/8.0, then PRELOGIN and LOGIN7 inside TLS."""
    with serve("standin", user=USER, password=PASSWORD, encryption="strict", engine=stub_engine) as srv:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["tds/8.0"])
        with ctx.wrap_socket(socket.create_connection((srv.host, srv.port), timeout=30)) as tls_sock:
            assert tls_sock.selected_alpn_protocol() == "tds/8.0"
            prelogin = bytes([1]) + struct.pack(">HH", 6, 1) + b"\xff" + bytes([wire.ENCRYPT_NOT_SUP])
            tls_sock.sendall(b"".join(wire.packetize(wire.PKT_PRELOGIN, prelogin, 4096)))
            head = tls_sock.recv(8)
            assert head[0] == wire.PKT_REPLY


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_unusable_certificate_stops_the_standin_with_one_line(tmp_path: Path, content: bytes | None) -> None:
    cert = tmp_path / "cert.pem"
    if content is not None:
        cert.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "mssql_standin", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(cert)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot use --tls-cert {cert} / --tls-key {cert}: ")
    assert ("No such file or directory" if content is None else "PEM lib") in lines[0]
