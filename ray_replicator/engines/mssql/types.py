"""SQL Server types: what a declared type means (logical and Arrow), and what other engines' columns become.

One table (`TYPES`) drives the SQL Server → logical and → Arrow directions: each row names the sys.types names it
covers, how their declaration becomes a LogicalType and which Arrow type a reader produces for them.
docs/type-mapping.md shows the same rows; `target_type` is the reverse direction (a column from any engine → a SQL
Server column type). When source and target are both SQL Server the declared type is used verbatim, except
rowversion (a target cannot take explicit rowversion values, so it becomes binary(8) holding the same 8 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from ray_replicator.catalog import Column, LogicalType
from ray_replicator.engines.mssql.temporal import TICKS
from ray_replicator.record import SchemaChangeKind
from ray_replicator.typemap import datetimeoffset_parts

MSSQL = "mssql"

# Types with 100 ns digits: kept as Datetime2Ticks, time64('ns') and text (temporal.py), else microseconds.
SEVEN_DIGIT_TYPES = ("datetime2", "time", "datetimeoffset")
CLR_TYPES = ("geography", "geometry", "hierarchyid")


@dataclass(frozen=True)
class Declared:
    """A column's type as sys.columns/sys.types describe it."""

    name: str  # base system type name, lower case
    max_length: int  # bytes; -1 = max
    precision: int
    scale: int


def _length(d: Declared, unit: int = 1) -> int | None:
    return None if d.max_length == -1 else d.max_length // unit


def _seven(lt: LogicalType, keep: bool) -> str:
    """The Arrow unit of a time: nanoseconds only when 100 ns digits are kept (hundred_ns=keep)."""
    return "ns" if keep and (lt.precision or 0) > 6 else "us"


def _datetime2(lt: LogicalType, keep: bool) -> pa.DataType:
    """datetime2(7) with its 100 ns digit kept: ticks (0001..9999 do not fit timestamp('ns')); else µs."""
    return TICKS if keep and (lt.precision or 0) > 6 else pa.timestamp("us")


def _text(lt: LogicalType, keep: bool) -> pa.DataType:
    return pa.large_string() if lt.length is None else pa.string()


def _bytes(lt: LogicalType, keep: bool) -> pa.DataType:
    return pa.large_binary() if lt.length is None else pa.binary()


def _decimal(lt: LogicalType, keep: bool) -> pa.DataType:
    return pa.decimal128(lt.precision or 38, lt.scale or 0)


def _float(lt: LogicalType, keep: bool) -> pa.DataType:
    return pa.float32() if lt.kind == "float32" else pa.float64()


def _fixed(logical: LogicalType) -> Callable[[Declared], LogicalType]:
    return lambda d: logical


def _arrow(arrow: pa.DataType) -> Callable[[LogicalType, bool], pa.DataType]:
    return lambda lt, keep: arrow


@dataclass(frozen=True)
class TypeRow:
    """SQL Server types that read alike: how a declaration of them becomes a LogicalType, the Arrow type a reader
    produces for that LogicalType (keep: hundred_ns=keep), the PostgreSQL type they become, and why.
    `samples` are declarations of them that tests create to check the reader against `arrow`."""

    names: tuple[str, ...]
    logical: Callable[[Declared], LogicalType]
    arrow: Callable[[LogicalType, bool], pa.DataType]
    postgres: str
    samples: tuple[str, ...]
    note: str = ""

    @property
    def mssql(self) -> str:
        """The names as docs/type-mapping.md shows them."""
        return " / ".join(self.names)


def _fractional(name: str, kind: str, arrow: Callable[[LogicalType, bool], pa.DataType], postgres: str) -> TypeRow:
    """time(p) and datetime2(p): p fractional digits, read as Arrow microseconds unless 100 ns digits are kept."""
    return TypeRow(
        (name,),
        lambda d: LogicalType(kind, precision=d.scale),
        arrow,
        postgres,
        tuple(f"{name}({p})" for p in (7, 3, 0)),
        "hundred_ns policy",
    )


def _plain(name: str, logical: LogicalType, arrow: pa.DataType, postgres: str, note: str = "") -> TypeRow:
    """A type whose declaration has nothing that changes its meaning: one LogicalType, one Arrow type, and the
    type's own name as the sample."""
    return TypeRow((name,), _fixed(logical), _arrow(arrow), postgres, (name,), note)


TYPES: tuple[TypeRow, ...] = (
    _plain("bit", LogicalType("bool"), pa.bool_(), "boolean"),
    _plain("tinyint", LogicalType("int8"), pa.uint8(), "smallint", "0..255"),
    _plain("smallint", LogicalType("int16"), pa.int16(), "smallint"),
    _plain("int", LogicalType("int32"), pa.int32(), "integer"),
    _plain("bigint", LogicalType("int64"), pa.int64(), "bigint"),
    TypeRow(
        ("decimal", "numeric"),
        lambda d: LogicalType("decimal", precision=d.precision, scale=d.scale),
        _decimal,
        "numeric(p,s)",
        ("decimal(19,4)", "numeric(38,10)", "decimal(5,0)"),
        "never through a float",
    ),
    TypeRow(
        ("money",),
        _fixed(LogicalType("money", precision=19, scale=4)),
        _decimal,
        "numeric(19,4)",
        ("money",),
        "not PostgreSQL money (its scale follows locale)",
    ),
    TypeRow(
        ("smallmoney",), _fixed(LogicalType("money", precision=10, scale=4)), _decimal, "numeric(19,4)", ("smallmoney",)
    ),
    TypeRow(("real",), _fixed(LogicalType("float32")), _float, "real", ("real", "float(24)")),
    TypeRow(
        ("float",),
        lambda d: LogicalType("float32" if d.precision <= 24 else "float64"),
        _float,
        "real (float(1..24)) / double precision (float(25..53))",
        ("float", "float(25)", "float(53)"),
    ),
    TypeRow(
        ("char", "varchar"),
        lambda d: LogicalType("string", length=_length(d), fixed=d.name == "char", unicode=False),
        _text,
        "character(n) / character varying(n) / text",
        ("char(5)", "varchar(50)", "varchar(max)"),
        "read as nvarchar: the server decodes the collation's code page",
    ),
    TypeRow(
        ("nchar", "nvarchar"),
        lambda d: LogicalType("string", length=_length(d, 2), fixed=d.name == "nchar"),
        _text,
        "character varying(n) / text",
        ("nchar(5)", "nvarchar(100)", "nvarchar(max)"),
        "NUL policy applies",
    ),
    TypeRow(
        ("text", "ntext"),
        lambda d: LogicalType("string", unicode=d.name == "ntext"),
        _text,
        "text",
        ("text", "ntext"),
        "TEXTSIZE at maximum",
    ),
    TypeRow(
        ("binary", "varbinary"),
        lambda d: LogicalType("binary", length=_length(d), fixed=d.name == "binary"),
        _bytes,
        "bytea",
        ("binary(4)", "varbinary(16)", "varbinary(max)"),
    ),
    TypeRow(("image",), _fixed(LogicalType("binary")), _bytes, "bytea", ("image",)),
    TypeRow(CLR_TYPES, _fixed(LogicalType("binary")), _bytes, "bytea", ("hierarchyid",), "SQL Server's native bytes"),
    _plain("date", LogicalType("date"), pa.date32(), "date", "0001..9999 fit"),
    _fractional("time", "time", lambda lt, keep: pa.time64(_seven(lt, keep)), "time(min(p,6))"),
    _plain("smalldatetime", LogicalType("timestamp", precision=0), pa.timestamp("s"), "timestamp(0) without time zone"),
    _plain(
        "datetime",
        LogicalType("timestamp", precision=3),
        pa.timestamp("ms"),
        "timestamp(3) without time zone",
        "1/300 s ticks, as shown",
    ),
    _fractional("datetime2", "timestamp", _datetime2, "timestamp(min(p,6))"),
    TypeRow(
        ("datetimeoffset",),
        lambda d: LogicalType("timestamptz", precision=d.scale),
        _arrow(pa.string()),
        "timestamp(min(p,6)) with time zone",
        ("datetimeoffset(7)", "datetimeoffset(0)"),
        "text 'YYYY-MM-DD hh:mm:ss[.f] +hh:mm': instant and offset both kept; PostgreSQL keeps the instant",
    ),
    _plain("uniqueidentifier", LogicalType("uuid"), pa.uuid(), "uuid", "bytes_le on the wire, converted"),
    TypeRow(
        ("rowversion", "timestamp"),
        _fixed(LogicalType("rowversion")),
        _arrow(pa.binary()),
        "bytea",
        ("rowversion",),
        "8 bytes; SQL Server target: binary(8)",
    ),
    _plain("xml", LogicalType("xml"), pa.large_string(), "xml"),
    _plain(
        "sql_variant",
        LogicalType("other"),
        pa.large_string(),
        "text",
        "refused (sql_variant=refuse), read as each value's exact text (sql_variant=text), or kept with its base type "
        "(sql_variant=keep, SQL Server targets)",
    ),
)

_BY_NAME = {name: row for row in TYPES for name in row.names}
_OTHER = TypeRow(("other",), _fixed(LogicalType("other")), _arrow(pa.large_string()), "text", ())
"""Anything newer than this table: its text form."""


def type_row(name: str) -> TypeRow:
    """The row of a base type name (`nvarchar`), or the row for types this table does not know."""
    return _BY_NAME.get(name, _OTHER)


def native_type(d: Declared) -> str:
    """The type as SQL Server declares it (`nvarchar(40)`, `decimal(19,4)`, `datetime2(7)`, `varbinary(max)`)."""
    n = d.name
    if n in ("varchar", "char", "varbinary", "binary"):
        return f"{n}(max)" if d.max_length == -1 else f"{n}({d.max_length})"
    if n in ("nvarchar", "nchar"):
        return f"{n}(max)" if d.max_length == -1 else f"{n}({d.max_length // 2})"
    if n in ("decimal", "numeric"):
        return f"{n}({d.precision},{d.scale})"
    if n in ("datetime2", "time", "datetimeoffset"):
        return f"{n}({d.scale})"
    if n == "float":
        return "float" if d.precision == 53 else f"float({d.precision})"
    if n == "timestamp":
        return "rowversion"
    return n


def logical_type(d: Declared) -> LogicalType:
    """The engine-neutral meaning of a declared SQL Server type (TYPES)."""
    return type_row(d.name).logical(d)


def base_name(native: str) -> str:
    """`nvarchar(40)` -> `nvarchar`."""
    return native.split("(", 1)[0].strip().lower()


def type_args(native: str) -> list[str]:
    """`decimal(19,4)` -> ['19', '4']; `nvarchar(max)` -> ['max']."""
    if "(" not in native:
        return []
    return [a.strip().lower() for a in native.split("(", 1)[1].rstrip(")").split(",")]


def scale_of(native: str) -> int:
    """Fractional-second digits of time/datetime2/datetimeoffset (SQL Server's default is 7)."""
    args = type_args(native)
    return int(args[0]) if args else 7


def arrow_type(col: Column, hundred_ns: str = "refuse") -> pa.DataType:
    """The Arrow type a reader produces for a SQL Server column (TYPES; hundred_ns='keep' keeps 100 ns)."""
    return type_row(base_name(col.native_type)).arrow(col.logical, hundred_ns == "keep")


@dataclass(frozen=True)
class TargetType:
    """The SQL Server type a column from another engine gets, and how it differs from the source's type
    (record.SchemaChange kind and why; no kind when it holds exactly the source's values)."""

    type: str
    change: SchemaChangeKind | None = None
    reason: str = ""


_EXACT = {
    "bool": "bit",
    "int8": "tinyint",
    "int16": "smallint",
    "int32": "int",
    "int64": "bigint",
    "float32": "real",
    "float64": "float",
    "date": "date",
    "uuid": "uniqueidentifier",
    "xml": "xml",
}
_AS_TEXT = {
    "json": ("nvarchar(max)", "SQL Server has no JSON type: the text as PostgreSQL prints it"),
    "jsonb": ("nvarchar(max)", "SQL Server has no JSON type: the text as PostgreSQL prints it"),
    "interval": ("nvarchar(100)", "SQL Server has no interval type: the text as PostgreSQL prints it"),
    "enum": ("nvarchar(64)", "the label (at most 63 bytes)"),
    "array": ("nvarchar(max)", "SQL Server has no arrays: the text as PostgreSQL prints it"),
    "other": ("nvarchar(max)", "no SQL Server type: value::text (unsupported_types = text)"),
}
_TIMES = {"time": "time", "timestamp": "datetime2", "timestamptz": "datetimeoffset"}
KEY_TEXT = "nvarchar(450)"
"""Unbounded text in a key or index: SQL Server keys cannot hold (max) types, and 450 UTF-16 units fill the 900
bytes of a clustered key."""


KEY_BINARY = "varbinary(900)"
"""Unbounded bytes in a key or index: 900 bytes fill a clustered key."""


def _text_type(lt: LogicalType, keyed: bool) -> TargetType:
    """PostgreSQL counts a length in characters, SQL Server in UTF-16 code units, where a character outside the
    BMP (an emoji) takes two: n characters need nvarchar(2n). char(n) becomes nvarchar too, holding the text
    padded as PostgreSQL prints it (nchar(2n) would pad it further)."""
    if lt.length is not None and 2 * lt.length <= 4000:
        why = "lengths count UTF-16 code units: a character outside the BMP takes two" + (", padding kept" * lt.fixed)
        return TargetType(f"nvarchar({max(2 * lt.length, 1)})", "type_widened", why)
    if keyed:
        return TargetType(KEY_TEXT, "type_narrowed", "a key cannot hold nvarchar(max): longer values are refused")
    return TargetType("nvarchar(max)", "type_widened", "SQL Server's unbounded Unicode text")


def _decimal_type(lt: LogicalType) -> TargetType:
    if lt.precision is None or lt.precision > 38:
        return TargetType(
            "decimal(38,10)",
            "type_narrowed",
            "SQL Server decimals end at 38 digits: a value with more than 28 integer or 10 fraction digits, "
            "NaN or infinity is refused, never rounded",
        )
    return TargetType(f"decimal({lt.precision},{lt.scale or 0})")


def _from_logical(lt: LogicalType, keyed: bool) -> TargetType:
    """The one table of PostgreSQL (or any other engine's) logical types → SQL Server types."""
    k = lt.kind
    if k in _EXACT:
        return TargetType(_EXACT[k])
    if k in _AS_TEXT:
        typ, why = _AS_TEXT[k]
        if keyed and typ == "nvarchar(max)":
            return TargetType(KEY_TEXT, "type_text", why + "; in a key: nvarchar(450), longer values are refused")
        return TargetType(typ, "type_text", why)
    if k == "money":
        return TargetType(
            "decimal(19,2)", "type_widened", "PostgreSQL money reaches ±92233720368547758.07, past SQL Server money"
        )
    if k == "decimal":
        return _decimal_type(lt)
    if k == "string":
        return _text_type(lt, keyed)
    if k == "binary":
        if lt.length is not None and lt.length <= 8000:
            return TargetType(f"{'binary' if lt.fixed else 'varbinary'}({max(lt.length, 1)})")
        if keyed:
            why = "a key cannot hold varbinary(max): longer values are refused"
            return TargetType(KEY_BINARY, "type_narrowed", why)
        return TargetType("varbinary(max)")
    if k in _TIMES:
        typ = f"{_TIMES[k]}({min(lt.precision if lt.precision is not None else 6, 7)})"
        if k == "timestamptz":
            return TargetType(typ, "type_widened", "the instant, with offset +00:00")
        return TargetType(typ)
    if k == "rowversion":
        return TargetType("binary(8)", "type_widened", "the same 8 bytes: a rowversion column cannot take values")
    return TargetType("nvarchar(max)", "type_text", f"no SQL Server type for logical kind {k}: its text")


def target_type(col: Column, source_engine: str, keyed: bool = False) -> TargetType:
    """The SQL Server type for `col` from a `source_engine` catalog, and how it differs: the declared type
    verbatim when that is SQL Server (rowversion becomes binary(8)). `keyed`: the column is in a key or index.
    The DDL and schema_changes both ask this; there is no other copy of the mapping."""
    if source_engine == MSSQL:
        if base_name(col.native_type) in ("rowversion", "timestamp"):
            return _from_logical(LogicalType("rowversion"), keyed)
        return TargetType(col.native_type)
    chosen = _from_logical(col.logical, keyed)
    same_digits = col.native_type.replace("numeric", "decimal").replace(" ", "") == chosen.type
    if col.logical.kind == "decimal" and chosen.change is None and not same_digits:
        why = "the decimal holding the same values (SQL Server has no negative scale, nor one above the precision)"
        return TargetType(chosen.type, "type_widened", why)
    return chosen


_PG_SIMPLE = {
    "bool": "boolean",
    "int8": "smallint",
    "int16": "smallint",
    "int32": "integer",
    "int64": "bigint",
    "float32": "real",
    "float64": "double precision",
    "binary": "bytea",
    "rowversion": "bytea",
    "date": "date",
    "uuid": "uuid",
    "xml": "xml",
}


def postgres_type(col: Column) -> str:
    """The PostgreSQL column type for a SQL Server column (the PostgreSQL engine's postgres_type gives the same
    for a column from 'mssql')."""
    lt = col.logical
    n = base_name(col.native_type)
    if n == "smallmoney" or n == "money":
        return "numeric(19,4)"
    if lt.kind in ("time", "timestamp", "timestamptz"):
        p = min(lt.precision if lt.precision is not None else 6, 6)
        zone = "with" if lt.kind == "timestamptz" else "without"
        name = "time" if lt.kind == "time" else "timestamp"
        return f"{name}({p}) {zone} time zone"
    if lt.kind == "string":
        if lt.length is None:
            return "text"
        return f"character({lt.length})" if lt.fixed and not lt.unicode else f"character varying({lt.length})"
    if lt.kind in _PG_SIMPLE:
        return _PG_SIMPLE[lt.kind]
    if lt.kind == "decimal":
        return f"numeric({lt.precision},{lt.scale or 0})"
    return "text"


def datetimeoffset_instant(text: pa.Array) -> pa.Array:
    """UTC microseconds of datetimeoffset text, for comparing with engines that keep only the instant; the
    100 ns digit is truncated."""
    import pyarrow.compute as pc

    ticks, _ = datetimeoffset_parts(text)
    truncated = pc.divide(ticks, 10)  # toward zero: one less where a negative tick count had a 100 ns digit
    floor = pc.if_else(pc.less(ticks, pc.multiply(truncated, 10)), pc.subtract(truncated, 1), truncated)
    return floor.cast(pa.timestamp("us", "UTC"))
