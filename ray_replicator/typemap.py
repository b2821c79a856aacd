"""Type mapping between engines, through the engine-neutral LogicalType.

The PostgreSQL side lives here: what a PostgreSQL column means logically (`postgres_logical`) and which
PostgreSQL type a column from another engine becomes (`postgres_type`). When source and target are both
PostgreSQL the native type is used verbatim and this table is not consulted.
"""

from __future__ import annotations

from ray_replicator.catalog import Column, LogicalType

POSTGRES = "postgres"

# pg_type.typname -> logical kind, for the types that need no typmod to describe.
_PG_SIMPLE: dict[str, str] = {
    "bool": "bool",
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "oid": "int64",
    "float4": "float32",
    "float8": "float64",
    "money": "money",
    "text": "string",
    "bytea": "binary",
    "date": "date",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
    "xml": "xml",
}


def _pg_time_precision(typmod: int) -> int:
    """time/timestamp typmod is the fractional-second digits; -1 means the default of 6."""
    return 6 if typmod < 0 else typmod


def postgres_logical(typname: str, typmod: int, typtype: str, element: LogicalType | None = None) -> LogicalType:
    """The logical type of a PostgreSQL column given pg_type.typname, pg_attribute.atttypmod and typtype.

    Arrays pass their element's logical type in `element` (typname is then the element's name or the array's).
    """
    if element is not None:
        return LogicalType("array", element=element)
    if typtype == "e":
        return LogicalType("enum")
    if typname in _PG_SIMPLE:
        return LogicalType(_PG_SIMPLE[typname])
    if typname == "numeric":
        if typmod < 0:
            return LogicalType("decimal")
        return LogicalType("decimal", precision=((typmod - 4) >> 16) & 0xFFFF, scale=(typmod - 4) & 0xFFFF)
    if typname in ("varchar", "bpchar"):
        length = typmod - 4 if typmod >= 4 else None
        return LogicalType("string", length=length, fixed=typname == "bpchar")
    if typname == "name":
        return LogicalType("string", length=63)
    if typname == "char":
        return LogicalType("string", length=1, fixed=True)
    if typname == "time":
        return LogicalType("time", precision=_pg_time_precision(typmod))
    if typname == "timestamp":
        return LogicalType("timestamp", precision=_pg_time_precision(typmod))
    if typname == "timestamptz":
        return LogicalType("timestamptz", precision=_pg_time_precision(typmod))
    # timetz, inet, cidr, macaddr, bit, varbit, geometric, ranges, tsvector, domains ...: carried as text
    # between engines, verbatim between PostgreSQL databases.
    return LogicalType("other")


def _bounded(precision: int | None, limit: int) -> str:
    return "" if precision is None else f"({min(precision, limit)})"


def _pg_from_logical(lt: LogicalType) -> str:
    """PostgreSQL type for a logical type from another engine (the one table another engine extends)."""
    kind = lt.kind
    if kind == "bool":
        return "boolean"
    if kind in ("int8", "int16"):  # int8 is SQL Server's unsigned tinyint 0..255: smallint holds it
        return "smallint"
    if kind == "int32":
        return "integer"
    if kind == "int64":
        return "bigint"
    if kind == "float32":
        return "real"
    if kind == "float64":
        return "double precision"
    if kind == "decimal":
        if lt.precision is None:
            return "numeric"
        return f"numeric({lt.precision},{lt.scale or 0})"
    if kind == "money":
        return "numeric(19,4)"  # never PostgreSQL money: its scale follows lc_monetary
    if kind == "string":
        if lt.length is None:
            return "text"
        return f"character({lt.length})" if lt.fixed else f"character varying({lt.length})"
    if kind in ("binary", "rowversion"):
        return "bytea"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time{_bounded(lt.precision, 6)} without time zone"
    if kind == "timestamp":
        return f"timestamp{_bounded(lt.precision, 6)} without time zone"
    if kind == "timestamptz":
        return f"timestamp{_bounded(lt.precision, 6)} with time zone"
    if kind == "interval":
        return "interval"
    if kind == "uuid":
        return "uuid"
    if kind in ("json", "jsonb", "xml"):
        return kind
    if kind == "array":
        if lt.element is None:
            return "text"
        return f"{_pg_from_logical(lt.element)}[]"
    # enum from another engine (no type to recreate), other: text keeps every value
    return "text"


def postgres_type(column: Column, source_engine: str) -> str:
    """The PostgreSQL column type for `column` from a `source_engine` catalog."""
    if source_engine == POSTGRES:
        return column.native_type
    return _pg_from_logical(column.logical)
