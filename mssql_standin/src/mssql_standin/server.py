"""TDS sessions: one thread per connection, TLS, batches, RPC, transactions, bulk load and cancel.

The engine (engine.py) runs T-SQL and yields results.py objects; this module only speaks TDS, so a
stub engine can stand in for it in protocol tests.

What the engine receives from here:
- RPC parameters as `{"@name": (ColumnSpec of the client's wire type, value)}` with plain Python values
  (int, bool, float, Decimal, str, bytes, date, datetime, time, aware datetime for datetimeoffset,
  uuid.UUID); a time/datetime2/datetimeoffset carrying a 100 ns digit keeps the ResultSet form instead
  (int ticks / {"utc", "offset_min"}), see wire.python_param. Unnamed parameters take their names from
  the declaration string (`@P1 int, ...`).
- Bulk-load rows (packet 0x07) as one RecordBatch decoded with the client's own COLMETADATA, in the
  ResultSet's Arrow conventions; each field's metadata carries the client's type_name/length/precision/scale.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from . import tls, wire
from .results import (
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

log = logging.getLogger("mssql_standin")

ENCRYPTION_MODES = ("off", "on", "notsup", "strict")
TARGET_SLICE_BYTES = 1 << 20
TLS_HANDSHAKE_RECORD = 0x16  # a TDS packet never starts with this type byte
CURCMD = {"select": 0xC1, "insert": 0xC3, "delete": 0xC4, "update": 0xC5, "merge": 0x117, "bulk": 0xF0}
PROC_IDS = {
    "sp_cursor": 1,
    "sp_cursoropen": 2,
    "sp_cursorprepare": 3,
    "sp_cursorexecute": 4,
    "sp_cursorprepexec": 5,
    "sp_cursorunprepare": 6,
    "sp_cursorfetch": 7,
    "sp_cursoroption": 8,
    "sp_cursorclose": 9,
    "sp_executesql": 10,
    "sp_prepare": 11,
    "sp_execute": 12,
    "sp_prepexec": 13,
    "sp_prepexecrpc": 14,
    "sp_unprepare": 15,
}


class EngineSessionLike(Protocol):
    database: str
    trancount: int

    def execute(self, sql: str, params: dict[str, tuple[ColumnSpec | None, object]] | None = None) -> Iterator[Any]: ...
    def bulk_insert(self, request: BulkLoadRequest, batch: pa.RecordBatch) -> int: ...
    def begin(self) -> bytes: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class EngineLike(Protocol):
    def session(self) -> EngineSessionLike: ...


def _internal_error(exc: Exception) -> SqlServerError:
    """An engine bug still reaches the client as an error message instead of a dropped connection."""
    if isinstance(exc, (Attention, ClientGone)):
        raise exc
    log.exception("engine failed")
    return SqlServerError(50000, f"mssql_standin internal error: {type(exc).__name__}: {exc}")


def _close(obj: object) -> None:
    """Close a generator (runs its finally blocks) if it is one."""
    close = getattr(obj, "close", None)
    if callable(close):
        close()


class Attention(Exception):
    """The client sent ATTENTION while we were answering."""


class ClientGone(Exception):
    """The socket closed or broke; the session ends quietly."""


# ======================================================================================================
# Channel: packets over a socket, optionally through TLS
# ======================================================================================================


class Channel:
    """Reads and writes TDS packets; TLS (when on) is an SSLObject over memory BIOs so that the
    PRELOGIN-wrapped handshake, login-only encryption and full encryption share one code path."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.inbuf = bytearray()
        self.tls: ssl.SSLObject | None = None
        self._in_bio: ssl.MemoryBIO | None = None
        self._out_bio: ssl.MemoryBIO | None = None
        self.packet_size = wire.DEFAULT_PACKET

    # -- raw bytes ---------------------------------------------------------------------------------
    def _recv_raw(self) -> bytes:
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionError, OSError) as e:
            raise ClientGone(str(e)) from e
        if not data:
            raise ClientGone("client closed the connection")
        return data

    def _send_raw(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except (ConnectionError, OSError) as e:
            raise ClientGone(str(e)) from e

    def _fill(self) -> None:
        """Read more plaintext into inbuf."""
        if self.tls is None:
            self.inbuf += self._recv_raw()
            return
        assert self._in_bio is not None
        while True:
            try:
                chunk = self.tls.read(1 << 16)
                if not chunk:
                    raise ClientGone("TLS closed")
                self.inbuf += chunk
                return
            except ssl.SSLWantReadError:
                self._in_bio.write(self._recv_raw())
            except ssl.SSLError as e:
                raise ClientGone(str(e)) from e

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send whole TDS packets; under TLS each packet is encrypted on its own.

        SQL Server encrypts packet by packet, so a TLS record never holds the end of one TDS packet and the
        start of the next (a packet above 16,384 bytes, the TLS record limit, takes two records of its own).
        ODBC Driver 18.6 (in mssql-python 1.16) relies on that: given records that straddle packets of more than
        16,384 bytes it spins at full CPU without reading the socket (the "encrypt=yes hangs" bug). The
        negotiated packet size is honoured as asked, as SQL Server does, even though SQL Server documents
        16,383 bytes as the maximum for encrypted connections.
        """
        if self.tls is None:
            self._send_raw(data)
            return
        assert self._out_bio is not None
        with memoryview(data) as view:
            pos, end = 0, len(view)
            while pos < end:
                if end - pos < 8:
                    raise wire.ProtocolError("internal: a partial TDS packet was handed to the TLS writer")
                (length,) = struct.unpack_from(">H", view, pos + 2)
                if length < 8 or pos + length > end:
                    raise wire.ProtocolError("internal: a partial TDS packet was handed to the TLS writer")
                self.tls.write(view[pos : pos + length])
                pos += length
        self._send_raw(self._out_bio.read())

    # -- packets ----------------------------------------------------------------------------------
    def read_packet(self) -> tuple[int, int, bytes]:
        while len(self.inbuf) < 8:
            self._fill()
        ptype, status, length = struct.unpack_from(">BBH", self.inbuf, 0)
        if length < 8:
            raise wire.ProtocolError("bad packet length")
        while len(self.inbuf) < length:
            self._fill()
        payload = bytes(self.inbuf[8:length])
        del self.inbuf[:length]
        return ptype, status, payload

    def read_message(self) -> tuple[int, int, bytes]:
        """Packets up to EOM as one message: (type, status of the first packet, payload)."""
        ptype, status, payload = self.read_packet()
        if status & wire.ST_EOM:
            return ptype, status, payload
        parts = [payload]
        while True:
            t, st, p = self.read_packet()
            if t == wire.PKT_ATTENTION:
                return t, st, p
            parts.append(p)
            if st & wire.ST_EOM:
                return ptype, status, b"".join(parts)

    def data_waiting(self) -> bool:
        if self.inbuf:
            return True
        if self.tls is not None and self.tls.pending():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError) as e:
            raise ClientGone(str(e)) from e
        return bool(readable)

    def poll_attention(self) -> bool:
        """Non-blocking: has the client sent ATTENTION? Anything else arriving mid-answer is an error."""
        if not self.data_waiting():
            return False
        ptype, _status, _payload = self.read_packet()
        if ptype == wire.PKT_ATTENTION:
            return True
        raise wire.ProtocolError(f"packet type 0x{ptype:02x} arrived while a response was streaming")

    def send_message(self, ptype: int, payload: bytes) -> None:
        self.send(b"".join(wire.packetize(ptype, payload, self.packet_size)))

    # -- TLS --------------------------------------------------------------------------------------
    def handshake_in_prelogin(self, ctx: ssl.SSLContext) -> None:
        """Run the TLS handshake with its records carried inside PRELOGIN (0x12) packets."""
        self._in_bio, self._out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(self._in_bio, self._out_bio, server_side=True)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = self._out_bio.read()
                if out:
                    self._send_raw(b"".join(wire.packetize(wire.PKT_PRELOGIN, out, self.packet_size)))
                ptype, _st, payload = self.read_message()
                if ptype != wire.PKT_PRELOGIN:
                    raise wire.ProtocolError("expected a TLS handshake packet") from None
                self._in_bio.write(payload)
            except ssl.SSLError as e:
                raise ClientGone(f"TLS handshake failed: {e}") from e
        out = self._out_bio.read()
        if out:
            self._send_raw(b"".join(wire.packetize(wire.PKT_PRELOGIN, out, self.packet_size)))
        self.tls = obj

    def handshake_direct(self, ctx: ssl.SSLContext) -> None:
        """TDS 8.0 (strict): the client's TLS records come straight on TCP, before any TDS packet."""
        self._in_bio, self._out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(self._in_bio, self._out_bio, server_side=True)
        self._in_bio.write(bytes(self.inbuf))
        self.inbuf.clear()
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if out := self._out_bio.read():
                    self._send_raw(out)
                self._in_bio.write(self._recv_raw())
            except ssl.SSLError as e:
                raise ClientGone(f"TLS handshake failed: {e}") from e
        if out := self._out_bio.read():
            self._send_raw(out)
        self.tls = obj

    def peek_byte(self) -> int:
        """The first byte the client sent, left in the buffer."""
        while not self.inbuf:
            self._fill()
        return self.inbuf[0]

    def drop_tls(self) -> None:
        """Encryption 'off': only LOGIN7 was encrypted; the rest of the session is plaintext."""
        self.tls = None


# ======================================================================================================
# Response: tokens to packets, with cancel at a token boundary
# ======================================================================================================


class Response:
    """Buffers one reply message and sends full packets as it grows.

    It remembers token/row boundaries of what it holds so that, on ATTENTION, it can finish the token
    already half-sent (clients parse tokens across packets) and then send DONE with DONE_ATTN.
    """

    def __init__(self, channel: Channel):
        self.ch = channel
        self.out = bytearray()
        self.sent = 0
        self.bounds: list[np.ndarray] = []
        self.pid = 1

    def write(self, data: bytes | bytearray | memoryview, row_offsets: np.ndarray | None = None) -> None:
        base = self.sent + len(self.out)
        self.out += data
        if row_offsets is not None:
            self.bounds.append(row_offsets[1:] + base)
        else:
            self.bounds.append(np.array([base + len(data)], dtype=np.int64))

    def flush_full(self) -> None:
        body = self.ch.packet_size - 8
        count = len(self.out) // body
        if count == 0:
            return
        data = self._frame(count * body, final=False)
        self.ch.send(data)
        del self.out[: count * body]
        self.sent += count * body
        self._prune()

    def _frame(self, nbytes: int, final: bool) -> bytes:
        """Packets for the first `nbytes` of the buffer (memoryview slices die with this frame)."""
        body = self.ch.packet_size - 8
        view = memoryview(self.out)
        pieces: list[bytes | memoryview] = []
        pos = 0
        while True:
            chunk = view[pos : pos + body]
            pos += len(chunk)
            last = pos >= nbytes
            status = wire.ST_EOM if (last and final) else 0
            pieces.append(wire.packet_header(wire.PKT_REPLY, status, len(chunk) + 8, 0, self.pid))
            pieces.append(chunk)
            self.pid += 1
            if last:
                break
        data = b"".join(pieces)
        for piece in pieces:
            if isinstance(piece, memoryview):
                piece.release()
        view.release()
        return data

    def _prune(self) -> None:
        while self.bounds and self.bounds[0][-1] <= self.sent:
            self.bounds.pop(0)

    def finish(self) -> None:
        """Send what is left with EOM on the last packet."""
        data = self._frame(len(self.out), final=True)
        self.ch.send(data)
        self.out.clear()
        self.bounds.clear()
        self.sent = 0
        self.pid = 1

    def cut_for_attention(self) -> None:
        """Drop unsent whole tokens, keep the rest of a token already partly on the wire."""
        keep = 0
        for b in self.bounds:
            idx = int(np.searchsorted(b, self.sent, side="left"))
            if idx < len(b):
                keep = int(b[idx]) - self.sent
                break
        del self.out[keep:]
        self.bounds.clear()


# ======================================================================================================
# Session
# ======================================================================================================


@dataclass
class Settings:
    user: str | None = None
    password: str | None = None
    encryption: str = "off"
    packet_size: int = wire.DEFAULT_PACKET
    tls_cert: str | None = None
    tls_key: str | None = None

    def tls_context(self) -> ssl.SSLContext:
        return tls.server_context(self.tls_cert, self.tls_key)


@dataclass
class Param:
    name: str
    status: int
    spec: ColumnSpec
    value: object


class Session:
    """One client connection: login, then requests until the client leaves."""

    def __init__(self, sock: socket.socket, engine: EngineLike, settings: Settings, on_close: Any = None):
        self.sock = sock
        self.ch = Channel(sock)
        self.engine = engine
        self.settings = settings
        self.es: EngineSessionLike | None = None
        self.tran_descriptor = b"\x00" * 8
        self.pending_bulk: BulkLoadRequest | None = None
        self.prepared: dict[int, tuple[str, str]] = {}
        self.next_handle = 1
        self.on_close = on_close

    # -- top level --------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self.login():
                self.loop()
        except ClientGone as e:
            log.debug("client gone: %s", e)
        except wire.ProtocolError as e:
            log.warning("protocol error, closing connection: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
        except Exception:
            log.exception("session failed")
        finally:
            if self.es is not None:
                try:
                    self.es.close()
                except Exception:
                    log.exception("engine session close failed")
            with contextlib.suppress(OSError):
                self.sock.close()
            if self.on_close is not None:
                self.on_close(self)

    def login(self) -> bool:
        mode = self.settings.encryption
        strict = self.ch.peek_byte() == TLS_HANDSHAKE_RECORD
        if strict and mode == "notsup":
            raise ClientGone("a TDS 8.0 (strict) client reached a server without TLS")
        if not strict and mode == "strict":
            raise ClientGone("strict encryption: the client did not start with a TLS handshake (TDS 8.0)")
        if strict:
            self.ch.handshake_direct(self.settings.tls_context())
        ptype, _st, payload = self.ch.read_message()
        encrypt_login_only = False
        if ptype == wire.PKT_PRELOGIN:
            opts = wire.parse_prelogin(payload)
            client_enc = opts.get(1, b"\x02")[:1] or b"\x02"
            # Under TDS 8.0 the PRELOGIN travels inside TLS already and its encryption byte means nothing.
            answer = wire.ENCRYPT_NOT_SUP if strict else self._choose_encryption(client_enc[0])
            self.ch.send_message(wire.PKT_REPLY, wire.build_prelogin(answer, 6 in opts))
            if answer != wire.ENCRYPT_NOT_SUP:
                self.ch.handshake_in_prelogin(self.settings.tls_context())
                encrypt_login_only = answer == wire.ENCRYPT_OFF
            ptype, _st, payload = self.ch.read_message()
        if ptype != wire.PKT_LOGIN7:
            raise wire.ProtocolError(f"expected LOGIN7, got packet type 0x{ptype:02x}")
        login = wire.parse_login7(payload)
        if encrypt_login_only:
            self.ch.drop_tls()
        s = self.settings
        if s.user is not None and (login.username != s.user or login.password != (s.password or "")):
            self._login_failed(login.username)
            return False
        self.es = self.engine.session()
        old_db = self.es.database
        if login.database and login.database.lower() != self.es.database.lower():
            try:
                for _ in self.es.execute(f"USE [{login.database.replace(']', ']]')}]"):
                    pass
            except SqlServerError:
                msg = f'Cannot open database "{login.database}" requested by the login. The login failed.'
                self._login_failed(login.username, first=wire.error_token(4060, msg, 1, 11))
                return False
        size = login.packet_size or s.packet_size
        size = min(max(size, 512), wire.MAX_PACKET)
        db = self.es.database
        out = bytearray()
        out += wire.envchange(wire.ENV_DATABASE, db, old_db if old_db != db else "master")
        out += wire.info_token(5701, f"Changed database context to '{db}'.", 2, 0)
        out += wire.envchange(wire.ENV_COLLATION, wire.COLLATION, b"")
        out += wire.envchange(wire.ENV_LANGUAGE, "us_english", "")
        out += wire.info_token(5703, "Changed language setting to us_english.", 1, 0)
        out += wire.loginack()
        if login.option_flags3 & 0x10:
            out += wire.featureextack()
        out += wire.envchange(wire.ENV_PACKETSIZE, str(size), str(wire.DEFAULT_PACKET))
        out += wire.done(wire.DONE_FINAL, 0)
        self.ch.send_message(wire.PKT_REPLY, bytes(out))
        self.ch.packet_size = size
        return True

    def _choose_encryption(self, client: int) -> int:
        mode = self.settings.encryption
        if mode == "notsup":
            return wire.ENCRYPT_NOT_SUP
        if mode in ("on", "strict"):
            # ON even to a client that said NOT_SUP: tiberius says so by default yet handshakes when told ON;
            # clients that truly cannot encrypt give up on their own.
            return wire.ENCRYPT_ON
        if client == wire.ENCRYPT_NOT_SUP:
            return wire.ENCRYPT_NOT_SUP
        if client in (wire.ENCRYPT_ON, wire.ENCRYPT_REQ):
            return wire.ENCRYPT_ON
        return wire.ENCRYPT_OFF

    def _login_failed(self, user: str, first: bytes = b"") -> None:
        out = first + wire.error_token(18456, f"Login failed for user '{user}'.", 1, 14)
        out += wire.done(wire.DONE_ERROR, 0)
        self.ch.send_message(wire.PKT_REPLY, out)

    def loop(self) -> None:
        while True:
            ptype, status, payload = self.ch.read_message()
            resp = Response(self.ch)
            if status & (wire.ST_RESET | wire.ST_RESET_SKIPTRAN):
                # A pooled connection handed to a new user: an open transaction must not leak into it.
                if status & wire.ST_RESET and self.es is not None and self.es.trancount > 0:
                    old = self.tran_descriptor
                    self.es.rollback()
                    self.tran_descriptor = b"\x00" * 8
                    resp.write(wire.envchange(wire.ENV_ROLLBACK_TRAN, b"", old))
                resp.write(wire.envchange(wire.ENV_RESET_ACK, b"", b""))
            if ptype == wire.PKT_ATTENTION:
                resp.write(wire.done(wire.DONE_ATTN, 0))
                resp.finish()
                continue
            try:
                if ptype == wire.PKT_SQL_BATCH:
                    r = wire.Reader(payload)
                    wire.skip_all_headers(r)
                    sql = r.buf[r.pos :].decode("utf-16-le", errors="surrogatepass")
                    self.stream(resp, self._execute(sql, None), proc=False)
                elif ptype == wire.PKT_RPC:
                    self.rpc(resp, payload)
                elif ptype == wire.PKT_TM:
                    self.transaction_manager(resp, payload)
                elif ptype == wire.PKT_BULK:
                    self.bulk(resp, payload)
                else:
                    raise wire.ProtocolError(f"unexpected packet type 0x{ptype:02x}")
            except Attention:
                resp.cut_for_attention()
                resp.write(wire.done(wire.DONE_ATTN, 0))
            except (ClientGone, wire.ProtocolError):
                raise
            except Exception as exc:  # an engine bug must not cost the client its connection
                e = _internal_error(exc)
                resp.write(wire.error_token(e.number, e.message, e.state, e.severity, e.line))
                resp.write(wire.done(wire.DONE_ERROR, 0))
            resp.finish()

    # -- executing --------------------------------------------------------------------------------
    def _execute(self, sql: str, params: dict[str, tuple[ColumnSpec | None, object]] | None) -> Iterator[Any]:
        assert self.es is not None
        yield from self.es.execute(sql, params)  # a generator, so even call-time errors surface in stream()

    def stream(self, resp: Response, results: Iterable[Any], proc: bool, final: bool = True) -> list[ReturnValue]:
        """Send every result of one batch or procedure call; returns RPC output values for the caller.

        The DONE of a statement is held back until the next result shows whether DONE_MORE applies.
        """
        token = wire.TOK_DONEINPROC if proc else wire.TOK_DONE
        pending: tuple[int, int, int] | None = None
        returns: list[ReturnValue] = []
        errored = False

        def flush_pending(more: bool) -> None:
            nonlocal pending
            if pending is not None:
                st, cmd, cnt = pending
                resp.write(wire.done(st | (wire.DONE_MORE if more else 0), cmd, cnt, token))
                pending = None

        it = iter(results)
        try:
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    break
                except (SqlServerError, Exception) as exc:
                    e = exc if isinstance(exc, SqlServerError) else _internal_error(exc)
                    flush_pending(True)
                    resp.write(wire.error_token(e.number, e.message, e.state, e.severity, e.line))
                    pending = (wire.DONE_ERROR, 0xC1, 0)
                    errored = True
                    break
                if isinstance(item, ResultSet):
                    flush_pending(True)
                    count = self._send_resultset(resp, item)
                    pending = (wire.DONE_COUNT, CURCMD.get(item.statement, CURCMD["select"]), count)
                elif isinstance(item, RowCount):
                    flush_pending(True)
                    pending = (wire.DONE_COUNT, CURCMD.get(item.statement.lower(), 0xC1), item.count)
                elif isinstance(item, Done):
                    flush_pending(True)
                    pending = (0, 0, 0)
                elif isinstance(item, Info):
                    resp.write(wire.info_token(item.number, item.message, item.state, item.severity))
                elif isinstance(item, EnvChange):
                    resp.write(self._envchange(item))
                elif isinstance(item, ReturnValue):
                    returns.append(item)
                elif isinstance(item, BulkLoadRequest):
                    flush_pending(True)
                    self.pending_bulk = item
                    pending = (0, 0, 0)
                else:
                    raise TypeError(f"engine yielded {type(item).__name__}")
                resp.flush_full()
        finally:
            _close(it)  # an ATTENTION leaves the engine's generator suspended: release it now
        if proc:
            flush_pending(True)
        elif pending is not None:
            st, cmd, cnt = pending
            resp.write(wire.done(st | (0 if final else wire.DONE_MORE), cmd, cnt, token))
        elif not errored:
            resp.write(wire.done(wire.DONE_MORE if not final else 0, 0, 0, token))
        if errored:
            returns.append(ReturnValue("__error__", True))
        return returns

    def _envchange(self, item: EnvChange) -> bytes:
        if item.kind == "database":
            return wire.envchange(wire.ENV_DATABASE, str(item.new_value), str(item.old_value))
        if item.kind == "begin_tran":
            desc = item.new_value if isinstance(item.new_value, bytes) else self._descriptor(item.new_value)
            self.tran_descriptor = desc
            return wire.envchange(wire.ENV_BEGIN_TRAN, desc, b"")
        if item.kind in ("commit_tran", "rollback_tran"):
            old = self.tran_descriptor
            if isinstance(item.old_value, bytes) and len(item.old_value) == 8:
                old = item.old_value
            self.tran_descriptor = b"\x00" * 8
            kind = wire.ENV_COMMIT_TRAN if item.kind == "commit_tran" else wire.ENV_ROLLBACK_TRAN
            return wire.envchange(kind, b"", old)
        raise ValueError(f"unknown EnvChange kind {item.kind!r}")

    @staticmethod
    def _descriptor(value: str | bytes) -> bytes:
        raw = value.encode() if isinstance(value, str) else value
        return (raw + b"\x00" * 8)[:8]

    def _send_resultset(self, resp: Response, rs: ResultSet) -> int:
        resp.write(wire.colmetadata(rs.columns))
        try:
            return self._send_rows(resp, rs)
        finally:
            _close(rs.batches)

    def _send_rows(self, resp: Response, rs: ResultSet) -> int:
        total = 0
        for batch in rs.batches:
            n = batch.num_rows
            if n == 0:
                continue
            per_row = max(1, batch.nbytes // n)
            step = max(16, min(65536, TARGET_SLICE_BYTES // per_row))
            for start in range(0, n, step):
                part = batch.slice(start, min(step, n - start))
                data, offsets = wire.encode_rows(rs.columns, part)
                resp.write(data, offsets)
                total += part.num_rows
                if self.ch.poll_attention():
                    raise Attention()
                resp.flush_full()
        return total

    # -- RPC --------------------------------------------------------------------------------------
    def rpc(self, resp: Response, payload: bytes) -> None:
        r = wire.Reader(payload)
        wire.skip_all_headers(r)
        calls: list[tuple[int | None, str | None, list[Param]]] = []
        while r.remaining():
            nlen = r.u16()
            if nlen == 0xFFFF:
                proc_id: int | None = r.u16()
                name: str | None = None
            else:
                proc_id = None
                name = r.take(2 * nlen).decode("utf-16-le")
            r.u16()
            params: list[Param] = []
            while r.remaining():
                if r.buf[r.pos] in (0x80, 0xFE, 0xFF):
                    r.pos += 1
                    break
                pname = r.b_varchar()
                status = r.u8()
                ti = wire.read_type_info(r)
                value = wire.read_value(r, ti, in_row=False)
                spec = ti.spec(pname)
                params.append(Param(pname, status, spec, wire.python_param(spec.type_name, value)))
            if proc_id is None and name is not None:
                short = name.split(".")[-1].strip("[]").lower()
                proc_id = PROC_IDS.get(short)
                if proc_id is not None:
                    name = None
            calls.append((proc_id, name, params))
        for i, (proc_id, name, params) in enumerate(calls):
            self._one_rpc(resp, proc_id, name, params, last=i == len(calls) - 1)

    def _one_rpc(self, resp: Response, proc_id: int | None, name: str | None, params: list[Param], last: bool) -> None:
        outputs: list[tuple[int, Param, object]] = []
        # Output values come back by the ordinal of their RPC parameter; unnamed ones are found through
        # the declaration string (`@o int output`), named ones by their own name.
        ordinals = {p.name.lower(): i for i, p in enumerate(params) if p.name}
        try:
            results: Iterable[Any]
            if proc_id == 10:
                sql, decl = self._text(params, 0), self._text(params, 1) if len(params) > 1 else ""
                results = self._execute(sql, self._bind(decl, params[2:], 2, ordinals))
            elif proc_id == 13:
                decl, sql = self._text(params, 1), self._text(params, 2)
                handle = self._prepare(sql, decl)
                outputs.append((0, params[0], handle))
                results = self._execute(sql, self._bind(decl, params[3:], 3, ordinals))
            elif proc_id == 11:
                decl, sql = self._text(params, 1), self._text(params, 2)
                outputs.append((0, params[0], self._prepare(sql, decl)))
                results = []
            elif proc_id == 12:
                handle = int(params[0].value)  # type: ignore[call-overload]
                if handle not in self.prepared:
                    raise SqlServerError(8179, f"Could not find prepared statement with handle {handle}.")
                sql, decl = self.prepared[handle]
                results = self._execute(sql, self._bind(decl, params[1:], 1, ordinals))
            elif proc_id == 15:
                self.prepared.pop(int(params[0].value), None)  # type: ignore[call-overload]
                results = []
            elif proc_id is not None:
                raise SqlServerError(2812, f"Could not find stored procedure 'sp_cursor {proc_id}'.")
            else:
                assert name is not None
                bound: dict[str, tuple[ColumnSpec | None, object]] = {}
                args = []
                for i, p in enumerate(params):
                    pname = p.name or f"@P{i + 1}"
                    bound[pname] = (p.spec, p.value)
                    args.append(f"{pname}={pname}" if p.name else pname)
                    ordinals.setdefault(pname.lower(), i)
                results = self._execute(f"EXEC {name} " + ", ".join(args), bound)
            returns = self.stream(resp, results, proc=True)
        except (SqlServerError, ValueError, TypeError, IndexError) as exc:
            e = exc if isinstance(exc, SqlServerError) else _internal_error(exc)
            resp.write(wire.error_token(e.number, e.message, e.state, e.severity, e.line))
            resp.write(wire.done(wire.DONE_ERROR | (0 if last else wire.DONE_MORE), 0, 0, wire.TOK_DONEPROC))
            return
        errored = any(rv.name == "__error__" for rv in returns)
        resp.write(wire.returnstatus(1 if errored else 0))
        for ordinal, handle_param, value in outputs:
            resp.write(wire.returnvalue(ordinal, handle_param.name, ColumnSpec(handle_param.name, "int"), value))
        for rv in returns:
            if rv.name == "__error__":
                continue
            key = rv.name.lower() if rv.name.startswith("@") else "@" + rv.name.lower()
            ordinal = ordinals.get(key, 0)
            target = params[ordinal] if ordinal < len(params) else None
            spec = rv.column or (target.spec if target is not None else ColumnSpec(rv.name, "nvarchar", length=-1))
            pname = target.name if target is not None else ""
            resp.write(wire.returnvalue(ordinal, pname, spec, rv.value))
        status = (wire.DONE_ERROR if errored else 0) | (0 if last else wire.DONE_MORE)
        resp.write(wire.done(status, 0, 0, wire.TOK_DONEPROC))

    @staticmethod
    def _text(params: list[Param], i: int) -> str:
        if i >= len(params):
            raise SqlServerError(8144, "Procedure or function has too many arguments specified.")
        v = params[i].value
        return "" if v is None else str(v)

    def _prepare(self, sql: str, decl: str) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.prepared[handle] = (sql, decl)
        return handle

    @staticmethod
    def _decl_names(decl: str) -> list[str]:
        names: list[str] = []
        depth = 0
        token = ""
        for ch in decl + ",":
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                word = token.strip().split()
                if word:
                    names.append(word[0])
                token = ""
            else:
                token += ch
        return names

    def _bind(
        self, decl: str, params: list[Param], first: int, ordinals: dict[str, int]
    ) -> dict[str, tuple[ColumnSpec | None, object]]:
        """Name the values after `decl` (positional ones) and note each name's RPC ordinal."""
        names = self._decl_names(decl)
        out: dict[str, tuple[ColumnSpec | None, object]] = {}
        for i, p in enumerate(params):
            name = p.name or (names[i] if i < len(names) else f"@P{i + 1}")
            if not name.startswith("@"):
                name = "@" + name
            out[name] = (p.spec, p.value)
            ordinals.setdefault(name.lower(), first + i)
        return out

    # -- transactions and bulk --------------------------------------------------------------------
    def transaction_manager(self, resp: Response, payload: bytes) -> None:
        assert self.es is not None
        r = wire.Reader(payload)
        wire.skip_all_headers(r)
        req = r.u16()
        try:
            if req == 5:
                r.u8()
                desc = self.es.begin()
                self.tran_descriptor = desc
                resp.write(wire.envchange(wire.ENV_BEGIN_TRAN, desc, b""))
            elif req in (7, 8):
                r.b_varchar()
                flags = r.u8() if r.remaining() else 0
                old = self.tran_descriptor
                if req == 7:
                    self.es.commit()
                else:
                    self.es.rollback()
                kind = wire.ENV_COMMIT_TRAN if req == 7 else wire.ENV_ROLLBACK_TRAN
                resp.write(wire.envchange(kind, b"", old))
                self.tran_descriptor = b"\x00" * 8
                if flags & 0x01:
                    desc = self.es.begin()
                    self.tran_descriptor = desc
                    resp.write(wire.envchange(wire.ENV_BEGIN_TRAN, desc, b""))
            else:
                raise SqlServerError(3910, f"Transaction manager request {req} is not supported.")
        except SqlServerError as e:
            resp.write(wire.error_token(e.number, e.message, e.state, e.severity, e.line))
            resp.write(wire.done(wire.DONE_ERROR, 0))
            return
        resp.write(wire.done(0, 0))

    def bulk(self, resp: Response, payload: bytes) -> None:
        assert self.es is not None
        request, self.pending_bulk = self.pending_bulk, None
        try:
            if request is None:
                raise SqlServerError(4804, "Bulk load data was received without a preceding INSERT BULK.")
            _specs, batch = wire.read_bulk_rows(payload)
            count = self.es.bulk_insert(request, batch)
        except SqlServerError as e:
            resp.write(wire.error_token(e.number, e.message, e.state, e.severity, e.line))
            resp.write(wire.done(wire.DONE_ERROR, 0))
            return
        resp.write(wire.done(wire.DONE_COUNT, CURCMD["bulk"], count))


# ======================================================================================================
# Server
# ======================================================================================================


class Server:
    """Accepts connections on 127.0.0.1 (or the given host) and runs one Session thread per client."""

    def __init__(self, engine: EngineLike, host: str = "127.0.0.1", port: int = 0, settings: Settings | None = None):
        if (settings or Settings()).encryption not in ENCRYPTION_MODES:
            raise ValueError(f"encryption must be one of {ENCRYPTION_MODES}")
        self.engine = engine
        self.settings = settings or Settings()
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.host, self.port = self.listener.getsockname()[:2]
        self.sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if self.settings.encryption != "notsup":
            self.settings.tls_context()  # a bad certificate or key fails at start-up, not at the first client

    def serve_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _addr = self.listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(sock, self.engine, self.settings, on_close=self._forget)
            with self._lock:
                self.sessions.add(session)
            threading.Thread(target=session.run, name=f"tds-session-{sock.fileno()}", daemon=True).start()

    def _forget(self, session: Session) -> None:
        with self._lock:
            self.sessions.discard(session)

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, name="tds-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            sessions = list(self.sessions)
        for s in sessions:
            with contextlib.suppress(OSError):
                s.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
