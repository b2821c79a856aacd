"""Conversions to and from sql_variant: CAST(v AS <type>) converts the base value (through its text, style 0, as
SQL Server's CAST(v AS nvarchar) writes it), CAST(x AS sql_variant) keeps x's type as the base type."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid

import pyarrow as pa
from sqlglot import exp

from .types import TICKS_PER_DAY, TICKS_PER_SECOND, SqlType, parse_type, scalar_to_storage
from .variant import BYTE_TYPES, constant_value, decode, encode, stored, variant_base
from .variant_order import strip_key

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _fraction(ticks: int, scale: int) -> str:
    """'.fffffff' cut to the scale (none at scale 0), from 100 ns units within a second."""
    return "." + f"{ticks:07d}"[:scale] if scale else ""


def _clock(tod: int, scale: int) -> str:
    seconds, frac = divmod(tod, TICKS_PER_SECOND)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" + _fraction(frac, scale)


def _float_text(v: float, digits: int) -> str:
    """float/real as CAST(... AS nvarchar) style 0 writes it: at most 6 significant digits, 3-digit exponents."""
    text = f"{v:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{exponent[0]}{int(exponent[1:]):03d}"
    return text


def text_of(body: bytes) -> str:
    """A stored sql_variant as CAST(v AS nvarchar) gives it: its base value converted with style 0."""
    t, v = decode(body)
    n = t.name
    if isinstance(v, bool):
        return "1" if v else "0"
    if n in ("float", "real"):
        return _float_text(float(v), 6)  # type: ignore[arg-type]
    if n in ("money", "smallmoney"):
        return format(decimal.Decimal(v).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP), "f")  # type: ignore[arg-type]
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if n in ("datetime", "smalldatetime") and isinstance(v, dt.datetime):
        hour = v.hour % 12 or 12
        return f"{_MONTHS[v.month - 1]} {v.day:2d} {v.year} {hour:2d}:{v.minute:02d}{'AM' if v.hour < 12 else 'PM'}"
    if n == "time" and isinstance(v, int):
        return _clock(v, t.scale)
    if n == "datetime2" and isinstance(v, int):
        day, tod = divmod(v, TICKS_PER_DAY)
        return f"{(dt.date(1, 1, 1) + dt.timedelta(days=day)).isoformat()} {_clock(tod, t.scale)}"
    if n == "datetimeoffset" and isinstance(v, dict):
        offset = int(v["offset_min"])
        day, tod = divmod(int(v["utc"]) + offset * 60 * TICKS_PER_SECOND, TICKS_PER_DAY)
        sign, mins = ("-" if offset < 0 else "+"), abs(offset)
        local = f"{(dt.date(1, 1, 1) + dt.timedelta(days=day)).isoformat()} {_clock(tod, t.scale)}"
        return f"{local} {sign}{mins // 60:02d}:{mins % 60:02d}"
    if n == "uniqueidentifier" and isinstance(v, bytes):
        return str(uuid.UUID(bytes=v)).upper()
    if isinstance(v, bytes):  # binary reinterpreted as UTF-16 characters, as a cast to nvarchar does
        return v.decode("utf-16-le", errors="replace")
    return str(v)


def value_text_of(body: bytes) -> str:
    """A stored sql_variant as text the literal parser reads back as the same value: CAST(v AS <type>) converts
    the base value, not its style-0 text (which keeps 6 digits of a float, 2 decimals of money, minutes of a
    datetime)."""
    t, v = decode(body)
    n = t.name
    if n == "float" and isinstance(v, float):
        return repr(v)
    if n == "real" and isinstance(v, float):
        return f"{v:.9G}"
    if n in ("money", "smallmoney"):
        return format(decimal.Decimal(v), "f")  # type: ignore[arg-type]
    if n in ("datetime", "smalldatetime") and isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return text_of(body)


def bytes_of(body: bytes) -> bytes:
    """A stored sql_variant as CAST(v AS varbinary) gives it: a binary base value as is, any other as the UTF-16
    bytes of its text (what a cast of nvarchar to varbinary gives)."""
    t, v = decode(body)
    if t.name in BYTE_TYPES and isinstance(v, bytes):
        return v
    return text_of(body).encode("utf-16-le")


def text_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF behind CAST(sql_variant AS (n)varchar): BLOB -> VARCHAR."""
    return pa.array([None if v is None else text_of(strip_key(v)) for v in values.to_pylist()], pa.string())


def value_text_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF behind CAST(sql_variant AS <type other than text>): BLOB -> VARCHAR (value_text_of)."""
    return pa.array([None if v is None else value_text_of(strip_key(v)) for v in values.to_pylist()], pa.string())


def bytes_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF behind CAST(sql_variant AS (var)binary): BLOB -> BLOB (bytes_of)."""
    return pa.array([None if v is None else bytes_of(strip_key(v)) for v in values.to_pylist()], pa.binary())


def as_value(arg: exp.Expression, t: SqlType) -> exp.Expression:
    """A sql_variant expression as what CAST(v AS t) converts from: its bytes for a binary t, else the exact text
    of its base value (nvarchar(4000)), read by the same conversions as any string."""
    if t.name in BYTE_TYPES:
        out = exp.Anonymous(this="__ss_variant_bytes", expressions=[arg])
        out.meta["ss_type"] = SqlType("varbinary", -1)
        return out
    out = exp.Anonymous(this="__ss_variant_value_text", expressions=[arg])
    out.meta["ss_type"] = SqlType("nvarchar", 4000)
    return out


def as_text(arg: exp.Expression) -> exp.Expression:
    """A sql_variant expression as its nvarchar(4000) text (the base value converted, style 0)."""
    out = exp.Anonymous(this="__ss_variant_text", expressions=[arg])
    out.meta["ss_type"] = SqlType("nvarchar", 4000)
    return out


def cast_constant(arg: exp.Expression) -> exp.Expression | None:
    """CAST(<typed constant> AS sql_variant): the value with its own type as base type. None: not a constant."""
    try:
        held = constant_value(arg)
    except KeyError:
        return None
    out = exp.Anonymous(this="unhex", expressions=[exp.Literal.string(held.hex())]) if held else exp.Null()
    out.meta["ss_type"] = SqlType("sql_variant")
    out.meta["ss_const"] = held
    return out


def cast_expression(arg: exp.Expression, src: SqlType) -> exp.Expression:
    """CAST(<expression of type src> AS sql_variant): each value with src as its base type, converted at run
    time by a DuckDB UDF from the value's text (bytes for binary and uniqueidentifier)."""
    base = variant_base(src)
    as_bytes = base.name in BYTE_TYPES or base.name == "uniqueidentifier"
    value = arg if as_bytes else exp.Cast(this=arg, to=exp.DataType.build("VARCHAR"))
    fn = "__ss_variant_of_bytes" if as_bytes else "__ss_variant_of_text"
    out = exp.Anonymous(this=fn, expressions=[value, exp.Literal.string(str(base))])
    out.meta["ss_type"] = SqlType("sql_variant")
    return out


_STRUCT_TEXT = re.compile(r"\{'utc':\s*(-?\d+),\s*'offset_min':\s*(-?\d+)\}")


def _from_text(text: str, t: SqlType) -> object:
    """A storage value of type t from DuckDB's text of it (ticks for raw time kinds, a struct for
    datetimeoffset, plain text otherwise)."""
    if t.name in ("datetime2", "time") and re.fullmatch(r"-?\d+", text):
        return int(text)
    m = _STRUCT_TEXT.fullmatch(text) if t.name == "datetimeoffset" else None
    if m:
        return {"utc": int(m.group(1)), "offset_min": int(m.group(2))}
    return scalar_to_storage(text, t)


def of_text_array(values: pa.Array, types: pa.Array) -> pa.Array:
    """The DuckDB UDF __ss_variant_of_text (VARCHAR, type) -> stored sql_variant."""
    out = []
    for v, ty in zip(values.to_pylist(), types.to_pylist(), strict=True):
        t = parse_type(ty)
        out.append(None if v is None else stored(encode(t, _from_text(v, t))))
    return pa.array(out, pa.binary())


def of_bytes_array(values: pa.Array, types: pa.Array) -> pa.Array:
    """The DuckDB UDF __ss_variant_of_bytes (BLOB, type) -> stored sql_variant (binary; uniqueidentifier keys)."""
    out = []
    for v, ty in zip(values.to_pylist(), types.to_pylist(), strict=True):
        out.append(None if v is None else stored(encode(parse_type(ty), v)))
    return pa.array(out, pa.binary())
