"""The PostgreSQL type table: what a column of each type means logically, how read_range carries it in Arrow and
how an Arrow column is written into it; and which PostgreSQL type a column from another engine becomes.

When source and target are both PostgreSQL the native type is used verbatim and the logical mapping is not
consulted for DDL.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_replicator.catalog import Column, LogicalType

POSTGRES = "postgres"


@dataclass(frozen=True)
class PgType:
    """One row of the type table, for a pg_type.typname."""

    kind: str
    """The logical kind; precision, scale and length come from the column's typmod."""
    arrow: str
    """The Arrow type read_range yields, as pyarrow prints it; "decimal" is decimal128 of the typmod when Arrow can
    hold it, else the exact text (see decimal_arrow)."""
    read: str = ""
    """A cast in read_range's SELECT list: "text" for values ADBC would hand out as opaque bytes or would change
    (interval), "numeric" for money (its text follows lc_monetary)."""
    takes_strings: bool = False
    """A target column of this type ingests an Arrow string column directly; others get strings through a staging
    table and a cast (numeric from unbounded decimals, inet, bit, enums... from text)."""


_STRING = PgType("string", "string", takes_strings=True)

PG_TYPES: dict[str, PgType] = {
    "bool": PgType("bool", "bool"),
    "int2": PgType("int16", "int16"),
    "int4": PgType("int32", "int32"),
    "int8": PgType("int64", "int64"),
    "oid": PgType("int64", "int32"),  # ADBC reads an oid as int32
    "float4": PgType("float32", "float"),
    "float8": PgType("float64", "double"),
    "money": PgType("money", "decimal", read="numeric"),
    "numeric": PgType("decimal", "decimal"),
    "text": _STRING,
    "varchar": _STRING,
    "bpchar": _STRING,
    "name": _STRING,
    "char": _STRING,
    "bytea": PgType("binary", "binary"),
    "date": PgType("date", "date32[day]"),
    "time": PgType("time", "time64[us]"),
    "timestamp": PgType("timestamp", "timestamp[us]"),
    "timestamptz": PgType("timestamptz", "timestamp[us, tz=UTC]"),
    "interval": PgType("interval", "string", read="text"),
    "uuid": PgType("uuid", "extension<arrow.uuid>"),
    "json": PgType("json", "extension<arrow.json>", takes_strings=True),
    "jsonb": PgType("jsonb", "extension<arrow.json>", takes_strings=True),
    "xml": PgType("xml", "string", read="text"),
}
"""pg_type.typname -> its row. A type not here is an enum (typtype 'e') or of kind "other" (timetz, inet, cidr,
macaddr, bit, varbit, geometric, ranges, tsvector, domains...): carried as text between engines, verbatim between
PostgreSQL databases."""

ENUM = PgType("enum", "string", read="text")
OTHER = PgType("other", "string", read="text")

_BY_KIND: dict[str, PgType] = {**{row.kind: row for row in reversed(PG_TYPES.values())}, "enum": ENUM, "other": OTHER}
"""The row read_range goes by for a column's logical kind (rows of one kind are read alike: a test holds them to
it); the first row of a kind in PG_TYPES."""

TEXT_TARGETS = frozenset(name for name, row in PG_TYPES.items() if row.takes_strings)


def pg_type(typname: str, typtype: str) -> PgType:
    """The row for a column's type."""
    if typtype == "e":
        return ENUM
    return PG_TYPES.get(typname, OTHER)


def _time_precision(typmod: int) -> int:
    """time/timestamp typmod is the fractional-second digits; -1 means the default of 6."""
    return 6 if typmod < 0 else typmod


def _decimal_logical(precision: int, scale: int) -> LogicalType:
    """numeric(p,s) as the decimal that holds exactly its values. Since PostgreSQL 15 the scale may be negative
    (numeric(5,-2) rounds to hundreds: decimal(7,0)) or above the precision (numeric(3,5) holds 0.00123:
    decimal(5,5)); the scale is an 11-bit signed field of the typmod."""
    return LogicalType("decimal", precision=max(precision - scale, 0) + max(scale, 0), scale=max(scale, 0))


def postgres_logical(typname: str, typmod: int, typtype: str, element: LogicalType | None = None) -> LogicalType:
    """The logical type of a PostgreSQL column given pg_type.typname, pg_attribute.atttypmod and typtype.

    Arrays pass their element's logical type in `element` (typname is then the element's name or the array's).
    """
    if element is not None:
        return LogicalType("array", element=element)
    kind = pg_type(typname, typtype).kind
    if kind == "decimal" and typmod >= 0:
        return _decimal_logical(((typmod - 4) >> 16) & 0xFFFF, (((typmod - 4) & 0x7FF) ^ 1024) - 1024)
    if typname in ("varchar", "bpchar"):
        length = typmod - 4 if typmod >= 4 else None
        return LogicalType("string", length=length, fixed=typname == "bpchar")
    if typname == "name":
        return LogicalType("string", length=63)
    if typname == "char":
        return LogicalType("string", length=1, fixed=True)
    if kind in ("time", "timestamp", "timestamptz"):
        return LogicalType(kind, precision=_time_precision(typmod))
    return LogicalType(kind)


def read_cast(lt: LogicalType) -> str:
    """The cast read_range applies to a column of logical type `lt` ("" for none).

    Every array is read as its text: ADBC flattens a multi-dimensional array into one list and drops the lower
    bounds ('[0:1]={5,6}'), and a SQL Server target wants the text as PostgreSQL prints it anyway. An interval is
    read as its text too: SQL Server has no interval type, and a PostgreSQL target casts the text back exactly."""
    if lt.kind == "array":
        return "text"
    row = _BY_KIND.get(lt.kind)  # a kind of another engine's catalog (verify reads a target with it) as is
    return "" if row is None else row.read


def decimal_arrow(lt: LogicalType) -> tuple[int, int] | None:
    """(precision, scale) of the Arrow decimal128 a money or numeric column is read as, or None when it is read as
    its exact text (an unbounded numeric, or more than Arrow's 38 digits)."""
    if lt.kind == "money":
        return 21, 2
    if lt.precision is None or lt.precision > 38:
        return None
    return lt.precision, lt.scale or 0


def arrow_name(typname: str, lt: LogicalType) -> str:
    """The Arrow type (as pyarrow prints it) read_range yields for a column of pg_type.typname `typname` and
    logical type `lt`."""
    if lt.kind == "array":
        return "string"
    row = PG_TYPES.get(typname, _BY_KIND[lt.kind])
    if row.arrow != "decimal":
        return row.arrow
    digits = decimal_arrow(lt)
    return "string" if digits is None else f"decimal128({digits[0]}, {digits[1]})"


def _bounded(precision: int | None, limit: int) -> str:
    return "" if precision is None else f"({min(precision, limit)})"


_FROM_SIMPLE_KIND = {
    "bool": "boolean",
    "int8": "smallint",  # SQL Server's unsigned tinyint 0..255: smallint holds it
    "int16": "smallint",
    "int32": "integer",
    "int64": "bigint",
    "float32": "real",
    "float64": "double precision",
    "money": "numeric(19,4)",  # never PostgreSQL money: its scale follows lc_monetary
    "binary": "bytea",
    "rowversion": "bytea",
    "date": "date",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
    "xml": "xml",
}
_TIME_KINDS = {
    "time": "time{} without time zone",
    "timestamp": "timestamp{} without time zone",
    "timestamptz": "timestamp{} with time zone",
}


def _pg_from_logical(lt: LogicalType) -> str:
    """PostgreSQL type for a logical type from another engine (the one table another engine extends)."""
    kind = lt.kind
    if kind in _FROM_SIMPLE_KIND:
        return _FROM_SIMPLE_KIND[kind]
    if kind in _TIME_KINDS:
        return _TIME_KINDS[kind].format(_bounded(lt.precision, 6))
    if kind == "decimal":
        return "numeric" if lt.precision is None else f"numeric({lt.precision},{lt.scale or 0})"
    if kind == "string":
        if lt.length is None:
            return "text"
        # nchar(n) counts UTF-16 units and comes padded: character(n) would pad a value with an emoji further
        return f"character({lt.length})" if lt.fixed and not lt.unicode else f"character varying({lt.length})"
    if kind == "array":
        return "text" if lt.element is None else f"{_pg_from_logical(lt.element)}[]"
    # enum from another engine (no type to recreate), other: text keeps every value
    return "text"


def postgres_type(column: Column, source_engine: str) -> str:
    """The PostgreSQL column type for `column` from a `source_engine` catalog."""
    if source_engine == POSTGRES:
        return column.native_type
    return _pg_from_logical(column.logical)
