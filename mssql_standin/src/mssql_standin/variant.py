"""sql_variant: every value keeps its base type, as SQL Server keeps it.

A sql_variant value is carried through the engine (Arrow large_binary) as its body, the MS-TDS
SSVARIANT_INSTANCE that goes on the wire: base type byte (the TDS type token), property byte count, properties
(scale; precision and scale; max length; collation and max length), then the value's bytes; the wire adds only the
4-byte length. DuckDB stores (BLOB) the body behind its comparison key (variant_order.py), so ORDER BY and
comparisons follow SQL Server's family rules.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from . import wire
from .results import ColumnSpec, SqlServerError
from .sqltext import unsupported
from .types import (
    SqlType,
    decimal_storage,
    guid_from_key,
    make_type,
    scalar_to_storage,
    to_storage_array,
    utf16_len,
)
from .variant_order import order_key, strip_key

#: base type name -> TDS type token (MS-TDS 2.2.5.5.4)
BASE_TOKENS = {
    "int": wire.T_INT4, "bigint": wire.T_INT8, "smallint": wire.T_INT2, "tinyint": wire.T_INT1, "bit": wire.T_BIT,
    "float": wire.T_FLT8, "real": wire.T_FLT4, "money": wire.T_MONEY, "smallmoney": wire.T_MONEY4,
    "datetime": wire.T_DATETIME, "smalldatetime": wire.T_DATETIM4, "decimal": wire.T_DECIMALN,
    "numeric": wire.T_NUMERICN, "uniqueidentifier": wire.T_GUID, "date": wire.T_DATEN, "time": wire.T_TIMEN,
    "datetime2": wire.T_DATETIME2N, "datetimeoffset": wire.T_DATETIMEOFFSETN, "varchar": wire.T_BIGVARCHAR,
    "char": wire.T_BIGCHAR, "nvarchar": wire.T_NVARCHAR, "nchar": wire.T_NCHAR, "varbinary": wire.T_BIGVARBINARY,
    "binary": wire.T_BIGBINARY,
}  # fmt: skip
BASE_NAMES = {v: k for k, v in BASE_TOKENS.items()}
_FIXED = {"int", "bigint", "smallint", "tinyint", "bit", "float", "real", "money", "smallmoney", "datetime",
          "smalldatetime"}  # fmt: skip
_TEXT = {"varchar", "char", "nvarchar", "nchar"}
BYTE_TYPES = {"varbinary", "binary"}
#: The body's large_binary type: it tells variant bodies from varbinary values (binary) inside the engine.
BODY_TYPE = pa.large_binary()


@dataclass(frozen=True)
class Typed:
    """A value whose SQL Server type is known (a typed literal, a CAST, a typed parameter): a sql_variant
    takes that type as its base type. `stored` says the value is already in the type's storage form."""

    type: SqlType
    value: object
    stored: bool = False


def _clash(t: SqlType) -> SqlServerError:
    return SqlServerError(206, f"Operand type clash: {t} is incompatible with sql_variant")


def infer_base(v: object) -> SqlType:
    """The base type a value of unknown SQL type takes (what a client parameter of that Python type is sent as)."""
    if isinstance(v, bool):
        return make_type("bit", [])
    if isinstance(v, int):
        return make_type("int" if -(2**31) <= v < 2**31 else "bigint", [])
    if isinstance(v, float):
        return make_type("float", [])
    if isinstance(v, decimal.Decimal):
        sign, digits, exp = v.as_tuple()
        scale = max(0, -int(exp))
        precision = max(len(digits), scale, 1)
        return make_type("numeric", [str(min(precision, 38)), str(min(scale, 38))])
    if isinstance(v, str):
        return SqlType("nvarchar", max(1, min(utf16_len(v), 4000)))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return SqlType("varbinary", max(1, min(len(v), 8000)))
    if isinstance(v, uuid.UUID):
        return make_type("uniqueidentifier", [])
    if isinstance(v, dt.datetime):
        return make_type("datetimeoffset" if v.tzinfo is not None else "datetime2", ["7"])
    if isinstance(v, dt.date):
        return make_type("date", [])
    if isinstance(v, dt.time):
        return make_type("time", ["7"])
    raise SqlServerError(206, f"Operand type clash: {type(v).__name__} is incompatible with sql_variant")


def _properties(t: SqlType) -> bytes:
    n = t.name
    if n in ("time", "datetime2", "datetimeoffset"):
        return bytes([t.scale])
    if n in ("decimal", "numeric"):
        return bytes([t.precision, t.scale])
    if n in BYTE_TYPES:
        return struct.pack("<H", t.length)
    if n in _TEXT:
        return wire.COLLATION + struct.pack("<H", t.max_length)
    return b""


def _spec(t: SqlType) -> ColumnSpec:
    return t.column_spec("v", nullable=t.name not in _FIXED)


def encode(t: SqlType, stored: object) -> bytes:
    """The SSVARIANT_INSTANCE of a non-NULL value of base type t, given in t's storage form."""
    n = t.name
    if n not in BASE_TOKENS or (n in _TEXT | BYTE_TYPES and t.length == -1):
        raise _clash(t)
    value = stored
    if n == "uniqueidentifier" and isinstance(stored, (bytes, bytearray)):
        value = guid_from_key(bytes(stored)).bytes
    data = wire.encode_value(_spec(t), value)
    if n in _TEXT | BYTE_TYPES:
        data = data[2:]
    elif n not in _FIXED:
        data = data[1:]
    props = _properties(t)
    return bytes([BASE_TOKENS[n], len(props)]) + props + data


def from_value(v: object, dateformat: str = "mdy") -> bytes | None:
    """A value (Typed, or a plain Python value whose base type is inferred) as a stored sql_variant."""
    if v is None:
        return None
    if isinstance(v, Typed):
        if v.value is None:
            return None
        if v.type.name == "sql_variant":  # bytes here are a value already held as sql_variant (a variable's)
            return bytes(v.value) if isinstance(v.value, (bytes, bytearray)) else from_value(v.value, dateformat)
        t = variant_base(v.type)
        value = v.value if v.stored else scalar_to_storage(v.value, t, dateformat)
        return stored(encode(t, value))
    t = infer_base(v)
    return stored(encode(t, scalar_to_storage(v, t, dateformat)))


def stored(body: bytes) -> bytes:
    """A body with its comparison key in front (variant_order.py): the form DuckDB holds."""
    t, v = decode(body)
    return order_key(t, v) + body


def result_array(arr: pa.Array) -> pa.Array:
    """Stored sql_variants -> the ResultSet convention: their bodies, as large_binary."""
    return pa.array([None if v is None else strip_key(v) for v in arr.to_pylist()], BODY_TYPE)


def variant_base(t: SqlType) -> SqlType:
    """The base type a value of declared type t keeps: sysname is nvarchar(128); (max), text, xml and the CLR
    types cannot be held (error 206, as SQL Server)."""
    if t.name == "sysname":
        return SqlType("nvarchar", 128)
    if t.name not in BASE_TOKENS or t.length == -1:
        raise _clash(t)
    return t


def decode(body: bytes) -> tuple[SqlType, object]:
    """A stored sql_variant -> (base type, value in the ResultSet conventions)."""
    r = wire.Reader(body)
    code = r.u8()
    nprop = r.u8()
    props = wire.Reader(r.take(nprop))
    ti = wire.TypeInfo(code)
    name = BASE_NAMES.get(code)
    if name is None:
        raise SqlServerError(8114, f"Unknown sql_variant base type 0x{code:02x}.")
    args: list[str] = []
    if name in ("decimal", "numeric"):
        ti.precision, ti.scale = props.u8(), props.u8()
        args = [str(ti.precision), str(ti.scale)]
    elif name in ("time", "datetime2", "datetimeoffset"):
        ti.scale = props.u8()
        args = [str(ti.scale)]
    elif name in _TEXT:
        ti.collation = props.take(5)
        ti.max_length = props.u16()
        args = [str(ti.max_length // 2 if name.startswith("n") else ti.max_length)]
    elif name in BYTE_TYPES:
        ti.max_length = props.u16()
        args = [str(ti.max_length)]
    data = body[r.pos :]
    return make_type(name, args), wire._decode_data(ti, data)


_PRECISION = {"date": 10, "datetime": 23, "smalldatetime": 16, "float": 53, "real": 24, "money": 19,
              "smallmoney": 10, "bigint": 19, "int": 10, "smallint": 5, "tinyint": 3, "bit": 1}  # fmt: skip


def _precision(t: SqlType) -> int:
    if t.name in ("decimal", "numeric"):
        return t.precision
    if t.name == "datetime2":
        return 19 if t.scale == 0 else t.scale + 20
    if t.name == "datetimeoffset":
        return 26 if t.scale == 0 else t.scale + 27
    if t.name == "time":
        return 8 if t.scale == 0 else t.scale + 9
    return _PRECISION.get(t.name, 0)


def _scale(t: SqlType) -> int:
    if t.name in ("decimal", "numeric", "time", "datetime2", "datetimeoffset"):
        return t.scale
    return {"money": 4, "smallmoney": 4, "datetime": 3}.get(t.name, 0)


def _total_bytes(t: SqlType, data_len: int) -> int:
    """Metadata and data as SQL Server stores them: 2 bytes of type header, then the type's properties (strings:
    collation 4 + max length 2; binary: max length 2; decimal: precision and scale; time kinds: scale)."""
    meta = {"decimal": 2, "numeric": 2, "time": 1, "datetime2": 1, "datetimeoffset": 1}.get(t.name, 0)
    if t.name in _TEXT:
        meta = 6
    elif t.name in BYTE_TYPES:
        meta = 2
    if t.name in ("decimal", "numeric"):
        data_len = decimal_storage(t.precision)
    return 2 + meta + data_len


def property_value(body: bytes | None, prop: str) -> bytes | None:
    """SQL_VARIANT_PROPERTY(v, prop) as a stored sql_variant (sysname or int base type); NULL for a NULL value
    or an unknown property, as documented."""
    if body is None:
        return None
    t, _value = decode(body)
    p = prop.strip().lower()
    nprop = body[1]
    sysname = SqlType("nvarchar", 128)
    integer = make_type("int", [])
    if p == "basetype":
        return encode(sysname, t.name)
    if p == "precision":
        return encode(integer, _precision(t))
    if p == "scale":
        return encode(integer, _scale(t))
    if p == "totalbytes":
        return encode(integer, _total_bytes(t, len(body) - 2 - nprop))
    if p == "collation":
        return encode(sysname, wire.DEFAULT_COLLATION_NAME) if t.name in _TEXT else None
    if p == "maxlength":
        return encode(integer, t.max_length)
    return None


def property_array(values: pa.Array, props: pa.Array) -> pa.Array:
    """The DuckDB UDF behind SQL_VARIANT_PROPERTY (BLOB, VARCHAR) -> BLOB."""
    out = []
    for v, p in zip(values.to_pylist(), props.to_pylist(), strict=True):
        body = property_value(strip_key(v), p) if v is not None and p is not None else None
        out.append(None if body is None else stored(body))
    return pa.array(out, pa.binary())


def stored_array(values: list[object], dateformat: str = "mdy") -> pa.Array:
    """Values (Typed or plain) -> an Arrow array of stored sql_variants."""
    return pa.array([from_value(v, dateformat) for v in values], pa.binary())


def typed_array(arr: pa.Array, t: SqlType) -> pa.Array:
    """A column of known type t (ResultSet conventions) as sql_variant bodies, each keeping t as base type."""
    if t.name == "sql_variant":
        return arr.cast(BODY_TYPE) if pa.types.is_binary(arr.type) else arr
    base = variant_base(t)
    values = to_storage_array(arr, base, "", "").to_pylist()
    return pa.array([None if v is None else encode(base, v) for v in values], BODY_TYPE)


def from_arrow(arr: pa.Array) -> pa.Array:
    """Any Arrow column into stored sql_variants: bodies pass through, other values take the base type their
    Arrow type stands for (int32 int, int64 bigint, decimal128(p, s) decimal(p, s), string nvarchar ...)."""
    at = arr.type
    if at == BODY_TYPE:
        return pa.array([None if v is None else stored(v) for v in arr.to_pylist()], pa.binary())
    if pa.types.is_null(at):
        return pa.nulls(len(arr), pa.binary())
    simple = {pa.int32(): "int", pa.int64(): "bigint", pa.int16(): "smallint", pa.uint8(): "tinyint",
              pa.bool_(): "bit", pa.float64(): "float", pa.float32(): "real", pa.date32(): "date"}  # fmt: skip
    base: SqlType | None = None
    if at in simple:
        base = make_type(simple[at], [])
    elif pa.types.is_decimal(at):
        base = make_type("decimal", [str(min(at.precision, 38)), str(at.scale)])
    elif pa.types.is_timestamp(at):
        base = make_type("datetime2" if at.tz is None else "datetimeoffset", ["7"])
    elif pa.types.is_fixed_size_binary(at) and at.byte_width == 16:
        base = make_type("uniqueidentifier", [])
    if base is not None:
        values = to_storage_array(arr, base, "", "").to_pylist()
        return pa.array([None if v is None else stored(encode(base, v)) for v in values], pa.binary())
    return pa.array([from_value(v) for v in arr.to_pylist()], pa.binary())


def constant_value(node: exp.Expression) -> bytes | None:
    """A constant expression of a known type as a stored sql_variant (KeyError: not a constant)."""
    t = node.meta.get("ss_type") if node.meta else None
    if not isinstance(t, SqlType) or "ss_const" not in (node.meta or {}):
        raise KeyError("not a typed constant")
    raw = node.meta.get("ss_storage") if node.meta.get("ss_raw") else None
    return from_value(Typed(t, raw, True) if raw is not None else Typed(t, node.meta["ss_const"]))


def _key_of(node: exp.Expression) -> exp.Expression:
    t = node.meta.get("ss_type") if node.meta else None
    try:
        held = constant_value(node)
    except KeyError:
        if isinstance(t, SqlType) and t.name == "sql_variant":
            return exp.Anonymous(this="__ss_variant_key", expressions=[node])
        raise unsupported("comparing sql_variant with an expression of another type") from None
    if held is None:
        return exp.Null()
    key = held[: len(held) - len(strip_key(held))]
    return exp.Anonymous(this="unhex", expressions=[exp.Literal.string(key.hex())])


def compare(node: exp.Expression) -> exp.Expression | None:
    """A comparison with a sql_variant side, on SQL Server's terms: both sides as comparison keys (family rank,
    then the value in the family's common type), so int 5 = bigint 5 and every date sorts above every number.
    None when neither side is a sql_variant."""
    sides = ("this", "expression")
    types = [node.args[k].meta.get("ss_type") if node.args[k].meta else None for k in sides]
    if not any(isinstance(t, SqlType) and t.name == "sql_variant" for t in types):
        return None
    for k in sides:
        node.set(k, _key_of(node.args[k]))
    return node


def compare_in(node: exp.In) -> exp.Expression | None:
    """`v IN (5, N'x')` with a sql_variant v: keys against keys, as compare() does. None: not a sql_variant list."""
    t = node.this.meta.get("ss_type") if node.this.meta else None
    if not (isinstance(t, SqlType) and t.name == "sql_variant") or not node.expressions:
        return None
    node.set("this", _key_of(node.this))
    node.set("expressions", [_key_of(e) for e in node.expressions])
    return node


def datalength_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF __ss_variant_datalength: DATALENGTH of a stored sql_variant, its base value's bytes."""
    out = []
    for v in values.to_pylist():
        body = strip_key(v) if v is not None else None
        out.append(None if body is None else len(body) - 2 - body[1])
    return pa.array(out, pa.int64())


def key_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF __ss_variant_key: a stored sql_variant's comparison key."""
    out = []
    for v in values.to_pylist():
        out.append(None if v is None else v[: len(v) - len(strip_key(v))])
    return pa.array(out, pa.binary())


def property_call(args: list[exp.Expression]) -> exp.Expression:
    """SQL_VARIANT_PROPERTY(expression, property) translated: a sql_variant column goes through the DuckDB UDF
    __ss_variant_property; a typed constant is answered now. The result is a sql_variant, as in SQL Server."""
    if len(args) != 2:
        raise SqlServerError(174, "The sql_variant_property function requires 2 argument(s).", severity=15)
    value, prop = args
    t = value.meta.get("ss_type") if value.meta else None
    variant_type = SqlType("sql_variant")
    if isinstance(t, SqlType) and t.name == "sql_variant":
        out: exp.Expression = exp.Anonymous(this="__ss_variant_property", expressions=[value, prop])
    elif isinstance(t, SqlType) and value.meta and "ss_const" in value.meta and "ss_const" in (prop.meta or {}):
        held = constant_value(value)
        body = property_value(strip_key(held), str(prop.meta["ss_const"])) if held is not None else None
        out = exp.Anonymous(this="unhex", expressions=[exp.Literal.string(stored(body).hex())]) if body else exp.Null()
    else:
        raise unsupported("SQL_VARIANT_PROPERTY of an expression that is neither sql_variant nor a constant")
    out.meta["ss_type"] = variant_type
    return out


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """The DuckDB functions sql_variant needs."""
    blob, text = duckdb.sqltypes.BLOB, duckdb.sqltypes.VARCHAR
    udf: Any = con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
    udf("__ss_variant_property", property_array, [blob, text], blob, type="arrow", null_handling="special")
    udf("__ss_variant_key", key_array, [blob], blob, type="arrow")
    udf("__ss_variant_datalength", datalength_array, [blob], duckdb.sqltypes.BIGINT, type="arrow")
    from .variant_cast import bytes_array, of_bytes_array, of_text_array, text_array, value_text_array

    udf("__ss_variant_text", text_array, [blob], text, type="arrow")
    udf("__ss_variant_value_text", value_text_array, [blob], text, type="arrow")
    udf("__ss_variant_bytes", bytes_array, [blob], blob, type="arrow")
    udf("__ss_variant_of_text", of_text_array, [text, text], blob, type="arrow")
    udf("__ss_variant_of_bytes", of_bytes_array, [blob, text], blob, type="arrow")
