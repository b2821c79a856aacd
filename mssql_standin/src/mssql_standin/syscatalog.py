"""The side catalog of declared T-SQL objects, and the sys.* / INFORMATION_SCHEMA views built from it.

DuckDB forgets declared types (every string is VARCHAR), so the engine keeps its own model of tables,
columns, constraints and indexes. Views are materialised as Arrow tables on demand and registered on the
session's DuckDB cursor, so a catalog query is just another query and sees the session's own uncommitted DDL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from . import variant
from .aliastypes import FIRST_USER_TYPE_ID, AliasType, alias_key
from .clrtypes import USER_TYPE_IDS
from .types import TYPE_IDS, SqlType, arrow_type, decimal_storage, make_type

SCHEMA_IDS = {"dbo": 1, "guest": 2, "INFORMATION_SCHEMA": 3, "sys": 4}
CREATE_DATE = dt.datetime(2024, 1, 1)


@dataclass
class Column:
    name: str
    type: SqlType
    nullable: bool = True
    identity: tuple[int, int] | None = None
    computed: str | None = None  # T-SQL definition as sys.computed_columns shows it
    computed_sql: str | None = None  # DuckDB expression over storage columns
    default: str | None = None  # T-SQL definition as sys.default_constraints shows it
    default_name: str | None = None
    default_id: int = 0
    column_id: int = 0
    rowguidcol: bool = False

    @property
    def is_rowversion(self) -> bool:
        return self.type.name == "timestamp"


@dataclass
class Index:
    name: str
    index_id: int
    kind: str  # "PK", "UQ" (constraints) or "IX"
    unique: bool
    clustered: bool
    columns: list[tuple[str, bool]]  # (column, descending)
    include: list[str] = field(default_factory=list)
    filter: str | None = None
    object_id: int = 0  # the constraint's object id for PK/UQ


@dataclass
class ForeignKey:
    name: str
    object_id: int
    columns: list[str]
    ref_schema: str
    ref_table: str
    ref_columns: list[str]
    on_delete: str = "NO_ACTION"
    on_update: str = "NO_ACTION"


@dataclass
class Check:
    name: str
    object_id: int
    definition: str  # as sys.check_constraints shows it
    column_id: int = 0


@dataclass
class Table:
    object_id: int
    schema: str
    name: str
    columns: list[Column]
    indexes: list[Index] = field(default_factory=list)
    fks: list[ForeignKey] = field(default_factory=list)
    create_date: dt.datetime = CREATE_DATE
    #: a view: its base table and view column -> base column, when it is a plain projection (updatable)
    checks: list[Check] = field(default_factory=list)
    view: bool = False
    view_base: tuple[str, str] | None = None
    view_map: dict[str, str] = field(default_factory=dict)
    #: sys.partitions.data_compression of the heap or clustered index (0 NONE, 1 ROW, 2 PAGE)
    data_compression: int = 0

    def col(self, name: str) -> Column | None:
        low = name.lower()
        for c in self.columns:
            if c.name.lower() == low:
                return c
        return None

    def column(self, name: str) -> Column:
        """The column, or SQL Server's error 207."""
        c = self.col(name)
        if c is None:
            from .results import SqlServerError

            raise SqlServerError(207, f"Invalid column name '{name}'.")
        return c

    @property
    def identity(self) -> Column | None:
        return next((c for c in self.columns if c.identity is not None), None)

    @property
    def pk(self) -> Index | None:
        return next((i for i in self.indexes if i.kind == "PK"), None)

    @property
    def physical(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def two_part(self) -> str:
        return f"{self.schema}.{self.name}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Catalog:
    schemas: dict[str, int] = field(default_factory=lambda: {"dbo": 1, "guest": 2})
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    #: alias types by alias_key(schema, name)
    aliases: dict[str, AliasType] = field(default_factory=dict)

    def schema_name(self, name: str) -> str | None:
        low = name.lower()
        return next((s for s in self.schemas if s.lower() == low), None)

    def existing_schema(self, name: str) -> str:
        """The schema's name as declared, or SQL Server's error 2760 (for an object to be created in it)."""
        schema = self.schema_name(name)
        if schema is None:
            from .results import SqlServerError

            raise SqlServerError(
                2760,
                f'The specified schema name "{name}" either does not exist or you do not have permission to use it.',
            )
        return schema

    def table(self, schema: str, name: str) -> Table | None:
        return self.tables.get((schema.lower(), name.lower()))

    def add(self, t: Table) -> None:
        self.tables[(t.schema.lower(), t.name.lower())] = t

    def remove(self, t: Table) -> None:
        self.tables.pop((t.schema.lower(), t.name.lower()), None)

    def alias(self, parts: list[str]) -> AliasType | None:
        """The alias type `[schema.]name` names (schema dbo when left out)."""
        return self.aliases.get(alias_key(parts[-2] if len(parts) >= 2 else "dbo", parts[-1]))

    def alias_by_id(self, user_type_id: int) -> AliasType | None:
        return next((a for a in self.aliases.values() if a.user_type_id == user_type_id), None)

    def next_user_type_id(self) -> int:
        return max((a.user_type_id + 1 for a in self.aliases.values()), default=FIRST_USER_TYPE_ID)

    def objects(self) -> list[tuple[int, str, int, str, str, int]]:
        """(object_id, name, schema_id, type, type_desc, parent_object_id) for every object."""
        out: list[tuple[int, str, int, str, str, int]] = []
        for t in self.tables.values():
            sid = self.schemas[t.schema]
            if t.view:
                out.append((t.object_id, t.name, sid, "V ", "VIEW", 0))
                continue
            out.append((t.object_id, t.name, sid, "U ", "USER_TABLE", 0))
            for i in t.indexes:
                if i.kind in ("PK", "UQ"):
                    desc = "PRIMARY_KEY_CONSTRAINT" if i.kind == "PK" else "UNIQUE_CONSTRAINT"
                    out.append((i.object_id, i.name, sid, i.kind, desc, t.object_id))
            for c in t.columns:
                if c.default_name:
                    out.append((c.default_id, c.default_name, sid, "D ", "DEFAULT_CONSTRAINT", t.object_id))
            for f in t.fks:
                out.append((f.object_id, f.name, sid, "F ", "FOREIGN_KEY_CONSTRAINT", t.object_id))
            for k in t.checks:
                out.append((k.object_id, k.name, sid, "C ", "CHECK_CONSTRAINT", t.object_id))
        return out

    def object_by_id(self, oid: int) -> tuple[int, str, int, str, str, int] | None:
        return next((o for o in self.objects() if o[0] == oid), None)

    def table_by_id(self, oid: int) -> Table | None:
        return next((t for t in self.tables.values() if t.object_id == oid), None)


# --------------------------------------------------------------------------------------------- views

_T = make_type
SYSNAME = SqlType("nvarchar", 128)
NV = SqlType("nvarchar", 4000)
INT = _T("int", [])
SMALL = _T("smallint", [])
TINY = _T("tinyint", [])
BIT = _T("bit", [])
DTIME = _T("datetime", [])
CHAR2 = SqlType("char", 2)
VC128 = SqlType("varchar", 128)
SQLV = SqlType("sql_variant", 0)

ViewCols = list[tuple[str, SqlType]]


@dataclass
class ViewDef:
    columns: ViewCols
    rows: Callable[[Catalog, ViewContext], list[tuple[object, ...]]]


@dataclass
class ViewContext:
    database: str
    row_counts: Callable[[Table], int]
    identity_current: Callable[[Table], int | None]
    #: (in-row bytes, LOB bytes) of a table's stored rows, from data_bytes_sql; None: estimate from declared widths
    data_bytes: Callable[[Table], tuple[int, int]] | None = None


def _types_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for name, tid in sorted(TYPE_IDS.items(), key=lambda kv: kv[1]):
        t = make_type(name, ["1"] if name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary") else [])
        max_len = {
            "varchar": 8000,
            "nvarchar": 8000,
            "char": 8000,
            "nchar": 8000,
            "binary": 8000,
            "varbinary": 8000,
            "sysname": 256,
            "decimal": 17,
            "numeric": 17,
            "xml": -1,
        }.get(name, t.max_length)
        prec = {"decimal": 38, "numeric": 38, "time": 16, "datetime2": 27, "datetimeoffset": 34}.get(name, t.precision)
        scale = {"time": 7, "datetime2": 7, "datetimeoffset": 7}.get(name, t.scale)
        uid = 256 if name == "sysname" else USER_TYPE_IDS.get(name, tid)
        coll = "SQL_Latin1_General_CP1_CI_AS" if t.is_string and name != "xml" else None
        clr = name in USER_TYPE_IDS  # the CLR types: assembly types in schema sys, is_user_defined 1 as SQL Server
        rows.append((name, tid, uid, 4, 1, max_len, prec, scale, coll, True, clr, clr))
    for a in sorted(cat.aliases.values(), key=lambda a: a.user_type_id):
        b = a.base
        coll = "SQL_Latin1_General_CP1_CI_AS" if b.is_string and b.name != "xml" else None
        row = (TYPE_IDS[b.name], a.user_type_id, cat.schemas[a.schema], None, b.max_length, b.precision, b.scale)
        rows.append((a.name, *row, coll, a.nullable, True, False))
    return rows


def _columns_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for c in t.columns:
            ty = c.type
            tid = TYPE_IDS[ty.name]
            coll = "SQL_Latin1_General_CP1_CI_AS" if ty.is_string and ty.name != "xml" else None
            prec = ty.precision if ty.name not in ("decimal", "numeric") else ty.precision
            rows.append(
                (
                    t.object_id,
                    c.name,
                    c.column_id,
                    tid,
                    ty.user_type or USER_TYPE_IDS.get(ty.name, tid),
                    ty.max_length,
                    prec,
                    ty.scale,
                    coll,
                    c.nullable,
                    c.identity is not None,
                    c.computed is not None,
                    c.default_id,
                    c.rowguidcol,
                    0,
                )
            )
    return rows


def _identity_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        c = t.identity
        if c is not None and c.identity is not None:
            tid = TYPE_IDS[c.type.name]
            rows.append(
                (
                    t.object_id,
                    c.name,
                    c.column_id,
                    tid,
                    c.type.max_length,
                    c.nullable,
                    int(c.identity[0]),
                    int(c.identity[1]),
                    None if ctx.identity_current(t) is None else int(ctx.identity_current(t)),  # type: ignore[arg-type]
                )
            )
    return rows


def _computed_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [
        (t.object_id, c.name, c.column_id, TYPE_IDS[c.type.name], c.computed, False)
        for t in cat.tables.values()
        for c in t.columns
        if c.computed is not None
    ]


def _default_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [
        (
            c.default_name,
            c.default_id,
            cat.schemas[t.schema],
            t.object_id,
            "D ",
            "DEFAULT_CONSTRAINT",
            c.column_id,
            c.default,
            False,
        )
        for t in cat.tables.values()
        for c in t.columns
        if c.default_name
    ]


def _tables_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [
        (
            t.name,
            t.object_id,
            cat.schemas[t.schema],
            0,
            "U ",
            "USER_TABLE",
            t.create_date,
            t.create_date,
            False,
            False,
            0,
        )
        for t in cat.tables.values()
        if not t.view
    ]


def _views_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [
        (t.name, t.object_id, cat.schemas[t.schema], 0, "V ", "VIEW", t.create_date, t.create_date, False)
        for t in cat.tables.values()
        if t.view
    ]


def _objects_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [(o[1], o[0], o[2], o[5], o[3], o[4], CREATE_DATE, CREATE_DATE, False) for o in cat.objects()]


def _schemas_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [(n, i, 1) for n, i in cat.schemas.items()]
    rows += [("INFORMATION_SCHEMA", 3, 3), ("sys", 4, 4)]
    return rows


def _key_constraint_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for i in t.indexes:
            if i.kind in ("PK", "UQ"):
                desc = "PRIMARY_KEY_CONSTRAINT" if i.kind == "PK" else "UNIQUE_CONSTRAINT"
                rows.append((i.name, i.object_id, cat.schemas[t.schema], t.object_id, i.kind, desc, i.index_id, False))
    return rows


def _indexes_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        if not any(i.clustered for i in t.indexes):
            rows.append((t.object_id, None, 0, 0, "HEAP", False, False, False, False, None, *_INDEX_DEFAULTS))
        for i in t.indexes:
            kind = 1 if i.clustered else 2
            rows.append(
                (
                    t.object_id,
                    i.name,
                    i.index_id,
                    kind,
                    "CLUSTERED" if i.clustered else "NONCLUSTERED",
                    i.unique,
                    i.kind == "PK",
                    i.kind == "UQ",
                    i.filter is not None,
                    i.filter,
                    *_INDEX_DEFAULTS,
                )
            )
    return rows


#: data_space_id, ignore_dup_key, fill_factor, is_padded, is_disabled, is_hypothetical, allow_row_locks,
#: allow_page_locks
_INDEX_DEFAULTS = (1, False, 0, False, False, False, True, True)


def _index_columns_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for i in t.indexes:
            n = 0
            for k, (cname, desc) in enumerate(i.columns, 1):
                c = t.col(cname)
                n += 1
                rows.append((t.object_id, i.index_id, n, c.column_id if c else 0, k, desc, False))
            for cname in i.include:
                c = t.col(cname)
                n += 1
                rows.append((t.object_id, i.index_id, n, c.column_id if c else 0, 0, False, True))
    return rows


def _fk_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for f in t.fks:
            ref = cat.table(f.ref_schema, f.ref_table)
            acts = {"NO_ACTION": 0, "CASCADE": 1, "SET_NULL": 2, "SET_DEFAULT": 3}
            rows.append(
                (
                    f.name,
                    f.object_id,
                    cat.schemas[t.schema],
                    t.object_id,
                    "F ",
                    "FOREIGN_KEY_CONSTRAINT",
                    ref.object_id if ref else 0,
                    1,
                    acts[f.on_delete],
                    f.on_delete,
                    acts[f.on_update],
                    f.on_update,
                    False,
                    False,
                )
            )
    return rows


def _fk_column_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for f in t.fks:
            ref = cat.table(f.ref_schema, f.ref_table)
            for k, (a, b) in enumerate(zip(f.columns, f.ref_columns, strict=False), 1):
                ca, cb = t.col(a), ref.col(b) if ref else None
                rows.append(
                    (
                        f.object_id,
                        k,
                        t.object_id,
                        ca.column_id if ca else 0,
                        ref.object_id if ref else 0,
                        cb.column_id if cb else 0,
                    )
                )
    return rows


def _partitions_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        if t.view:
            continue
        n = ctx.row_counts(t)
        ids = [i.index_id for i in t.indexes]
        if not any(i.clustered for i in t.indexes):
            ids = [0, *ids]
        for iid in ids:
            pid = t.object_id * 1000 + iid
            rows.append((pid, t.object_id, iid, 1, pid, n, t.data_compression if iid in (0, 1) else 0))
    return rows


def _stats_rows(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    """Page counts as SQL Server keeps them: the heap or clustered index from the bytes its rows really take
    (8,096 usable bytes per page, LOB pages apart), so planners see nvarchar(max) columns; nonclustered indexes
    from the declared widths of their columns."""
    rows: list[tuple[object, ...]] = []
    measured: dict[int, tuple[int, int]] = {}
    for r in _partitions_rows(cat, ctx):
        oid, iid, n = int(r[1]), int(r[2]), int(r[5])  # type: ignore[call-overload]
        t = next(x for x in cat.tables.values() if x.object_id == oid)
        if iid in (0, 1) and ctx.data_bytes is not None:
            if oid not in measured:
                measured[oid] = ctx.data_bytes(t)
            in_row, lob = measured[oid]
            data, lob_pages = -(-in_row // 8096), -(-lob // 8060)
        else:
            data, lob_pages = -(-n * _index_row_width(t, iid) // 8096), 0
        used = data + lob_pages
        rows.append((r[0], oid, iid, 1, data, data, data, lob_pages, used, used, n))
    return rows


def _index_row_width(t: Table, index_id: int) -> int:
    """Declared bytes of one row of an index (the whole row for a heap or clustered index), capped at a page."""
    ix = next((i for i in t.indexes if i.index_id == index_id), None)
    if ix is None or ix.clustered:
        cols = [c for c in t.columns if c.computed is None]
    else:
        names = {n.lower() for n, _ in ix.columns} | {n.lower() for n in ix.include}
        clustered = next((i for i in t.indexes if i.clustered), None)
        names |= {n.lower() for n, _ in clustered.columns} if clustered is not None else set()
        cols = [c for c in t.columns if c.name.lower() in names]
    width = 11 + sum(type_for_storage(c.type) for c in cols) + (8 if ix is not None and not ix.clustered else 0)
    return min(width, 8060)


VARIABLE_TYPES = {"varchar", "nvarchar", "varbinary", "xml", "sql_variant", *USER_TYPE_IDS}
LOB_TYPES = {"text", "ntext", "image"}


def data_bytes_sql(t: Table) -> str:
    """A DuckDB query for (in-row bytes, LOB bytes) of t's rows as SQL Server stores them: row header and
    fixed-width columns, then each variable-length value (UTF-16 for n-types) with its 2-byte offset; values
    of (max) types longer than 8,000 bytes, and text/ntext/image always, go to LOB pages behind a 24-byte
    pointer."""
    fixed = 11
    in_row: list[str] = []
    lob: list[str] = []
    for c in t.columns:
        if c.computed is not None:
            continue
        ty = c.type
        if ty.name not in VARIABLE_TYPES and ty.name not in LOB_TYPES:
            fixed += type_for_storage(ty)
            continue
        col = quote(c.name)
        if ty.name in ("varbinary", "image", "sql_variant") or ty.name in USER_TYPE_IDS:
            size = f"octet_length({col})"
        else:
            size = f"{2 if ty.is_unicode else 1} * length({col})"
        if ty.name in LOB_TYPES:
            in_row.append(f"CASE WHEN {col} IS NULL THEN 2 ELSE 18 END")
            lob.append(f"coalesce({size}, 0)")
        elif ty.length == -1:
            in_row.append(f"CASE WHEN {col} IS NULL THEN 2 WHEN {size} > 8000 THEN 26 ELSE {size} + 2 END")
            lob.append(f"CASE WHEN {size} > 8000 THEN {size} ELSE 0 END")
        else:
            in_row.append(f"coalesce({size}, 0) + 2")
    per_row = " + ".join([str(fixed), *in_row])
    lob_sum = " + ".join(lob) if lob else "0"
    return f"SELECT coalesce(sum({per_row}), 0), coalesce(sum({lob_sum}), 0) FROM {t.physical}"


def _is_tables(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    return [(ctx.database, t.schema, t.name, "VIEW" if t.view else "BASE TABLE") for t in cat.tables.values()]


_NUMERIC_TYPES = {"int", "bigint", "smallint", "tinyint", "decimal", "numeric", "money", "smallmoney", "float", "real"}


def _is_columns(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for c in t.columns:
            ty = c.type
            name = ty.name
            char_max = ty.length if ty.is_string or name in ("binary", "varbinary") else None
            if name in ("text", "ntext", "image"):
                char_max = 2147483647 if name != "ntext" else 1073741823
            if name == "xml":
                char_max = -1
            octet = None
            if char_max is not None:
                octet = (
                    -1 if char_max == -1 else (ty.max_length if name not in ("text", "ntext", "image") else 2147483647)
                )
            num_prec = ty.precision if name in _NUMERIC_TYPES else None
            radix = (2 if name in ("float", "real") else 10) if num_prec is not None else None
            num_scale = ty.scale if num_prec is not None and name not in ("float", "real") else None
            dt_prec = (
                ty.scale
                if name in ("time", "datetime2", "datetimeoffset", "datetime", "smalldatetime", "date")
                else None
            )
            if name == "smalldatetime" or name == "date":
                dt_prec = 0
            charset = ("iso_1" if not ty.is_unicode else "UNICODE") if ty.is_string and name != "xml" else None
            coll = "SQL_Latin1_General_CP1_CI_AS" if ty.is_string and name != "xml" else None
            alias = cat.alias_by_id(ty.user_type) if ty.user_type else None
            domain = (ctx.database, alias.schema, alias.name) if alias is not None else (None, None, None)
            rows.append(
                (
                    ctx.database,
                    t.schema,
                    t.name,
                    c.name,
                    c.column_id,
                    c.default,
                    "YES" if c.nullable else "NO",
                    name,
                    char_max,
                    octet,
                    num_prec,
                    radix,
                    num_scale,
                    dt_prec,
                    charset,
                    coll,
                    *domain,
                )
            )
    return rows


def _is_table_constraints(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for i in t.indexes:
            if i.kind in ("PK", "UQ"):
                kind = "PRIMARY KEY" if i.kind == "PK" else "UNIQUE"
                rows.append((ctx.database, t.schema, i.name, ctx.database, t.schema, t.name, kind, "NO", "NO"))
        for f in t.fks:
            rows.append((ctx.database, t.schema, f.name, ctx.database, t.schema, t.name, "FOREIGN KEY", "NO", "NO"))
    return rows


def _is_key_column_usage(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        keys = [(i.name, [c for c, _d in i.columns]) for i in t.indexes if i.kind in ("PK", "UQ")]
        keys += [(f.name, f.columns) for f in t.fks]
        for name, cnames in keys:
            for k, cname in enumerate(cnames, 1):
                c = t.col(cname)
                rows.append((ctx.database, t.schema, name, ctx.database, t.schema, t.name, c.name if c else cname, k))
    return rows


def _is_referential(cat: Catalog, ctx: ViewContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in cat.tables.values():
        for f in t.fks:
            ref = cat.table(f.ref_schema, f.ref_table)
            uq = None
            if ref is not None:
                want = [c.lower() for c in f.ref_columns]
                uq = next(
                    (
                        i.name
                        for i in ref.indexes
                        if i.kind in ("PK", "UQ") and [c.lower() for c, _ in i.columns] == want
                    ),
                    None,
                )
            rows.append(
                (
                    ctx.database,
                    t.schema,
                    f.name,
                    ctx.database,
                    f.ref_schema,
                    uq,
                    "SIMPLE",
                    f.on_update.replace("_", " "),
                    f.on_delete.replace("_", " "),
                )
            )
    return rows


_S = SYSNAME
_DESC = SqlType("nvarchar", 60)
_TEXT = SqlType("nvarchar", -1)
_BIG = _T("bigint", [])
# Column groups several views begin with, as SQL Server's catalog repeats them: an object (sys.objects), a
# column of a table, a partition, and an INFORMATION_SCHEMA constraint with its table.
_OBJECT: ViewCols = [
    ("name", _S),
    ("object_id", INT),
    ("schema_id", INT),
    ("parent_object_id", INT),
    ("type", CHAR2),
    ("type_desc", _DESC),
]
_OBJECT_DATES: ViewCols = [("create_date", DTIME), ("modify_date", DTIME), ("is_ms_shipped", BIT)]
_COLUMN: ViewCols = [("object_id", INT), ("name", _S), ("column_id", INT), ("system_type_id", TINY)]
_TYPE_SIZE: ViewCols = [
    ("max_length", SMALL),
    ("precision", TINY),
    ("scale", TINY),
    ("collation_name", _S),
    ("is_nullable", BIT),
]
_PARTITION: ViewCols = [("partition_id", _BIG), ("object_id", INT), ("index_id", INT), ("partition_number", INT)]
_CONSTRAINT_TABLE: ViewCols = [
    ("CONSTRAINT_CATALOG", _S),
    ("CONSTRAINT_SCHEMA", _S),
    ("CONSTRAINT_NAME", _S),
    ("TABLE_CATALOG", _S),
    ("TABLE_SCHEMA", _S),
    ("TABLE_NAME", _S),
]
_PAGE_COUNTS = (
    "in_row_data_page_count",
    "in_row_used_page_count",
    "in_row_reserved_page_count",
    "lob_used_page_count",
    "used_page_count",
    "reserved_page_count",
    "row_count",
)
_INDEX_FLAGS = (
    "ignore_dup_key",
    "fill_factor",
    "is_padded",
    "is_disabled",
    "is_hypothetical",
    "allow_row_locks",
    "allow_page_locks",
)
VIEWS: dict[str, ViewDef] = {
    "sys.types": ViewDef(
        [("name", _S), ("system_type_id", TINY), ("user_type_id", INT), ("schema_id", INT), ("principal_id", INT),
         *_TYPE_SIZE, ("is_user_defined", BIT), ("is_assembly_type", BIT)],
        _types_rows,
    ),
    "sys.columns": ViewDef(
        [*_COLUMN, ("user_type_id", INT), *_TYPE_SIZE, ("is_identity", BIT), ("is_computed", BIT),
         ("default_object_id", INT), ("is_rowguidcol", BIT), ("graph_type", INT)],
        _columns_rows,
    ),
    "sys.identity_columns": ViewDef(
        [*_COLUMN, ("max_length", SMALL), ("is_nullable", BIT), ("seed_value", SQLV), ("increment_value", SQLV),
         ("last_value", SQLV)],
        _identity_rows,
    ),
    "sys.computed_columns": ViewDef([*_COLUMN, ("definition", _TEXT), ("is_persisted", BIT)], _computed_rows),
    "sys.default_constraints": ViewDef(
        [*_OBJECT, ("parent_column_id", INT), ("definition", _TEXT), ("is_system_named", BIT)], _default_rows
    ),
    "sys.tables": ViewDef(
        [*_OBJECT, *_OBJECT_DATES, ("is_memory_optimized", BIT), ("temporal_type", TINY)], _tables_rows
    ),
    "sys.objects": ViewDef([*_OBJECT, *_OBJECT_DATES], _objects_rows),
    "sys.schemas": ViewDef([("name", _S), ("schema_id", INT), ("principal_id", INT)], _schemas_rows),
    "sys.key_constraints": ViewDef(
        [*_OBJECT, ("unique_index_id", INT), ("is_system_named", BIT)], _key_constraint_rows
    ),
    "sys.indexes": ViewDef(
        [("object_id", INT), ("name", _S), ("index_id", INT), ("type", TINY), ("type_desc", _DESC),
         ("is_unique", BIT), ("is_primary_key", BIT), ("is_unique_constraint", BIT), ("has_filter", BIT),
         ("filter_definition", _TEXT), ("data_space_id", INT),
         *((flag, TINY if flag == "fill_factor" else BIT) for flag in _INDEX_FLAGS)],
        _indexes_rows,
    ),
    "sys.index_columns": ViewDef(
        [("object_id", INT), ("index_id", INT), ("index_column_id", INT), ("column_id", INT), ("key_ordinal", TINY),
         ("is_descending_key", BIT), ("is_included_column", BIT)],
        _index_columns_rows,
    ),
    "sys.foreign_keys": ViewDef(
        [*_OBJECT, ("referenced_object_id", INT), ("key_index_id", INT), ("delete_referential_action", TINY),
         ("delete_referential_action_desc", _DESC), ("update_referential_action", TINY),
         ("update_referential_action_desc", _DESC), ("is_disabled", BIT), ("is_not_trusted", BIT)],
        _fk_rows,
    ),
    "sys.foreign_key_columns": ViewDef(
        [("constraint_object_id", INT), ("constraint_column_id", INT), ("parent_object_id", INT),
         ("parent_column_id", INT), ("referenced_object_id", INT), ("referenced_column_id", INT)],
        _fk_column_rows,
    ),
    "sys.partitions": ViewDef(
        [*_PARTITION, ("hobt_id", _BIG), ("rows", _BIG), ("data_compression", TINY)], _partitions_rows
    ),
    "sys.dm_db_partition_stats": ViewDef([*_PARTITION, *((c, _BIG) for c in _PAGE_COUNTS)], _stats_rows),
    "information_schema.tables": ViewDef(
        [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("TABLE_TYPE", SqlType("varchar", 10))],
        _is_tables,
    ),
    "information_schema.columns": ViewDef(
        [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("COLUMN_NAME", _S),
         ("ORDINAL_POSITION", INT), ("COLUMN_DEFAULT", SqlType("nvarchar", 4000)),
         ("IS_NULLABLE", SqlType("varchar", 3)), ("DATA_TYPE", _S), ("CHARACTER_MAXIMUM_LENGTH", INT),
         ("CHARACTER_OCTET_LENGTH", INT), ("NUMERIC_PRECISION", TINY), ("NUMERIC_PRECISION_RADIX", SMALL),
         ("NUMERIC_SCALE", INT), ("DATETIME_PRECISION", SMALL), ("CHARACTER_SET_NAME", _S), ("COLLATION_NAME", _S),
         ("DOMAIN_CATALOG", _S), ("DOMAIN_SCHEMA", _S), ("DOMAIN_NAME", _S)],
        _is_columns,
    ),
    "information_schema.table_constraints": ViewDef(
        [*_CONSTRAINT_TABLE, ("CONSTRAINT_TYPE", SqlType("varchar", 11)), ("IS_DEFERRABLE", SqlType("varchar", 2)),
         ("INITIALLY_DEFERRED", SqlType("varchar", 2))],
        _is_table_constraints,
    ),
    "information_schema.key_column_usage": ViewDef(
        [*_CONSTRAINT_TABLE, ("COLUMN_NAME", _S), ("ORDINAL_POSITION", INT)], _is_key_column_usage
    ),
    "information_schema.referential_constraints": ViewDef(
        [("CONSTRAINT_CATALOG", _S), ("CONSTRAINT_SCHEMA", _S), ("CONSTRAINT_NAME", _S),
         ("UNIQUE_CONSTRAINT_CATALOG", _S), ("UNIQUE_CONSTRAINT_SCHEMA", _S), ("UNIQUE_CONSTRAINT_NAME", _S),
         ("MATCH_OPTION", SqlType("varchar", 7)), ("UPDATE_RULE", SqlType("varchar", 11)),
         ("DELETE_RULE", SqlType("varchar", 11))],
        _is_referential,
    ),
}  # fmt: skip
VIEWS["sys.all_columns"] = VIEWS["sys.columns"]
VIEWS["sys.check_constraints"] = ViewDef(
    [*_OBJECT, ("parent_column_id", INT), ("definition", _TEXT), ("is_disabled", BIT), ("is_not_trusted", BIT)],
    lambda cat, ctx: [
        (k.name, k.object_id, cat.schemas[t.schema], t.object_id, "C ", "CHECK_CONSTRAINT", k.column_id,
         k.definition, False, False)
        for t in cat.tables.values()
        for k in t.checks
    ],
)  # fmt: skip
VIEWS["sys.views"] = ViewDef(VIEWS["sys.objects"].columns, _views_rows)
VIEWS["sys.system_columns"] = ViewDef(VIEWS["sys.columns"].columns, lambda c, x: [])


def view_arrow(name: str, cat: Catalog, ctx: ViewContext) -> pa.Table:
    """Materialise one catalog view as an Arrow table in storage form."""
    v = VIEWS[name]
    rows = v.rows(cat, ctx)
    arrays = []
    for k, (_cname, ty) in enumerate(v.columns):
        vals = [r[k] for r in rows]
        # a sql_variant holds its value with a base type (int, or bigint beyond int; text as nvarchar), as tables do
        arrays.append(variant.stored_array(vals) if ty.name == "sql_variant" else pa.array(vals, arrow_type(ty)))
    return pa.Table.from_arrays(arrays, names=[c for c, _ in v.columns])


def type_for_storage(ty: SqlType) -> int:
    """Bytes a value of ty takes in a row (for sys.partitions-style estimates)."""
    if ty.name in ("decimal", "numeric"):
        return decimal_storage(ty.precision)
    return max(ty.max_length, 0)
