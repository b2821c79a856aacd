"""The order of sql_variant values, as SQL Server compares them, as a byte prefix of each stored value.

A stored sql_variant is `key + body`: DuckDB compares BLOBs byte by byte, so ORDER BY, MIN/MAX and range
predicates see the key first. The key follows the documented rules (sql_variant, "Comparing sql_variant values"):
families rank date and time > approximate numeric > exact numeric > Unicode (all character types) > binary >
uniqueidentifier; within a family values compare as the family's common type (datetimeoffset as its local
date and time, as when converted to datetime2; character data case-insensitively, trailing spaces ignored, as
SQL_Latin1_General_CP1_CI_AS — by code point, not the collation's full sort order). The key ends with 00 00 and
escapes its own 00 bytes as 00 FF, so a shorter key sorts first and the body can be found again.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct

from .types import TICKS_PER_DAY, SqlType, guid_key, ticks_from_datetime

_DATE_TIME = {"datetime2", "datetimeoffset", "datetime", "smalldatetime", "date", "time"}
_APPROXIMATE = {"float", "real"}
_EXACT = {"decimal", "numeric", "money", "smallmoney", "bigint", "int", "smallint", "tinyint", "bit"}
_CHARACTER = {"nvarchar", "nchar", "varchar", "char"}
_BINARY = {"varbinary", "binary"}
#: 1900-01-01 in 100 ns units since 0001-01-01: a time's date when compared with a date and time
_TICKS_1900 = 693_595 * TICKS_PER_DAY
_EXACT_SCALE = decimal.Decimal(10) ** 38
_EXACT_BIAS = 1 << 255


def _date_time_ticks(t: SqlType, v: object) -> int:
    if t.name == "datetimeoffset" and isinstance(v, dict):
        return int(v["utc"]) + int(v["offset_min"]) * 600_000_000
    if t.name == "time" and isinstance(v, int):
        return _TICKS_1900 + v
    if isinstance(v, int):
        return v
    if isinstance(v, (dt.datetime, dt.date)):
        return ticks_from_datetime(v)
    raise TypeError(f"no date and time key for {t}")


def _value_key(t: SqlType, v: object) -> tuple[int, bytes]:
    n = t.name
    if n in _DATE_TIME:
        return 6, struct.pack(">Q", _date_time_ticks(t, v))
    if n in _APPROXIMATE:
        bits = struct.unpack(">Q", struct.pack(">d", float(v)))[0]  # type: ignore[arg-type]
        return 5, struct.pack(">Q", bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63)
    if n in _EXACT:
        scaled = int(decimal.Decimal(int(v) if isinstance(v, bool) else v) * _EXACT_SCALE)  # type: ignore[arg-type]
        return 4, (scaled + _EXACT_BIAS).to_bytes(32, "big")
    if n in _CHARACTER:
        return 3, str(v).rstrip(" ").casefold().encode("utf-8")
    if not isinstance(v, (bytes, bytearray)):
        raise TypeError(f"no comparison key for {t} value {v!r}")
    if n in _BINARY:
        return 2, bytes(v)
    return 1, guid_key(bytes(v))


def order_key(t: SqlType, v: object) -> bytes:
    """The comparison key of a value of base type t (in the ResultSet conventions), terminated."""
    family, raw = _value_key(t, v)
    return bytes([family]) + raw.replace(b"\0", b"\0\xff") + b"\0\0"


def strip_key(stored: bytes) -> bytes:
    """The body of a stored sql_variant (what follows its key)."""
    i = 1
    while True:
        i = stored.index(b"\0", i)
        if stored[i + 1] == 0:
            return stored[i + 2 :]
        i += 2
