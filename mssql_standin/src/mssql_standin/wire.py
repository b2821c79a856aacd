"""TDS 7.4 on the wire: packets, PRELOGIN/LOGIN7, token writers, and type encoders/decoders.

Result rows are encoded a column at a time with numpy/Arrow (no per-value Python work for fixed-width
types, whole-column transcoding for strings) because the stand-in must never be the bottleneck of a
benchmark. Decoding (RPC parameters, bulk-load rows) is per value: clients send far less than they read.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .results import ColumnSpec

# --- packet types and status bits --------------------------------------------------------------------
PKT_SQL_BATCH = 0x01
PKT_RPC = 0x03
PKT_REPLY = 0x04
PKT_ATTENTION = 0x06
PKT_BULK = 0x07
PKT_TM = 0x0E
PKT_LOGIN7 = 0x10
PKT_SSPI = 0x11
PKT_PRELOGIN = 0x12

ST_EOM = 0x01
ST_IGNORE = 0x02
ST_RESET = 0x08
ST_RESET_SKIPTRAN = 0x10

HEADER = struct.Struct(">BBHHBB")
MAX_PACKET = 32767
DEFAULT_PACKET = 4096

# --- PRELOGIN ----------------------------------------------------------------------------------------
ENCRYPT_OFF = 0
ENCRYPT_ON = 1
ENCRYPT_NOT_SUP = 2
ENCRYPT_REQ = 3

# --- tokens --------------------------------------------------------------------------------------------
TOK_COLMETADATA = 0x81
TOK_ERROR = 0xAA
TOK_INFO = 0xAB
TOK_RETURNVALUE = 0xAC
TOK_LOGINACK = 0xAD
TOK_FEATUREEXTACK = 0xAE
TOK_ROW = 0xD1
TOK_NBCROW = 0xD2
TOK_ENVCHANGE = 0xE3
TOK_DONE = 0xFD
TOK_DONEPROC = 0xFE
TOK_DONEINPROC = 0xFF
TOK_RETURNSTATUS = 0x79
TOK_ORDER = 0xA9

DONE_FINAL = 0x00
DONE_MORE = 0x01
DONE_ERROR = 0x02
DONE_INXACT = 0x04
DONE_COUNT = 0x10
DONE_ATTN = 0x20
DONE_SRVERROR = 0x100

ENV_DATABASE = 1
ENV_LANGUAGE = 2
ENV_PACKETSIZE = 4
ENV_COLLATION = 7
ENV_BEGIN_TRAN = 8
ENV_COMMIT_TRAN = 9
ENV_ROLLBACK_TRAN = 10
ENV_RESET_ACK = 18

# SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, flags CI/AS, sort id 52 (code page 1252).
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])
DEFAULT_COLLATION_NAME = "SQL_Latin1_General_CP1_CI_AS"

# Windows collations name a language whose LCID fixes the code page of char/varchar/text bytes.
_COLLATION_LCID = {
    "latin1_general": 0x0409, "sql_latin1_general_cp1": 0x0409, "arabic": 0x0401, "cyrillic_general": 0x0419,
    "greek": 0x0408, "hebrew": 0x040D, "turkish": 0x041F, "polish": 0x0415, "czech": 0x0405,
    "hungarian": 0x040E, "estonian": 0x0425, "lithuanian": 0x0427, "latvian": 0x0426, "thai": 0x041E,
    "vietnamese": 0x042A, "japanese": 0x0411, "chinese_prc": 0x0804, "chinese_taiwan_stroke": 0x0404,
    "korean_wansung": 0x0412,
}  # fmt: skip
_LCID_CODEPAGE = {
    0x0409: "cp1252", 0x0401: "cp1256", 0x0419: "cp1251", 0x0408: "cp1253", 0x040D: "cp1255", 0x041F: "cp1254",
    0x0415: "cp1250", 0x0405: "cp1250", 0x040E: "cp1250", 0x0425: "cp1257", 0x0427: "cp1257", 0x0426: "cp1257",
    0x041E: "cp874", 0x042A: "cp1258", 0x0411: "cp932", 0x0804: "cp936", 0x0404: "cp950", 0x0412: "cp949",
}  # fmt: skip
_SINGLE_BYTE = {"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874"}


def collation_bytes(name: str | None) -> bytes:
    """The 5-byte TDS collation of a collation name (LCID, comparison flags, sort id).

    SQL_Latin1_General_CP1_CI_AS keeps its SQL sort id 52; other names are sent as Windows collations
    (sort id 0), whose LCID tells clients the code page, which is what decoding depends on. Names not in
    the table get the server default.
    """
    if not name or name.lower() == DEFAULT_COLLATION_NAME.lower():
        return COLLATION
    low = name.lower()
    base = max((b for b in _COLLATION_LCID if low.startswith(b)), key=len, default=None)
    if base is None:  # a collation this table does not know: fall back to the server's (cp1252)
        return COLLATION
    parts = set(low[len(base) :].split("_"))
    binary = "bin" in parts or "bin2" in parts
    flags = 0
    if not binary:
        flags |= 0x1 if "ci" in parts else 0
        flags |= 0x2 if "ai" in parts else 0
        flags |= 0x4 if "ks" not in parts else 0
        flags |= 0x8 if "ws" not in parts else 0
    else:
        flags |= 0x10 if "bin" in parts else 0x20
    value = _COLLATION_LCID[base] | (flags << 20)
    return struct.pack("<I", value) + b"\x00"


_LCID_NAME = {0x0409: "Latin1_General", 0x0401: "Arabic", 0x0419: "Cyrillic_General", 0x0408: "Greek",
               0x040D: "Hebrew", 0x041F: "Turkish", 0x0415: "Polish", 0x0405: "Czech", 0x040E: "Hungarian",
               0x0425: "Estonian", 0x0427: "Lithuanian", 0x0426: "Latvian", 0x041E: "Thai", 0x042A: "Vietnamese",
               0x0411: "Japanese", 0x0804: "Chinese_PRC", 0x0404: "Chinese_Taiwan_Stroke",
               0x0412: "Korean_Wansung"}  # fmt: skip


def collation_name(collation: bytes) -> str | None:
    """A collation name for 5 TDS bytes a client sent (the inverse of collation_bytes, where known)."""
    if len(collation) != 5 or collation == COLLATION or collation[4]:
        return DEFAULT_COLLATION_NAME if len(collation) == 5 else None
    value = struct.unpack("<I", collation[:4])[0]
    base = _LCID_NAME.get(value & 0xFFFFF)
    if base is None:
        return None
    flags = (value >> 20) & 0xFF
    if flags & 0x30:
        return f"{base}_{'BIN' if flags & 0x10 else 'BIN2'}"
    name = f"{base}_{'CI' if flags & 0x1 else 'CS'}_{'AI' if flags & 0x2 else 'AS'}"
    return name + ("" if flags & 0x4 else "_KS") + ("" if flags & 0x8 else "_WS")


def collation_codec(collation: bytes) -> str:
    """Python codec for char/varchar/text bytes under a 5-byte TDS collation (cp1252 when unknown)."""
    if len(collation) != 5 or collation == COLLATION:
        return "cp1252"
    if collation[4]:  # a SQL sort order: the stand-in only speaks SQL_Latin1_General_CP1_* ones
        return "cp1252"
    lcid = struct.unpack("<I", collation[:4])[0] & 0xFFFFF
    return _LCID_CODEPAGE.get(lcid, "cp1252")


SERVER_NAME = "STANDIN"
SERVER_VERSION = (16, 0, 1000)

# --- type codes ----------------------------------------------------------------------------------------
T_NULL = 0x1F
T_INT1 = 0x30
T_BIT = 0x32
T_INT2 = 0x34
T_INT4 = 0x38
T_DATETIM4 = 0x3A
T_FLT4 = 0x3B
T_MONEY = 0x3C
T_DATETIME = 0x3D
T_FLT8 = 0x3E
T_MONEY4 = 0x7A
T_INT8 = 0x7F
T_GUID = 0x24
T_INTN = 0x26
T_DECIMAL = 0x37
T_NUMERIC = 0x3F
T_BITN = 0x68
T_DECIMALN = 0x6A
T_NUMERICN = 0x6C
T_FLTN = 0x6D
T_MONEYN = 0x6E
T_DATETIMN = 0x6F
T_DATEN = 0x28
T_TIMEN = 0x29
T_DATETIME2N = 0x2A
T_DATETIMEOFFSETN = 0x2B
T_CHAR = 0x2F
T_VARCHAR = 0x27
T_BINARY = 0x2D
T_VARBINARY = 0x25
T_BIGVARBINARY = 0xA5
T_BIGVARCHAR = 0xA7
T_BIGBINARY = 0xAD
T_BIGCHAR = 0xAF
T_NVARCHAR = 0xE7
T_NCHAR = 0xEF
T_XML = 0xF1
T_UDT = 0xF0
T_TEXT = 0x23
T_IMAGE = 0x22
T_NTEXT = 0x63
T_VARIANT = 0x62

FIXED_LEN = {T_INT1: 1, T_BIT: 1, T_INT2: 2, T_INT4: 4, T_INT8: 8, T_FLT4: 4, T_FLT8: 8, T_MONEY: 8,
             T_MONEY4: 4, T_DATETIME: 8, T_DATETIM4: 4, T_NULL: 0}  # fmt: skip
BYTELEN_TYPES = {T_GUID, T_INTN, T_BITN, T_FLTN, T_MONEYN, T_DATETIMN, T_CHAR, T_VARCHAR, T_BINARY, T_VARBINARY}
USHORTLEN_TYPES = {T_BIGVARBINARY, T_BIGVARCHAR, T_BIGBINARY, T_BIGCHAR, T_NVARCHAR, T_NCHAR}
COLLATED_TYPES = {T_BIGVARCHAR, T_BIGCHAR, T_NVARCHAR, T_NCHAR, T_TEXT, T_NTEXT, T_CHAR, T_VARCHAR}

DAYS_0001_TO_1970 = 719162
DAYS_1900_TO_1970 = 25567
TICKS_0001_TO_1970 = DAYS_0001_TO_1970 * 864_000_000_000
TICKS_PER_DAY = 864_000_000_000
_EXACT = Context(prec=80)  # 38 digits of decimal(38, s) must not be rounded to the default 28


class ProtocolError(Exception):
    """The client sent bytes that do not parse as TDS; the connection is closed."""


# ======================================================================================================
# Packets
# ======================================================================================================


def packet_header(ptype: int, status: int, length: int, spid: int = 0, packet_id: int = 1) -> bytes:
    return HEADER.pack(ptype, status, length, spid, packet_id & 0xFF, 0)


def packetize(ptype: int, payload: bytes | memoryview, size: int, final: bool = True, spid: int = 0) -> list[bytes]:
    """Split a message into packets of at most `size` bytes; EOM only on the last when `final`."""
    body = size - 8
    view = memoryview(payload)
    out: list[bytes] = []
    n = len(view)
    pos = 0
    pid = 1
    while True:
        chunk = view[pos : pos + body]
        pos += len(chunk)
        last = pos >= n
        status = ST_EOM if (last and final) else 0
        out.append(packet_header(ptype, status, len(chunk) + 8, spid, pid) + bytes(chunk))
        pid += 1
        if last:
            return out


# ======================================================================================================
# A cursor over received bytes
# ======================================================================================================


class Reader:
    """Little-endian reads over one received message."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0):
        self.buf = bytes(buf)
        self.pos = pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolError("message ends early")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        if self.pos >= len(self.buf):
            raise ProtocolError("message ends early")
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def _unpack(self, fmt: str, n: int) -> int:
        if self.pos + n > len(self.buf):
            raise ProtocolError("message ends early")
        v: int = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += n
        return v

    def u16(self) -> int:
        return self._unpack("<H", 2)

    def u32(self) -> int:
        return self._unpack("<I", 4)

    def i32(self) -> int:
        return self._unpack("<i", 4)

    def u64(self) -> int:
        return self._unpack("<Q", 8)

    def b_varchar(self) -> str:
        n = self.u8()
        return self.take(2 * n).decode("utf-16-le")

    def us_varchar(self) -> str:
        n = self.u16()
        return self.take(2 * n).decode("utf-16-le")


def skip_all_headers(r: Reader) -> bytes | None:
    """Skip ALL_HEADERS (TDS >= 7.2); return the transaction descriptor it carried, if any."""
    start = r.pos
    total = r.u32()
    descriptor = None
    while r.pos < start + total:
        hstart = r.pos
        hlen = r.u32()
        htype = r.u16()
        if htype == 2:
            descriptor = r.take(8)
        r.pos = hstart + hlen
    r.pos = start + total
    return descriptor


# ======================================================================================================
# PRELOGIN and LOGIN7
# ======================================================================================================


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    """Options of a PRELOGIN message; offsets and lengths are big-endian."""
    opts: dict[int, bytes] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0xFF:
        if pos + 5 > len(payload):
            raise ProtocolError("bad PRELOGIN")
        token, off, length = struct.unpack_from(">BHH", payload, pos)
        opts[token] = payload[off : off + length]
        pos += 5
    return opts


def build_prelogin(encryption: int, fedauth_asked: bool = False) -> bytes:
    """The server's PRELOGIN answer; FEDAUTHREQUIRED only when the client asked (ODBC hangs up otherwise)."""
    major, minor, build = SERVER_VERSION
    options = [
        (0, struct.pack(">BBHH", major, minor, build, 0)),
        (1, bytes([encryption])),
        (2, b"\x00"),
        (3, b""),
        (4, b"\x00"),
    ]
    if fedauth_asked:
        options.append((6, b"\x00"))
    offset = 5 * len(options) + 1
    head = bytearray()
    body = bytearray()
    for token, data in options:
        head += struct.pack(">BHH", token, offset + len(body), len(data))
        body += data
    return bytes(head + b"\xff" + body)


@dataclass
class Login7:
    tds_version: int
    packet_size: int
    option_flags3: int
    hostname: str
    username: str
    password: str
    appname: str
    servername: str
    language: str
    database: str
    features: dict[int, bytes] = field(default_factory=dict)


def _decode_password(raw: bytes) -> str:
    out = bytes((((b ^ 0xA5) << 4) & 0xF0) | (((b ^ 0xA5) >> 4) & 0x0F) for b in raw)
    return out.decode("utf-16-le")


def parse_login7(payload: bytes) -> Login7:
    if len(payload) < 94:
        raise ProtocolError("LOGIN7 too short")
    (_length, version, packet_size) = struct.unpack_from("<III", payload, 0)
    flags3 = payload[27]

    def field_at(off: int, password: bool = False) -> str:
        ib, cch = struct.unpack_from("<HH", payload, off)
        raw = payload[ib : ib + 2 * cch]
        return _decode_password(raw) if password else raw.decode("utf-16-le", errors="replace")

    features: dict[int, bytes] = {}
    if flags3 & 0x10:
        ib_ext, cb_ext = struct.unpack_from("<HH", payload, 56)
        if cb_ext >= 4:
            (fe_off,) = struct.unpack_from("<I", payload, ib_ext)
            pos = fe_off
            while pos < len(payload) and payload[pos] != 0xFF:
                fid = payload[pos]
                (flen,) = struct.unpack_from("<I", payload, pos + 1)
                features[fid] = payload[pos + 5 : pos + 5 + flen]
                pos += 5 + flen
    return Login7(
        tds_version=version,
        packet_size=packet_size,
        option_flags3=flags3,
        hostname=field_at(36),
        username=field_at(40),
        password=field_at(44, password=True),
        appname=field_at(48),
        servername=field_at(52),
        language=field_at(64),
        database=field_at(68),
        features=features,
    )


# ======================================================================================================
# Token writers
# ======================================================================================================


def _b_varchar(s: str) -> bytes:
    enc = s.encode("utf-16-le", errors="replace")[: 2 * 255]
    return bytes([len(enc) // 2]) + enc


def _us_varchar(s: str) -> bytes:
    enc = s.encode("utf-16-le", errors="replace")[: 2 * 0xFFFF]
    return struct.pack("<H", len(enc) // 2) + enc


#: SQL Server shows at most 2,047 characters of a message: a longer one keeps its first 2,044 and gets "..."
MAX_MESSAGE_CHARS = 2047
#: PRINT keeps 4,000 UTF-16 units (nvarchar(4000)); INFO tokens are cut there
MAX_PRINT_UNITS = 4000


def _utf16_prefix(s: str, units: int) -> str:
    """The longest prefix of s of at most `units` UTF-16 code units (never half a surrogate pair)."""
    enc = s.encode("utf-16-le", errors="replace")
    if len(enc) <= 2 * units:
        return s
    cut = enc[: 2 * units]
    if 0xD800 <= int.from_bytes(cut[-2:], "little") <= 0xDBFF:
        cut = cut[:-2]
    return cut.decode("utf-16-le", errors="replace")


def error_text(message: str) -> str:
    """An error's message as SQL Server sends it: at most 2,047 characters (2,044 and an ellipsis)."""
    if len(message.encode("utf-16-le", errors="replace")) <= 2 * MAX_MESSAGE_CHARS:
        return message
    return _utf16_prefix(message, MAX_MESSAGE_CHARS - 3) + "..."


def envchange(kind: int, new: str | bytes, old: str | bytes = "") -> bytes:
    def part(v: str | bytes) -> bytes:
        if isinstance(v, str):
            return _b_varchar(v)
        return bytes([len(v)]) + v

    body = bytes([kind]) + part(new) + part(old)
    return bytes([TOK_ENVCHANGE]) + struct.pack("<H", len(body)) + body


def info_or_error(token: int, number: int, message: str, state: int, severity: int, line: int = 1) -> bytes:
    """An ERROR or INFO token; it never raises, whatever the text or numbers (a session must survive it)."""
    message = error_text(message) if token == TOK_ERROR else _utf16_prefix(message, MAX_PRINT_UNITS)
    number = min(max(number, -(2**31)), 2**31 - 1)
    line = min(max(line, -(2**31)), 2**31 - 1)
    body = (
        struct.pack("<iBB", number, state & 0xFF, severity & 0xFF)
        + _us_varchar(message)
        + _b_varchar(SERVER_NAME)
        + _b_varchar("")
        + struct.pack("<i", line)
    )
    return bytes([token]) + struct.pack("<H", len(body)) + body


def error_token(number: int, message: str, state: int = 1, severity: int = 16, line: int = 1) -> bytes:
    return info_or_error(TOK_ERROR, number, message, state, severity, line)


def info_token(number: int, message: str, state: int = 1, severity: int = 0, line: int = 1) -> bytes:
    return info_or_error(TOK_INFO, number, message, state, severity, line)


def loginack() -> bytes:
    major, minor, build = SERVER_VERSION
    body = (
        b"\x01"
        + bytes([0x74, 0x00, 0x00, 0x04])
        + _b_varchar("Microsoft SQL Server")
        + bytes([major, minor, build >> 8, build & 0xFF])
    )
    return bytes([TOK_LOGINACK]) + struct.pack("<H", len(body)) + body


def featureextack() -> bytes:
    """An empty acknowledgement: no feature is taken up (so UTF-8 support is declined and clients keep
    sending UTF-16/cp1252, and session recovery stays off)."""
    return bytes([TOK_FEATUREEXTACK, 0xFF])


def done(status: int = DONE_FINAL, curcmd: int = 0xC1, count: int = 0, token: int = TOK_DONE) -> bytes:
    return struct.pack("<BHHQ", token, status, curcmd, count)


def returnstatus(value: int) -> bytes:
    return struct.pack("<Bi", TOK_RETURNSTATUS, value)


# ======================================================================================================
# Types: ColumnSpec -> TYPE_INFO
# ======================================================================================================


def _decimal_bytes(precision: int) -> int:
    if precision <= 9:
        return 4
    if precision <= 19:
        return 8
    if precision <= 28:
        return 12
    return 16


def _time_bytes(scale: int) -> int:
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


_FIXED_NOT_NULL = {"int": T_INT4, "bigint": T_INT8, "smallint": T_INT2, "tinyint": T_INT1, "bit": T_BIT,
                   "float": T_FLT8, "real": T_FLT4, "money": T_MONEY, "smallmoney": T_MONEY4,
                   "datetime": T_DATETIME, "smalldatetime": T_DATETIM4}  # fmt: skip
_NULLABLE_FIXED = {"int": (T_INTN, 4), "bigint": (T_INTN, 8), "smallint": (T_INTN, 2), "tinyint": (T_INTN, 1),
                   "bit": (T_BITN, 1), "float": (T_FLTN, 8), "real": (T_FLTN, 4), "money": (T_MONEYN, 8),
                   "smallmoney": (T_MONEYN, 4), "datetime": (T_DATETIMN, 8),
                   "smalldatetime": (T_DATETIMN, 4)}  # fmt: skip
_FIXED_WIDTH = {"int": 4, "bigint": 8, "smallint": 2, "tinyint": 1, "bit": 1, "float": 8, "real": 4, "money": 8,
                "smallmoney": 4, "datetime": 8, "smalldatetime": 4}  # fmt: skip


def _normal_type(spec: ColumnSpec) -> str:
    t = spec.type_name.lower()
    return {"rowversion": "timestamp", "sysname": "nvarchar", "numeric": "numeric"}.get(t, t)


def uses_fixed_type(spec: ColumnSpec) -> bool:
    """NOT NULL fixed-width columns go out as INT4/FLT8/...: one byte less per value, as SQL Server does."""
    return not spec.nullable and _normal_type(spec) in _FIXED_NOT_NULL


def type_info(spec: ColumnSpec) -> bytes:
    t = _normal_type(spec)
    if uses_fixed_type(spec):
        return bytes([_FIXED_NOT_NULL[t]])
    if t in _NULLABLE_FIXED:
        code, n = _NULLABLE_FIXED[t]
        return bytes([code, n])
    if t in ("decimal", "numeric"):
        p = spec.precision or 18
        return bytes([T_DECIMALN if t == "decimal" else T_NUMERICN, 1 + _decimal_bytes(p), p, spec.scale])
    if t == "date":
        return bytes([T_DATEN])
    if t in ("time", "datetime2", "datetimeoffset"):
        code = {"time": T_TIMEN, "datetime2": T_DATETIME2N, "datetimeoffset": T_DATETIMEOFFSETN}[t]
        return bytes([code, _scale(spec)])
    if t == "uniqueidentifier":
        return bytes([T_GUID, 16])
    if t in ("char", "varchar", "nchar", "nvarchar"):
        code = {"char": T_BIGCHAR, "varchar": T_BIGVARCHAR, "nchar": T_NCHAR, "nvarchar": T_NVARCHAR}[t]
        length = 0xFFFF if spec.length == -1 else max(1, min(spec.length or 8000, 8000))
        return bytes([code]) + struct.pack("<H", length) + collation_bytes(spec.collation)
    if t in ("binary", "varbinary"):
        code = T_BIGBINARY if t == "binary" else T_BIGVARBINARY
        length = 0xFFFF if spec.length == -1 else max(1, min(spec.length or 8000, 8000))
        return bytes([code]) + struct.pack("<H", length)
    if t == "timestamp":
        return bytes([T_BIGBINARY]) + struct.pack("<H", 8)
    if t == "xml":
        return bytes([T_XML, 0])
    if t in ("text", "ntext", "image"):
        code = {"text": T_TEXT, "ntext": T_NTEXT, "image": T_IMAGE}[t]
        out = bytes([code]) + struct.pack("<I", 0x7FFFFFFF if t != "ntext" else 0x7FFFFFFE)
        if t != "image":
            out += collation_bytes(spec.collation)
        return out + b"\x01" + _us_varchar("T")
    if t == "sql_variant":
        return bytes([T_VARIANT]) + struct.pack("<I", 8016)
    if t in UDT_ASSEMBLIES:
        return udt_type_info(t)
    raise ValueError(f"no TDS type for {spec.type_name!r}")


#: SQL Server's CLR types: the assembly-qualified names sent in UDT_INFO (MS-TDS 2.2.5.5.2)
UDT_ASSEMBLIES = {
    name: f"Microsoft.SqlServer.Types.{cls}, Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, "
    "PublicKeyToken=89845dcd8080cc91"
    for name, cls in (("geography", "SqlGeography"), ("geometry", "SqlGeometry"), ("hierarchyid", "SqlHierarchyId"))
}


def udt_type_info(t: str) -> bytes:
    """UDTTYPE with UDT_INFO: max byte size (0xFFFF for the unlimited spatial types), database, schema, type name,
    assembly-qualified name."""
    max_size = 892 if t == "hierarchyid" else 0xFFFF
    return (
        bytes([T_UDT])
        + struct.pack("<H", max_size)
        + _b_varchar("")
        + _b_varchar("sys")
        + _b_varchar(t)
        + _us_varchar(UDT_ASSEMBLIES[t])
    )


def _scale(spec: ColumnSpec) -> int:
    return 7 if spec.scale is None else min(max(spec.scale, 0), 7)


def colmetadata(columns: Sequence[ColumnSpec]) -> bytes:
    out = bytearray([TOK_COLMETADATA])
    out += struct.pack("<H", len(columns))
    for c in columns:
        flags = (0x01 if c.nullable else 0) | 0x08 | (0x10 if c.identity else 0) | (0x20 if c.computed else 0)
        user_type = 0x50 if _normal_type(c) == "timestamp" else c.user_type
        out += struct.pack("<IH", user_type, flags)
        out += type_info(c)
        out += _b_varchar(c.name)
    return bytes(out)


# ======================================================================================================
# Vectorised value encoding (Arrow column -> per-row byte segments)
# ======================================================================================================


@dataclass
class Fixed:
    """Every row's bytes in one (n, w) matrix; `lengths` (if any) says how many leading bytes each row uses.

    `prefixed`: the bytes start with the 1-byte length prefix of the N types (w, or 0 for a NULL per `valid`),
    which _pack writes in place rather than each column copying its matrix once more to add it."""

    matrix: np.ndarray
    lengths: np.ndarray | None = None
    prefixed: bool = False
    valid: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.matrix.shape[1]) + self.prefixed


@dataclass
class Var:
    """Per-row byte strings concatenated row-wise (prefix, data, suffix...): fixed-width parts stay matrices,
    so that encode_rows can pack them with their neighbours in one pass."""

    parts: list[Fixed | pa.Array]


Segment = Fixed | Var


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    bitmap = arr.buffers()[0]
    if bitmap is None:
        return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    first, skip = divmod(arr.offset, 8)  # a slice of a batch: unpack only its own bytes of the bitmap
    own = np.frombuffer(bitmap, dtype=np.uint8)[first : (arr.offset + len(arr) + 7) // 8]
    return np.unpackbits(own, bitorder="little")[skip : skip + len(arr)].view(bool)


def _num(arr: pa.Array, dtype: type | np.dtype, fill: object = 0) -> np.ndarray:
    """The values as numpy; NULL slots hold `fill`, or whatever the Arrow buffer holds for fixed-width numbers
    read in place (`fill` None: the caller masks NULLs out)."""
    if fill is None and arr.null_count and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raw = np.frombuffer(arr.buffers()[1], dtype=np.dtype(arr.type.to_pandas_dtype()))
        return raw[arr.offset : arr.offset + len(arr)].astype(dtype, copy=False)
    if arr.null_count:
        fill = 0 if fill is None else fill
        arr = pc.fill_null(arr, pa.scalar(fill, arr.type))
    out = np.asarray(arr.to_numpy(zero_copy_only=False))
    return out.astype(dtype, copy=False)


def _le_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """(n,) integers -> (n, width) little-endian bytes; width may be 3 or 5 (date/time parts)."""
    v = np.ascontiguousarray(values.astype("<i8" if values.dtype.kind == "i" else "<u8"))
    return v.view(np.uint8).reshape(-1, 8)[:, :width]


def _with_prefix(data: np.ndarray, valid: np.ndarray | None, nullable: bool) -> Fixed:
    """Add the 1-byte length prefix of the N types; a NULL is the lone byte 0."""
    if not nullable:
        return Fixed(data)
    if valid is None:
        return Fixed(data, prefixed=True)
    return Fixed(data, np.where(valid, data.shape[1] + 1, 1).astype(np.int64), prefixed=True, valid=valid)


def _decimal_units(arr: pa.Array, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """decimal column -> (low uint64, high int64) of the unscaled two's-complement integer at `scale`."""
    if not pa.types.is_decimal(arr.type) or arr.type.scale != scale or arr.type.bit_width != 128:
        arr = pc.cast(arr, pa.decimal128(38, scale))
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(Decimal(0), arr.type))
    words = np.frombuffer(arr.buffers()[1], dtype="<u8")[2 * arr.offset : 2 * (arr.offset + len(arr))]
    words = words.reshape(-1, 2)
    return words[:, 0].copy(), words[:, 1].view("<i8").copy()


def _arrow_int64(arr: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type) or pa.types.is_time(arr.type):
        return arr.view(pa.int64()) if arr.type.bit_width == 64 else pc.cast(arr.view(pa.int32()), pa.int64())
    return pc.cast(arr, pa.int64()) if arr.type != pa.int64() else arr


def _ticks_2000ns(arr: pa.Array) -> pa.Array:
    """datetime2 -> int64 100 ns since 0001-01-01 (accepts the convention or an Arrow timestamp)."""
    if pa.types.is_timestamp(arr.type):
        us = pc.cast(arr, pa.timestamp("us", arr.type.tz)).view(pa.int64())
        return pc.add(pc.multiply(us, 10), TICKS_0001_TO_1970)
    return _arrow_int64(arr)


def _time_ticks(arr: pa.Array) -> pa.Array:
    if pa.types.is_time(arr.type):
        unit = arr.type.unit
        raw = _arrow_int64(arr)
        return {"s": pc.multiply(raw, 10_000_000), "ms": pc.multiply(raw, 10_000), "us": pc.multiply(raw, 10)}.get(
            unit, pc.divide(raw, 100)
        )
    return _arrow_int64(arr)


def _scaled_time(ticks: np.ndarray, scale: int) -> np.ndarray:
    return ticks // (10 ** (7 - scale))


def _datetime_bytes(arr: pa.Array, full: bool, nullable: bool) -> np.ndarray:
    """datetime (days since 1900 and 1/300 s ticks, `full`) or smalldatetime (days and minutes) bytes, rounded
    as SQL Server rounds; NULL slots (masked out by the caller when `nullable`) hold anything."""
    n = len(arr)
    if not pa.types.is_timestamp(arr.type):
        arr = pc.cast(arr, pa.timestamp("us"))
    if arr.type.unit != "us":
        arr = pc.cast(arr, pa.timestamp("us", arr.type.tz))
    us = _num(arr.view(pa.int64()), np.int64, None if nullable else 0)
    days, rem = np.divmod(us, 86_400_000_000)
    days = days + DAYS_1900_TO_1970
    if full:
        ticks = (rem * 3 + 5000) // 10000
        days = days + ticks // 25_920_000
        pair = np.empty((n, 2), dtype="<i4")
        pair[:, 0] = days
        pair[:, 1] = ticks % 25_920_000
        return pair.view(np.uint8).reshape(n, 8)
    minutes = (rem + 30_000_000) // 60_000_000
    days = days + minutes // 1440
    pair16 = np.empty((n, 2), dtype="<u2")
    pair16[:, 0] = days
    pair16[:, 1] = minutes % 1440
    return pair16.view(np.uint8).reshape(n, 4)


def encode_fixed_column(spec: ColumnSpec, arr: pa.Array) -> Segment:
    """Encode one column's values (no type prefix) as SQL Server puts them in ROW tokens."""
    t = _normal_type(spec)
    n = len(arr)
    valid = _valid_mask(arr)
    nullable = not uses_fixed_type(spec)
    if t in ("int", "bigint", "smallint", "tinyint", "bit", "float", "real"):
        dtype = {"int": "<i4", "bigint": "<i8", "smallint": "<i2", "tinyint": "u1", "bit": "u1", "float": "<f8",
                 "real": "<f4"}[t]  # fmt: skip
        if t == "bit" and pa.types.is_boolean(arr.type):
            arr = pc.cast(arr, pa.uint8())
        values = np.ascontiguousarray(_num(arr, np.dtype(dtype), None if nullable else 0))
        return _with_prefix(values.view(np.uint8).reshape(n, values.itemsize), valid, nullable)
    if t in ("money", "smallmoney"):
        lo, hi = _decimal_units(arr, 4) if not pa.types.is_integer(arr.type) else (None, None)
        units = lo.view("<i8") if lo is not None else _num(arr, np.int64)
        if t == "smallmoney":
            data = units.astype("<i4").view(np.uint8).reshape(n, 4)
        else:
            pair = np.empty((n, 2), dtype="<u4")
            pair[:, 0] = (units >> 32).astype(np.int64) & 0xFFFFFFFF
            pair[:, 1] = units & 0xFFFFFFFF
            data = pair.view(np.uint8).reshape(n, 8)
        return _with_prefix(data, valid, nullable)
    if t in ("decimal", "numeric"):
        p = spec.precision or 18
        width = _decimal_bytes(p)
        lo, hi = _decimal_units(arr, spec.scale)
        neg = hi < 0
        hi_u = hi.view("<u8")
        mlo = np.where(neg, ~lo + np.uint64(1), lo)
        carry = (neg & (mlo == 0)).astype(np.uint64)
        mhi = np.where(neg, ~hi_u + carry, hi_u)
        m = np.empty((n, 2), dtype="<u8")
        m[:, 0] = mlo
        m[:, 1] = mhi
        data = np.empty((n, 1 + width), dtype=np.uint8)
        data[:, 0] = np.where(neg, 0, 1)
        data[:, 1:] = m.view(np.uint8).reshape(n, 16)[:, :width]
        return _with_prefix(data, valid, True)
    if t == "date":
        days = _num(_arrow_int64(pc.cast(arr, pa.date32()) if not pa.types.is_date32(arr.type) else arr), np.int64)
        return _with_prefix(_le_bytes(days + DAYS_0001_TO_1970, 3), valid, True)
    if t == "time":
        sc = _scale(spec)
        ticks = _num(_time_ticks(arr), np.int64)
        return _with_prefix(_le_bytes(_scaled_time(ticks, sc), _time_bytes(sc)), valid, True)
    if t == "datetime2":
        sc = _scale(spec)
        ticks = _num(_ticks_2000ns(arr), np.int64)
        days, tod = np.divmod(ticks, TICKS_PER_DAY)
        data = np.hstack([_le_bytes(_scaled_time(tod, sc), _time_bytes(sc)), _le_bytes(days, 3)])
        return _with_prefix(data, valid, True)
    if t == "datetimeoffset":
        sc = _scale(spec)
        if pa.types.is_struct(arr.type):
            utc = _num(arr.field("utc"), np.int64)
            off = _num(arr.field("offset_min"), np.int64)
        else:
            utc = _num(_ticks_2000ns(arr), np.int64)
            off = np.zeros(n, dtype=np.int64)
        days, tod = np.divmod(utc, TICKS_PER_DAY)
        data = np.hstack([_le_bytes(_scaled_time(tod, sc), _time_bytes(sc)), _le_bytes(days, 3), _le_bytes(off, 2)])
        return _with_prefix(data, valid, True)
    if t in ("datetime", "smalldatetime"):
        return _with_prefix(_datetime_bytes(arr, t == "datetime", nullable), valid, nullable)
    if t == "uniqueidentifier":
        if arr.null_count:
            arr = pc.fill_null(arr, pa.scalar(b"\0" * 16, pa.binary(16)))
        if not pa.types.is_fixed_size_binary(arr.type):
            arr = pc.cast(arr, pa.binary(16))
        raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[16 * arr.offset : 16 * (arr.offset + n)]
        data = raw.reshape(n, 16)[:, [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]]
        return _with_prefix(data, valid, True)
    return _encode_var_column(spec, arr, t, valid)


def _large_binary(values: np.ndarray | bytes, offsets: np.ndarray) -> pa.Array:
    offs = np.ascontiguousarray(offsets, dtype=np.int64)
    buf = pa.py_buffer(values if isinstance(values, bytes) else np.ascontiguousarray(values))
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offs) - 1, [None, pa.py_buffer(offs), buf])


def _string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, offsets starting at 0) of a string/binary array, nulls as empty (read in place when the
    NULL slots already are, as Arrow producers usually leave them)."""
    if arr.null_count and pa.types.is_fixed_size_binary(arr.type):
        arr = pc.fill_null(arr, pa.scalar(b"", arr.type))
    if pa.types.is_fixed_size_binary(arr.type):
        w = arr.type.byte_width
        data = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[w * arr.offset : w * (arr.offset + len(arr))]
        return data, np.arange(len(arr) + 1, dtype=np.int64) * w
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype="<i8" if large else "<i4")[arr.offset : arr.offset + len(arr) + 1]
    offs = offs.astype(np.int64)
    valid = _valid_mask(arr)
    if valid is not None and np.diff(offs)[~valid].any():
        text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
        return _string_parts(pc.fill_null(arr, pa.scalar("" if text else b"", arr.type)))
    data = np.frombuffer(bufs[2], dtype=np.uint8)[offs[0] : offs[-1]] if bufs[2] is not None else np.empty(0, np.uint8)
    return data, offs - offs[0]


def _text_bytes(arr: pa.Array, utf16: bool, codec: str = "cp1252") -> tuple[np.ndarray | bytes, np.ndarray]:
    """Transcode a whole string column at once: UTF-16LE (nchar family) or the collation's code page
    (char family; characters it lacks become '?', as in SQL Server).

    The offsets come from per-value character counts (Arrow's utf8_length), not from a pass over every byte:
    a UTF-16 value is 2 bytes per character plus 2 per character beyond the BMP, a single-byte code page value
    one byte per character."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            arr = arr.cast(pa.large_string())
        else:
            arr = pc.cast(arr, pa.large_string())
    u8, offs = _string_parts(arr)
    top = int(u8.max()) if len(u8) else 0
    if top < 0x80:
        if not utf16:
            return u8, offs
        return u8.astype("<u2").view(np.uint8), offs * 2
    if not utf16 and codec not in _SINGLE_BYTE:  # double-byte code pages: lengths differ per character
        values = [(v or "").encode(codec, errors="replace") for v in arr.to_pylist()]
        lens = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        return b"".join(values), np.concatenate([[0], np.cumsum(lens)])
    chars = pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if not utf16:
        return str(u8.data, "utf-8").encode(codec, errors="replace"), np.concatenate([[0], np.cumsum(chars)])
    if top >= 0xF0:  # characters beyond the BMP (a 4-byte UTF-8 lead) take a surrogate pair
        owner = np.searchsorted(offs, np.flatnonzero(u8 >= 0xF0), side="right") - 1
        chars += np.bincount(owner, minlength=len(chars))
    return str(u8.data, "utf-8").encode("utf-16-le"), np.concatenate([[0], np.cumsum(chars)]) * 2


def _var_parts(arr: pa.Array, t: str, collation: str | None = None) -> tuple[np.ndarray | bytes, np.ndarray]:
    if t in ("nchar", "nvarchar", "ntext", "xml", "sql_variant"):
        return _text_bytes(arr, True)
    if t in ("char", "varchar", "text"):
        return _text_bytes(arr, False, collation_codec(collation_bytes(collation)))
    if not (
        pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or pa.types.is_fixed_size_binary(arr.type)
    ):
        arr = pc.cast(arr, pa.large_binary())
    return _string_parts(arr)


def _variant_numbers(arr: pa.Array) -> Segment:
    """sql_variant values of a numeric Arrow column (MS-TDS SSVARIANTTYPE: 4-byte length, BaseType, PropBytes 0,
    the value): whole numbers as int, or bigint beyond int's range; floats as float."""
    out: list[bytes] = []
    for v in arr.to_pylist():
        if v is None:
            out.append(b"\0\0\0\0")
        elif isinstance(v, float):
            out.append(struct.pack("<IBBd", 10, T_FLT8, 0, v))
        elif -(2**31) <= v < 2**31:
            out.append(struct.pack("<IBBi", 6, T_INT4, 0, v))
        else:
            out.append(struct.pack("<IBBq", 10, T_INT8, 0, v))
    return Var([pa.array(out, pa.large_binary())])


def _variant_bodies(arr: pa.Array, valid: np.ndarray | None) -> Segment:
    """Stored sql_variants (variant.py: SSVARIANT_INSTANCE bytes) behind their 4-byte length; NULL is length 0."""
    data, offs = _string_parts(arr)
    lengths = np.diff(offs)
    head = _le_bytes(lengths, 4).copy()
    if valid is not None:
        head[~valid] = 0
    return Var([Fixed(head), _large_binary(data, offs)])


def _encode_var_column(spec: ColumnSpec, arr: pa.Array, t: str, valid: np.ndarray | None) -> Segment:
    n = len(arr)
    if t == "sql_variant" and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return _variant_numbers(arr)
    if t == "sql_variant" and (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        return _variant_bodies(arr, valid)
    data, offs = _var_parts(arr, t, spec.collation)
    lengths = np.diff(offs)
    data_arr = _large_binary(data if isinstance(data, bytes) else np.asarray(data), offs)
    is_null = ~valid if valid is not None else np.zeros(n, dtype=bool)
    if t == "sql_variant":
        head = np.empty((n, 13), dtype=np.uint8)
        head[:, :4] = _le_bytes(lengths + 9, 4)
        head[:, 4] = T_NVARCHAR
        head[:, 5] = 7
        head[:, 6:8] = np.frombuffer(struct.pack("<H", 8000), np.uint8)
        head[:, 8:13] = np.frombuffer(COLLATION, np.uint8)
        head[is_null, :4] = 0
        return Var([Fixed(head, np.where(is_null, 4, 13)), data_arr])
    if t in ("text", "ntext", "image"):
        head = np.zeros((n, 29), dtype=np.uint8)
        head[:, 0] = 16
        head[:, 1:17] = 0xAB
        head[:, 25:29] = _le_bytes(lengths, 4)
        head[is_null, 0] = 0
        return Var([Fixed(head, np.where(is_null, 1, 29)), data_arr])
    plp = spec.length == -1 or t == "xml" or t in UDT_ASSEMBLIES  # UDT values are always PLP, whatever their max size
    if not plp:
        head = _le_bytes(lengths, 2).copy()
        head[is_null] = 0xFF
        return Var([Fixed(head), data_arr])
    head = np.zeros((n, 12), dtype=np.uint8)
    head[:, :8] = _le_bytes(lengths, 8)
    head[:, 8:12] = _le_bytes(lengths, 4)
    head[is_null, :8] = 0xFF
    head_len = np.where(is_null | (lengths == 0), 8, 12)
    tail = Fixed(np.zeros((n, 4), dtype=np.uint8), np.where(is_null, 0, 4))
    return Var([Fixed(head, head_len), data_arr, tail])


_EMPTY = pa.scalar(b"", pa.large_binary())


def _pack(run: list[Fixed]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width parts side by side in each row, the unused tail bytes of each part dropped: (bytes, row
    start offsets with a final end offset)."""
    n = run[0].matrix.shape[0]
    width = sum(f.width for f in run)
    m = np.empty((n, width), dtype=np.uint8)
    mask: np.ndarray | None = None
    rowlen = np.zeros(n, dtype=np.int64)
    pos = 0
    for f in run:
        w = f.width
        if f.prefixed:
            m[:, pos] = w - 1 if f.valid is None else np.where(f.valid, w - 1, 0)
        m[:, pos + f.prefixed : pos + w] = f.matrix
        if f.lengths is not None:
            if mask is None:
                mask = np.ones((n, width), dtype=bool)
            mask[:, pos : pos + w] = np.arange(w)[None, :] < f.lengths[:, None]
            rowlen += f.lengths
        else:
            rowlen += w
        pos += w
    if mask is None:
        return m.reshape(-1), np.arange(n + 1, dtype=np.int64) * width
    return m[mask], np.concatenate([[0], np.cumsum(rowlen)])


def encode_rows(columns: Sequence[ColumnSpec], batch: pa.RecordBatch) -> tuple[memoryview, np.ndarray]:
    """ROW tokens for every row of `batch`: (bytes, row start offsets with a final end offset).

    Each row is its fixed-width runs (token byte, fixed columns, length prefixes), packed a run at a time,
    joined with the variable-length data between them."""
    n = batch.num_rows
    parts: list[Fixed | pa.Array] = [Fixed(np.full((n, 1), TOK_ROW, dtype=np.uint8))]
    for i, spec in enumerate(columns):
        seg = encode_fixed_column(spec, batch.column(i))
        parts.extend(seg.parts if isinstance(seg, Var) else [seg])
    arrays: list[pa.Array] = []
    run: list[Fixed] = []
    for part in [*parts, None]:
        if isinstance(part, Fixed):
            run.append(part)
            continue
        if run:
            if part is None and not arrays:  # every column fixed-width: the packed run is the answer
                flat, offsets = _pack(run)
                return memoryview(flat.data), offsets
            arrays.append(_large_binary(*_pack(run)))
            run = []
        if part is not None:
            arrays.append(part)
    joined = pc.binary_join_element_wise(*arrays, _EMPTY)
    offs = np.frombuffer(joined.buffers()[1], dtype="<i8")[joined.offset : joined.offset + n + 1]
    values = joined.buffers()[2]
    start = int(offs[0])
    view = memoryview(values)[start : int(offs[-1])] if values is not None else memoryview(b"")
    return view, offs - start


def encode_value(spec: ColumnSpec, value: object) -> bytes:
    """One value (with its length prefix) in the ResultSet conventions, e.g. for RETURNVALUE."""
    arr = pa.array([value], type=arrow_type(spec))
    data, _ = encode_rows([spec], pa.record_batch([arr], names=["v"]))
    return bytes(data)[1:]


def returnvalue(ordinal: int, name: str, spec: ColumnSpec, value: object, output: bool = True) -> bytes:
    spec = ColumnSpec(spec.name, spec.type_name, spec.length, spec.precision, spec.scale, nullable=True)
    return (
        bytes([TOK_RETURNVALUE])
        + struct.pack("<H", ordinal)
        + _b_varchar(name)
        + bytes([0x01 if output else 0x02])
        + struct.pack("<IH", 0, 0x01)
        + type_info(spec)
        + encode_value(spec, value)
    )


def arrow_type(spec: ColumnSpec) -> pa.DataType:
    """The Arrow type of a column in the ResultSet conventions (results.py)."""
    t = _normal_type(spec)
    simple = {"int": pa.int32(), "bigint": pa.int64(), "smallint": pa.int16(), "tinyint": pa.uint8(),
              "bit": pa.bool_(), "float": pa.float64(), "real": pa.float32(), "date": pa.date32(),
              "time": pa.int64(), "datetime": pa.timestamp("us"), "smalldatetime": pa.timestamp("us"),
              "datetime2": pa.int64(), "uniqueidentifier": pa.binary(16),
              "datetimeoffset": pa.struct([("utc", pa.int64()), ("offset_min", pa.int16())])}  # fmt: skip
    if t in simple:
        return simple[t]
    if t in ("decimal", "numeric"):
        return pa.decimal128(spec.precision or 18, spec.scale)
    if t == "money":
        return pa.decimal128(19, 4)
    if t == "smallmoney":
        return pa.decimal128(10, 4)
    if t in ("binary", "varbinary", "timestamp", "image") or t in UDT_ASSEMBLIES:
        return pa.binary()
    return pa.string()


# ======================================================================================================
# Decoding: TYPE_INFO and values sent by clients (RPC parameters, bulk-load rows)
# ======================================================================================================


@dataclass
class TypeInfo:
    code: int
    max_length: int = 0
    precision: int = 0
    scale: int = 0
    collation: bytes = b""
    plp: bool = False

    def spec(self, name: str = "", nullable: bool = True) -> ColumnSpec:
        """The SQL Server type this wire type stands for."""
        c, n = self.code, self.max_length
        kw: dict[str, object] = {}
        if c in (T_INT1, T_INT2, T_INT4, T_INT8) or (c == T_INTN):
            size = FIXED_LEN.get(c, n)
            tn = {1: "tinyint", 2: "smallint", 4: "int", 8: "bigint"}[size]
        elif c in (T_BIT, T_BITN):
            tn = "bit"
        elif c in (T_FLT4, T_FLT8, T_FLTN):
            tn = "real" if FIXED_LEN.get(c, n) == 4 else "float"
        elif c in (T_MONEY, T_MONEY4, T_MONEYN):
            tn = "smallmoney" if FIXED_LEN.get(c, n) == 4 else "money"
            kw = {"precision": 10 if tn == "smallmoney" else 19, "scale": 4}
        elif c in (T_DATETIME, T_DATETIM4, T_DATETIMN):
            tn = "smalldatetime" if FIXED_LEN.get(c, n) == 4 else "datetime"
        elif c in (T_DECIMALN, T_NUMERICN, T_DECIMAL, T_NUMERIC):
            tn = "numeric" if c in (T_NUMERICN, T_NUMERIC) else "decimal"
            kw = {"precision": self.precision, "scale": self.scale}
        elif c == T_DATEN:
            tn = "date"
        elif c in (T_TIMEN, T_DATETIME2N, T_DATETIMEOFFSETN):
            tn = {T_TIMEN: "time", T_DATETIME2N: "datetime2", T_DATETIMEOFFSETN: "datetimeoffset"}[c]
            kw = {"scale": self.scale}
        elif c == T_GUID:
            tn = "uniqueidentifier"
        elif c in (T_BIGVARCHAR, T_VARCHAR, T_BIGCHAR, T_CHAR):
            tn = "char" if c in (T_BIGCHAR, T_CHAR) else "varchar"
            kw = {"length": -1 if self.plp else n}
        elif c in (T_NVARCHAR, T_NCHAR):
            tn = "nchar" if c == T_NCHAR else "nvarchar"
            kw = {"length": -1 if self.plp else n}
        elif c in (T_BIGVARBINARY, T_VARBINARY, T_BIGBINARY, T_BINARY):
            tn = "binary" if c in (T_BIGBINARY, T_BINARY) else "varbinary"
            kw = {"length": -1 if self.plp else n}
        elif c == T_XML:
            tn, kw = "xml", {"length": -1}
        elif c in (T_TEXT, T_NTEXT, T_IMAGE):
            tn, kw = {T_TEXT: "text", T_NTEXT: "ntext", T_IMAGE: "image"}[c], {"length": -1}
        elif c == T_VARIANT:
            tn = "sql_variant"
        elif c == T_NULL:
            tn = "int"
        else:
            raise ProtocolError(f"unsupported TDS type 0x{c:02x}")
        if self.collation and tn in ("char", "varchar", "text", "nchar", "nvarchar", "ntext"):
            kw["collation"] = collation_name(self.collation)
        return ColumnSpec(name=name, type_name=tn, nullable=nullable, **kw)  # type: ignore[arg-type]


def read_type_info(r: Reader, in_colmetadata: bool = False) -> TypeInfo:
    code = r.u8()
    ti = TypeInfo(code)
    if code in FIXED_LEN:
        ti.max_length = FIXED_LEN[code]
    elif code in (T_DECIMALN, T_NUMERICN, T_DECIMAL, T_NUMERIC):
        ti.max_length = r.u8()
        ti.precision = r.u8()
        ti.scale = r.u8()
    elif code == T_DATEN:
        ti.max_length = 3
    elif code in (T_TIMEN, T_DATETIME2N, T_DATETIMEOFFSETN):
        ti.scale = r.u8()
    elif code in BYTELEN_TYPES:
        ti.max_length = r.u8()
        if code in (T_CHAR, T_VARCHAR):
            ti.collation = r.take(5)
    elif code in USHORTLEN_TYPES:
        ti.max_length = r.u16()
        ti.plp = ti.max_length == 0xFFFF
        if code in COLLATED_TYPES:
            ti.collation = r.take(5)
    elif code in (T_TEXT, T_NTEXT, T_IMAGE):
        ti.max_length = r.u32()
        if code != T_IMAGE:
            ti.collation = r.take(5)
        if in_colmetadata:
            for _ in range(r.u8()):
                r.us_varchar()
    elif code == T_XML:
        ti.plp = True
        if r.u8():
            r.b_varchar()
            r.b_varchar()
            r.us_varchar()
    elif code == T_VARIANT:
        ti.max_length = r.u32()
    elif code == T_UDT:  # UDT_INFO_IN_COLMETADATA has a max size and the assembly name; UDT_INFO_IN_RPC does not
        ti.max_length = r.u16() if in_colmetadata else 0xFFFF
        r.b_varchar()
        r.b_varchar()
        r.b_varchar()
        if in_colmetadata:
            r.us_varchar()
        ti.plp = True  # a UDT value is always PLP (PARTLENTYPE)
        ti.code = T_BIGVARBINARY
    else:
        raise ProtocolError(f"unsupported TDS type 0x{code:02x}")
    return ti


def _read_plp(r: Reader) -> bytes | None:
    total = r.u64()
    if total == 0xFFFFFFFFFFFFFFFF:
        return None
    chunks = []
    while True:
        n = r.u32()
        if n == 0:
            break
        chunks.append(r.take(n))
    return b"".join(chunks)


def _epoch_days_to_date(days_since_0001: int) -> dt.date:
    return dt.date(1, 1, 1) + dt.timedelta(days=days_since_0001)


def _decode_data(ti: TypeInfo, data: bytes) -> object:
    """Bytes of one non-NULL value -> the Python form of the ResultSet's Arrow conventions."""
    c = ti.code
    if c in (T_INT1, T_INT2, T_INT4, T_INT8, T_INTN):
        return int.from_bytes(data, "little", signed=len(data) != 1)
    if c in (T_BIT, T_BITN):
        return data[0] != 0
    if c in (T_FLT4, T_FLT8, T_FLTN):
        return struct.unpack("<f" if len(data) == 4 else "<d", data)[0]
    if c in (T_MONEY, T_MONEY4, T_MONEYN):
        if len(data) == 4:
            units = struct.unpack("<i", data)[0]
        else:
            hi, lo = struct.unpack("<iI", data)
            units = (hi << 32) | lo
        return Decimal(units).scaleb(-4, _EXACT)
    if c in (T_DECIMALN, T_NUMERICN, T_DECIMAL, T_NUMERIC):
        mag = int.from_bytes(data[1:], "little")
        return Decimal(mag if data[0] == 1 else -mag).scaleb(-ti.scale, _EXACT)
    if c in (T_DATETIME, T_DATETIMN) and len(data) == 8:
        days, ticks = struct.unpack("<iI", data)
        ms = (ticks * 10 + 1) // 3
        return dt.datetime(1900, 1, 1) + dt.timedelta(days=days, milliseconds=ms)
    if c in (T_DATETIM4, T_DATETIMN):
        days, minutes = struct.unpack("<HH", data)
        return dt.datetime(1900, 1, 1) + dt.timedelta(days=days, minutes=minutes)
    if c == T_DATEN:
        return _epoch_days_to_date(int.from_bytes(data, "little"))
    if c in (T_TIMEN, T_DATETIME2N, T_DATETIMEOFFSETN):
        tb = _time_bytes(ti.scale)
        ticks = int.from_bytes(data[:tb], "little") * 10 ** (7 - ti.scale)
        if c == T_TIMEN:
            return ticks
        days = int.from_bytes(data[tb : tb + 3], "little")
        total = days * TICKS_PER_DAY + ticks
        if c == T_DATETIME2N:
            return total
        offset = struct.unpack("<h", data[tb + 3 : tb + 5])[0]
        return {"utc": total, "offset_min": offset}
    if c == T_GUID:
        return uuid.UUID(bytes_le=data).bytes
    if c in (T_NVARCHAR, T_NCHAR, T_NTEXT, T_XML):
        return data.decode("utf-16-le", errors="surrogatepass")
    if c in (T_BIGVARCHAR, T_BIGCHAR, T_VARCHAR, T_CHAR, T_TEXT):
        return data.decode(collation_codec(ti.collation), errors="replace")
    if c in (T_BIGVARBINARY, T_BIGBINARY, T_VARBINARY, T_BINARY, T_IMAGE):
        return data
    raise ProtocolError(f"cannot decode TDS type 0x{c:02x}")


def _read_variant(r: Reader) -> object:
    total = r.u32()
    if total == 0:
        return None
    end = r.pos + total
    base = r.u8()
    nprop = r.u8()
    props = Reader(r.take(nprop))
    ti = TypeInfo(base)
    if base in (T_DECIMALN, T_NUMERICN):
        ti.precision, ti.scale = props.u8(), props.u8()
    elif base in (T_TIMEN, T_DATETIME2N, T_DATETIMEOFFSETN):
        ti.scale = props.u8()
    data = r.take(end - r.pos)
    return _decode_data(ti, data)


def python_param(type_name: str, value: object) -> object:
    """An RPC parameter as the engine takes it: plain Python values (uuid.UUID, datetime, time, aware
    datetime for datetimeoffset). Python's clocks stop at microseconds, so a value with a 100 ns digit
    keeps the lossless ResultSet form (int ticks, or the utc/offset dict) instead."""
    if value is None:
        return None
    if type_name == "uniqueidentifier" and isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    if type_name == "time" and isinstance(value, int) and value % 10 == 0:
        us = value // 10
        return dt.time(us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60, us % 1_000_000)
    if type_name == "datetime2" and isinstance(value, int) and value % 10 == 0:
        return dt.datetime(1, 1, 1) + dt.timedelta(microseconds=value // 10)
    if type_name == "datetimeoffset" and isinstance(value, dict) and value["utc"] % 10 == 0:
        offset = dt.timedelta(minutes=value["offset_min"])
        local = dt.datetime(1, 1, 1) + dt.timedelta(microseconds=value["utc"] // 10) + offset
        return local.replace(tzinfo=dt.timezone(offset))
    return value


def read_value(r: Reader, ti: TypeInfo, in_row: bool) -> object:
    """One value as sent in an RPC parameter (`in_row` False) or a ROW token (True)."""
    c = ti.code
    if c in FIXED_LEN:
        return None if c == T_NULL else _decode_data(ti, r.take(FIXED_LEN[c]))
    if ti.plp:
        data = _read_plp(r)
        return None if data is None else _decode_data(ti, data)
    if c in (T_TEXT, T_NTEXT, T_IMAGE):
        if in_row:
            if r.u8() == 0:
                return None
            r.take(16 + 8)
            n = r.u32()
        else:
            n = r.u32()
            if n == 0xFFFFFFFF:
                return None
        return _decode_data(ti, r.take(n))
    if c == T_VARIANT:
        return _read_variant(r)
    if c in USHORTLEN_TYPES:
        n = r.u16()
        return None if n == 0xFFFF else _decode_data(ti, r.take(n))
    n = r.u8()
    if n == 0 and c not in (T_CHAR, T_VARCHAR, T_BINARY, T_VARBINARY):
        return None
    return _decode_data(ti, r.take(n))


# ======================================================================================================
# Bulk load (packet 0x07): COLMETADATA + ROWs -> Arrow
# ======================================================================================================


def read_colmetadata(r: Reader) -> list[tuple[ColumnSpec, TypeInfo]]:
    count = r.u16()
    cols: list[tuple[ColumnSpec, TypeInfo]] = []
    if count == 0xFFFF:
        return cols
    for _ in range(count):
        r.u32()
        flags = r.u16()
        ti = read_type_info(r, in_colmetadata=True)
        name = r.b_varchar()
        cols.append((ti.spec(name, nullable=bool(flags & 0x01)), ti))
    return cols


ValueReader = Callable[[bytes, int], tuple[object, int]]
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_DATETIME = struct.Struct("<iI")
_SMALLDATETIME = struct.Struct("<HH")
_INTS = {1: struct.Struct("<B"), 2: struct.Struct("<h"), 4: struct.Struct("<i"), 8: struct.Struct("<q")}
_FLOATS = {4: struct.Struct("<f"), 8: struct.Struct("<d")}
_US_1900_TO_1970 = 25_567 * 86_400_000_000


def _length_prefixed(by_size: dict[int, struct.Struct]) -> ValueReader:
    """INTN/FLTN: a length byte (0 = NULL), then a little-endian value of that size."""

    def read(buf: bytes, pos: int) -> tuple[object, int]:
        n = buf[pos]
        if n == 0:
            return None, pos + 1
        return by_size[n].unpack_from(buf, pos + 1)[0], pos + 1 + n

    return read


def _row_reader(ti: TypeInfo) -> ValueReader:
    """A reader of one ROW value of type ti, specialised once per column: bulk loads decode millions of values,
    and read_value's per-value dispatch was most of the stand-in's bulk-load time. Values equal read_value's;
    reads past the end are caught by the caller's length check."""
    c = ti.code
    if c in (T_INT1, T_INT2, T_INT4, T_INT8):
        fixed = _INTS[FIXED_LEN[c]].unpack_from
        size = FIXED_LEN[c]
        return lambda buf, pos: (fixed(buf, pos)[0], pos + size)
    if c in (T_INTN, T_FLTN):
        return _length_prefixed(_INTS if c == T_INTN else _FLOATS)
    if c == T_BITN:

        def bitn(buf: bytes, pos: int) -> tuple[object, int]:
            n = buf[pos]
            return (None, pos + 1) if n == 0 else (buf[pos + 1] != 0, pos + 1 + n)

        return bitn
    if c == T_DATETIMN:

        def datetimn(buf: bytes, pos: int) -> tuple[object, int]:
            n = buf[pos]
            if n == 0:
                return None, pos + 1
            if n == 4:  # smalldatetime's form: days and minutes
                days, minutes = _SMALLDATETIME.unpack_from(buf, pos + 1)
                return days * 86_400_000_000 + minutes * 60_000_000 - _US_1900_TO_1970, pos + 5
            days, ticks = _DATETIME.unpack_from(buf, pos + 1)
            # microseconds since 1970, which pa.timestamp("us") takes as is: the same instant read_value gives
            return days * 86_400_000_000 + (ticks * 10 + 1) // 3 * 1000 - _US_1900_TO_1970, pos + 9

        return datetimn
    if c == T_GUID:

        def guid(buf: bytes, pos: int) -> tuple[object, int]:
            n = buf[pos]
            if n == 0:
                return None, pos + 1
            d = buf[pos + 1 : pos + 17]
            return d[3::-1] + d[5:3:-1] + d[7:5:-1] + d[8:], pos + 17

        return guid
    if c in (T_NVARCHAR, T_NCHAR, T_BIGVARCHAR, T_BIGCHAR, T_BIGVARBINARY, T_BIGBINARY):
        unicode = c in (T_NVARCHAR, T_NCHAR)
        binary = c in (T_BIGVARBINARY, T_BIGBINARY)
        codec = "utf-16-le" if unicode else None if binary else collation_codec(ti.collation)
        errors = "surrogatepass" if unicode else "replace"
        u64, u32 = _U64.unpack_from, _U32.unpack_from
        if ti.plp:

            def plp(buf: bytes, pos: int) -> tuple[object, int]:
                total = u64(buf, pos)[0]
                pos += 8
                if total == 0xFFFFFFFFFFFFFFFF:
                    return None, pos
                chunks = []
                while True:
                    n = u32(buf, pos)[0]
                    pos += 4
                    if n == 0:
                        break
                    chunks.append(buf[pos : pos + n])
                    pos += n
                data = b"".join(chunks)
                return (data if codec is None else data.decode(codec, errors)), pos

            return plp
        u16 = _U16.unpack_from

        def short(buf: bytes, pos: int) -> tuple[object, int]:
            n = u16(buf, pos)[0]
            if n == 0xFFFF:
                return None, pos + 2
            data = buf[pos + 2 : pos + 2 + n]
            return (data if codec is None else data.decode(codec, errors)), pos + 2 + n

        return short

    if c == T_VARIANT:  # kept as the SSVARIANT_INSTANCE bytes: the value keeps its base type (variant.py)

        def variant(buf: bytes, pos: int) -> tuple[object, int]:
            n = _U32.unpack_from(buf, pos)[0]
            return (buf[pos + 4 : pos + 4 + n] if n else None), pos + 4 + n

        return variant

    def generic(buf: bytes, pos: int) -> tuple[object, int]:
        r = Reader(buf, pos)
        return read_value(r, ti, in_row=True), r.pos

    return generic


def _bulk_arrow_type(spec: ColumnSpec) -> pa.DataType:
    """sql_variant values arrive as their SSVARIANT_INSTANCE bytes: large_binary, the engine's form of them."""
    return pa.large_binary() if spec.type_name == "sql_variant" else arrow_type(spec)


def read_bulk_rows(payload: bytes) -> tuple[list[ColumnSpec], pa.RecordBatch]:
    """Decode a bulk-load message with the client's own COLMETADATA (its types, not the table's)."""
    r = Reader(payload)
    buf = r.buf
    end = len(buf)
    cols: list[tuple[ColumnSpec, TypeInfo]] = []
    values: list[list[object]] = []
    readers: list[ValueReader] = []
    while r.remaining():
        tok = r.u8()
        if tok == TOK_COLMETADATA:
            cols = read_colmetadata(r)
            values = [[] for _ in cols]
            readers = [_row_reader(ti) for _spec, ti in cols]
        elif tok in (TOK_ROW, TOK_NBCROW):
            pos = r.pos
            if tok == TOK_NBCROW:
                bitmap = buf[pos : pos + (len(cols) + 7) // 8]
                pos += len(bitmap)
            try:
                for i, read in enumerate(readers):
                    if tok == TOK_NBCROW and bitmap[i >> 3] >> (i & 7) & 1:
                        values[i].append(None)
                    else:
                        v, pos = read(buf, pos)
                        values[i].append(v)
            except (IndexError, struct.error):
                raise ProtocolError("message ends early") from None
            if pos > end:
                raise ProtocolError("message ends early")
            r.pos = pos
        elif tok in (TOK_DONE, TOK_DONEPROC, TOK_DONEINPROC):
            break  # the end of the rows; some clients send a short DONE here
        elif tok == TOK_ORDER:
            r.take(r.u16())
        else:
            raise ProtocolError(f"unexpected token 0x{tok:02x} in bulk load")
    specs = [spec for spec, _ti in cols]
    arrays = []
    for spec, vals in zip(specs, values, strict=True):
        arrays.append(pa.array(vals, type=_bulk_arrow_type(spec)))
    fields = [
        pa.field(
            s.name,
            _bulk_arrow_type(s),
            nullable=True,
            metadata={
                "type_name": s.type_name,
                "length": str(s.length),
                "precision": str(s.precision),
                "scale": str(s.scale),
            },
        )
        for s in specs
    ]
    return specs, pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
