"""SQL Server types: what a declared type means (logical and Arrow), and what other engines' columns become.

One table (`TYPES`) drives the SQL Server → logical/Arrow/PostgreSQL direction and docs/type-mapping.md shows the
same rows; `mssql_type` is the reverse direction (a column from any engine → a SQL Server column type). When
source and target are both SQL Server the declared type is used verbatim, except rowversion (a target cannot
take explicit rowversion values, so it becomes binary(8) holding the same 8 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ray_replicator.catalog import Column, LogicalType
from ray_replicator.typemap import datetimeoffset_parts

MSSQL = "mssql"

# Arrow cannot represent SQL Server's 100 ns digits past 2262 with timestamp('ns'); these types carry them.
SEVEN_DIGIT_TYPES = ("datetime2", "time", "datetimeoffset")
CLR_TYPES = ("geography", "geometry", "hierarchyid")


@dataclass(frozen=True)
class TypeRow:
    """One SQL Server type: its logical kind, the Arrow type a reader produces, the PostgreSQL type, and why."""

    mssql: str
    logical: str
    arrow: str
    postgres: str
    note: str = ""


TYPES: tuple[TypeRow, ...] = (
    TypeRow("bit", "bool", "bool", "boolean"),
    TypeRow("tinyint", "int8", "uint8", "smallint", "0..255 unsigned: smallint holds it"),
    TypeRow("smallint", "int16", "int16", "smallint"),
    TypeRow("int", "int32", "int32", "integer"),
    TypeRow("bigint", "int64", "int64", "bigint"),
    TypeRow("decimal(p,s) / numeric(p,s)", "decimal", "decimal128(p,s)", "numeric(p,s)", "never through a float"),
    TypeRow("money", "money", "decimal128(19,4)", "numeric(19,4)", "not PostgreSQL money (its scale follows locale)"),
    TypeRow("smallmoney", "money", "decimal128(10,4)", "numeric(19,4)"),
    TypeRow("real / float(1..24)", "float32", "float32", "real"),
    TypeRow("float / float(25..53)", "float64", "float64", "double precision"),
    TypeRow("char(n) / nchar(n)", "string (fixed)", "string", "character(n)", "varchar read as nvarchar: exact"),
    TypeRow("varchar(n) / nvarchar(n)", "string", "string", "character varying(n)", "NUL policy applies"),
    TypeRow("varchar(max) / nvarchar(max) / text / ntext", "string", "large_string", "text", "TEXTSIZE at maximum"),
    TypeRow("binary(n) / varbinary(n)", "binary", "binary", "bytea"),
    TypeRow("varbinary(max) / image", "binary", "large_binary", "bytea"),
    TypeRow("date", "date", "date32", "date", "0001-01-01..9999-12-31 fit"),
    TypeRow("time(p)", "time", "time64('us'), p=7: see hundred_ns", "time(min(p,6))", "hundred_ns policy"),
    TypeRow("smalldatetime", "timestamp(0)", "timestamp('s')", "timestamp(0) without time zone"),
    TypeRow("datetime", "timestamp(3)", "timestamp('ms')", "timestamp(3) without time zone", "1/300 s ticks, as shown"),
    TypeRow("datetime2(p)", "timestamp(p)", "timestamp('us'), p=7: see hundred_ns", "timestamp(min(p,6))", ""),
    TypeRow(
        "datetimeoffset(p)",
        "timestamptz(p)",
        "string 'YYYY-MM-DD hh:mm:ss[.f] +hh:mm'",
        "timestamp(min(p,6)) with time zone",
        "instant and offset both kept; PostgreSQL keeps the instant",
    ),
    TypeRow("uniqueidentifier", "uuid", "uuid (RFC byte order)", "uuid", "bytes_le on the wire, converted"),
    TypeRow("rowversion / timestamp", "rowversion", "binary (8 bytes)", "bytea", "SQL Server target: binary(8)"),
    TypeRow("xml", "xml", "large_string", "xml"),
    TypeRow("sql_variant", "other", "refused (sql_variant=refuse) or string", "text", "sql_variant=text is lossy"),
    TypeRow("geography / geometry / hierarchyid", "binary", "large_binary", "bytea", "SQL Server's native bytes"),
)


@dataclass(frozen=True)
class Declared:
    """A column's type as sys.columns/sys.types describe it."""

    name: str  # base system type name, lower case
    max_length: int  # bytes; -1 = max
    precision: int
    scale: int


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
    """The engine-neutral meaning of a declared SQL Server type."""
    n = d.name
    simple = {
        "bit": "bool",
        "tinyint": "int8",
        "smallint": "int16",
        "int": "int32",
        "bigint": "int64",
        "real": "float32",
        "date": "date",
        "uniqueidentifier": "uuid",
        "xml": "xml",
        "timestamp": "rowversion",
        "rowversion": "rowversion",
    }
    if n in simple:
        return LogicalType(simple[n])
    if n == "float":
        return LogicalType("float32" if d.precision <= 24 else "float64")
    if n in ("decimal", "numeric"):
        return LogicalType("decimal", precision=d.precision, scale=d.scale)
    if n == "money":
        return LogicalType("money", precision=19, scale=4)
    if n == "smallmoney":
        return LogicalType("money", precision=10, scale=4)
    if n in ("char", "varchar"):
        length = None if d.max_length == -1 else d.max_length
        return LogicalType("string", length=length, fixed=n == "char", unicode=False)
    if n in ("nchar", "nvarchar"):
        length = None if d.max_length == -1 else d.max_length // 2
        return LogicalType("string", length=length, fixed=n == "nchar")
    if n in ("text", "ntext"):
        return LogicalType("string", unicode=n == "ntext")
    if n in ("binary", "varbinary"):
        length = None if d.max_length == -1 else d.max_length
        return LogicalType("binary", length=length, fixed=n == "binary")
    if n in ("image", *CLR_TYPES):
        return LogicalType("binary")
    if n == "time":
        return LogicalType("time", precision=d.scale)
    if n == "smalldatetime":
        return LogicalType("timestamp", precision=0)
    if n == "datetime":
        return LogicalType("timestamp", precision=3)
    if n == "datetime2":
        return LogicalType("timestamp", precision=d.scale)
    if n == "datetimeoffset":
        return LogicalType("timestamptz", precision=d.scale)
    return LogicalType("other")  # sql_variant and anything newer than this table


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
    """The Arrow type a reader produces for a SQL Server column (see TYPES; hundred_ns='keep' keeps 100 ns)."""
    n = base_name(col.native_type)
    lt = col.logical
    keep = hundred_ns == "keep"
    if n == "bit":
        return pa.bool_()
    if n == "tinyint":
        return pa.uint8()
    if n in ("smallint", "int", "bigint"):
        return {"smallint": pa.int16(), "int": pa.int32(), "bigint": pa.int64()}[n]
    if lt.kind in ("float32", "float64"):
        return pa.float32() if lt.kind == "float32" else pa.float64()
    if lt.kind in ("decimal", "money"):
        return pa.decimal128(lt.precision or 38, lt.scale or 0)
    if lt.kind == "string" or lt.kind in ("xml", "other"):
        return pa.large_string() if lt.length is None else pa.string()
    if lt.kind == "rowversion":
        return pa.binary()
    if lt.kind == "binary":
        return pa.large_binary() if lt.length is None else pa.binary()
    if lt.kind == "date":
        return pa.date32()
    if lt.kind == "time":
        return pa.time64("ns") if keep and (lt.precision or 0) > 6 else pa.time64("us")
    if lt.kind == "timestamp":
        if n == "smalldatetime":
            return pa.timestamp("s")
        if n == "datetime":
            return pa.timestamp("ms")
        return pa.timestamp("ns") if keep and (lt.precision or 0) > 6 else pa.timestamp("us")
    if lt.kind == "timestamptz":
        return pa.string()
    if lt.kind == "uuid":
        return pa.uuid()
    return pa.large_string()


def _nchar_len(length: int | None, fixed: bool) -> str:
    if length is None or length > 4000:
        return "nvarchar(max)"
    return f"{'nchar' if fixed else 'nvarchar'}({max(length, 1)})"


def mssql_type(col: Column, source_engine: str) -> str:
    """The SQL Server column type for `col` from a `source_engine` catalog (verbatim when that is SQL Server)."""
    if source_engine == MSSQL:
        if base_name(col.native_type) in ("rowversion", "timestamp"):
            return "binary(8)"
        return col.native_type
    lt = col.logical
    k = lt.kind
    fixed = {
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
        "rowversion": "binary(8)",
        "json": "nvarchar(max)",
        "jsonb": "nvarchar(max)",
        "interval": "nvarchar(100)",
        "enum": "nvarchar(64)",
    }
    if k in fixed:
        return fixed[k]
    if k == "decimal":
        if lt.precision is None or lt.precision > 38:
            return "decimal(38,10)"  # unbounded numeric: values that do not fit are refused by the writer
        return f"decimal({lt.precision},{lt.scale or 0})"
    if k == "money":
        return "money"
    if k == "string":
        return _nchar_len(lt.length, lt.fixed)
    if k == "binary":
        if lt.length is None or lt.length > 8000:
            return "varbinary(max)"
        return f"{'binary' if lt.fixed else 'varbinary'}({max(lt.length, 1)})"
    if k == "time":
        return f"time({min(lt.precision if lt.precision is not None else 6, 7)})"
    if k == "timestamp":
        return f"datetime2({min(lt.precision if lt.precision is not None else 6, 7)})"
    if k == "timestamptz":
        return f"datetimeoffset({min(lt.precision if lt.precision is not None else 6, 7)})"
    return "nvarchar(max)"  # arrays, other: carried as text


def postgres_type(col: Column) -> str:
    """The PostgreSQL column type for a SQL Server column (what typemap.postgres_type answers for 'mssql')."""
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
        return f"character({lt.length})" if lt.fixed else f"character varying({lt.length})"
    simple = {
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
    if lt.kind in simple:
        return simple[lt.kind]
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
