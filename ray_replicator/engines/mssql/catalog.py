"""The SQL Server catalog: tables, columns with their declared types, keys, indexes, foreign keys, estimates.

Read from sys.* views in a few set-wide queries; only the tables that --tables and --exclude leave become Tables,
so a table left out (with a sql_variant column, say) never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ray_replicator.catalog import (
    Catalog,
    Check,
    Column,
    ForeignKey,
    Identity,
    Index,
    Key,
    LogicalType,
    Table,
    chosen_by,
)
from ray_replicator.engines.base import EngineError, UsageError
from ray_replicator.engines.mssql.connect import MssqlEndpoint
from ray_replicator.engines.mssql.types import CLR_TYPES, MSSQL, Declared, logical_type, native_type

log = logging.getLogger(__name__)

LEDGER_SCHEMA = "_ray_replicator"
SYSTEM_SCHEMAS = ("sys", "INFORMATION_SCHEMA", "guest", LEDGER_SCHEMA)
_FK_ACTIONS = {"NO_ACTION": "NO ACTION", "CASCADE": "CASCADE", "SET_NULL": "SET NULL", "SET_DEFAULT": "SET DEFAULT"}

_TABLES_SQL = """SELECT t.object_id, s.name AS schema_name, t.name AS table_name
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
WHERE t.is_ms_shipped = 0
ORDER BY s.name, t.name"""

_COLUMNS_SQL = """SELECT c.object_id, c.column_id, c.name, ty.name AS type_name, ty.is_user_defined,
       TYPE_NAME(ty.system_type_id) AS base_type,
       c.max_length, c.precision, c.scale, c.collation_name, c.is_nullable, c.is_identity, c.is_computed,
       cc.definition AS computed_definition, cc.is_persisted, dc.definition AS default_definition,
       CONVERT(decimal(38, 0), ic.seed_value) AS seed, CONVERT(decimal(38, 0), ic.increment_value) AS increment,
       CONVERT(decimal(38, 0), ic.last_value) AS last_value
FROM sys.columns c
JOIN sys.types ty ON ty.user_type_id = c.user_type_id
LEFT JOIN sys.computed_columns cc ON cc.object_id = c.object_id AND cc.column_id = c.column_id
LEFT JOIN sys.default_constraints dc ON dc.object_id = c.default_object_id
LEFT JOIN sys.identity_columns ic ON ic.object_id = c.object_id AND ic.column_id = c.column_id
WHERE c.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY c.object_id, c.column_id"""

# SELECT i.*: is_hypothetical (indexes the tuning advisor only imagined) is read when the server has it.
_INDEXES_SQL = """SELECT i.* FROM sys.indexes i WHERE i.index_id > 0
  AND i.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY i.object_id, i.index_id"""

_INDEX_COLUMNS_SQL = """SELECT ic.object_id, ic.index_id, c.name, ic.key_ordinal, ic.is_descending_key,
       ic.is_included_column,
       ic.index_column_id
FROM sys.index_columns ic
JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
WHERE ic.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY ic.object_id, ic.index_id, ic.is_included_column, ic.key_ordinal, ic.index_column_id"""

_FKS_SQL = """SELECT fk.object_id, fk.parent_object_id, fk.name, rs.name AS ref_schema, rt.name AS ref_table,
       fk.delete_referential_action_desc, fk.update_referential_action_desc
FROM sys.foreign_keys fk
JOIN sys.tables rt ON rt.object_id = fk.referenced_object_id
JOIN sys.schemas rs ON rs.schema_id = rt.schema_id
ORDER BY fk.parent_object_id, fk.name"""

_FK_COLUMNS_SQL = """SELECT fkc.constraint_object_id, fkc.constraint_column_id, pc.name AS column_name,
       rc.name AS ref_column
FROM sys.foreign_key_columns fkc
JOIN sys.columns pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id
JOIN sys.columns rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id
ORDER BY fkc.constraint_object_id, fkc.constraint_column_id"""

_CHECKS_SQL = """SELECT parent_object_id, name, definition FROM sys.check_constraints WHERE is_disabled = 0
ORDER BY parent_object_id, name"""

_ROWS_SQL = """SELECT p.object_id, SUM(p.rows) AS row_count, MAX(p.data_compression) AS data_compression
FROM sys.partitions p WHERE p.index_id IN (0, 1) GROUP BY p.object_id"""

_BYTES_SQL = """SELECT ps.object_id, SUM(ps.used_page_count) * 8192 AS bytes FROM sys.dm_db_partition_stats ps
GROUP BY ps.object_id"""


def declared(r: dict[str, Any]) -> Declared:
    name = str(r["type_name"]).lower()
    if r["is_user_defined"] and name not in CLR_TYPES and r["base_type"] is not None:
        name = str(r["base_type"]).lower()  # alias types: the base type (the alias may not exist on the target)
    # A CLR user-defined type has no base type: its own name stays, and the unsupported_types setting decides.
    return Declared(name=name, max_length=int(r["max_length"]), precision=int(r["precision"]), scale=int(r["scale"]))


def _alias_type(r: dict[str, Any]) -> str | None:
    """The name of an alias type (CREATE TYPE .. FROM base); a CLR type keeps its own name as the column's type."""
    name = str(r["type_name"])
    return name if r["is_user_defined"] and name.lower() not in CLR_TYPES and r["base_type"] is not None else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class MssqlCatalog(MssqlEndpoint):
    """The catalog half of a SQL Server source."""

    def _dicts(self, what: str, sql: str, names: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(zip(names, r, strict=True)) for r in self.query(what, sql)]

    def _tables(self) -> list[tuple[int, str, str]]:
        return [
            (int(oid), str(schema), str(name))
            for oid, schema, name in self.query("listing tables", _TABLES_SQL)
            if schema not in SYSTEM_SCHEMAS
        ]

    def table_names(self) -> tuple[str, list[tuple[str, str]]]:
        """The database's name and its tables' (schema, name), from sys.tables alone: enough to apply --tables and
        --exclude before any table's columns are read."""
        database = str(self.query_value("reading the database name", "SELECT DB_NAME()"))
        return database, [(schema, name) for _oid, schema, name in self._tables()]

    def catalog(self, include: list[str], exclude: list[str]) -> Catalog:
        """Details of the tables that include (all when empty) and exclude leave; the column, index and key rows of
        any other table are never turned into a Table (a sql_variant column there refuses nothing)."""
        database = str(self.query_value("reading the database name", "SELECT DB_NAME()"))
        collation = self.query_value(
            "reading the collation", "SELECT CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS nvarchar(128))"
        )
        tables_raw = [t for t in self._tables() if chosen_by(t[1], t[2], include, exclude)]
        if include and not tables_raw:
            raise UsageError(f"no table on {self.display} matches include patterns {include}")
        by_id: dict[int, Table] = {}
        for oid, schema, name in tables_raw:
            by_id[int(oid)] = Table(schema=str(schema), name=str(name), columns=[])
        col_names = [
            "object_id",
            "column_id",
            "name",
            "type_name",
            "is_user_defined",
            "base_type",
            "max_length",
            "precision",
            "scale",
            "collation",
            "is_nullable",
            "is_identity",
            "is_computed",
            "computed_definition",
            "is_persisted",
            "default_definition",
            "seed",
            "increment",
            "last_value",
        ]
        for r in self._dicts("reading columns", _COLUMNS_SQL, col_names):
            t = by_id.get(int(r["object_id"]))
            if t is not None:
                t.columns.append(self._column(t, r))
        self._keys_and_indexes(by_id)
        self._foreign_keys(by_id)
        for parent, name, definition in self.query("reading check constraints", _CHECKS_SQL):
            if int(parent) in by_id:
                by_id[int(parent)].checks.append(Check(str(name), f"CHECK {definition}"))
        partitions = self.query("reading row estimates", _ROWS_SQL)
        rows = {int(o): int(n or 0) for o, n, _ in partitions}
        # ROW, PAGE or columnstore compression on the heap or clustered index: the user chose small over fast.
        compressed = {int(o): int(c or 0) > 0 for o, _, c in partitions}
        try:
            sizes = {int(o): int(b or 0) for o, b in self.query("reading table sizes", _BYTES_SQL)}
        except EngineError:  # needs VIEW DATABASE STATE; estimate from row counts and declared widths
            sizes = {}
        for oid, t in by_id.items():
            t.row_estimate = rows.get(oid, 0)
            t.large_values_compressed = compressed.get(oid)
            t.byte_estimate = sizes.get(oid) or t.row_estimate * self._row_width(t)
        return Catalog(engine=MSSQL, database=database, tables=list(by_id.values()), collation=collation)

    @staticmethod
    def _row_width(t: Table) -> int:
        width = 0
        for c in t.columns:
            length = c.logical.length
            width += 8 if length is None and c.logical.kind not in ("string", "binary") else min(length or 1000, 1000)
        return max(width, 1)

    def _column(self, t: Table, r: dict[str, Any]) -> Column:
        d = declared(r)
        native = native_type(d)
        if d.name == "sql_variant" and self.u.sql_variant == "refuse":
            raise EngineError(
                f"{t.qualified}.{r['name']} is sql_variant: add sql_variant=keep to the source URL to copy each "
                "value with its base type (SQL Server targets) or sql_variant=text to copy each value's exact text, "
                "or exclude the table"
            )
        identity = None
        if r["is_identity"]:
            identity = Identity(
                seed=int(r["seed"] if r["seed"] is not None else 1),
                increment=int(r["increment"] if r["increment"] is not None else 1),
                current=_int_or_none(r["last_value"]),
            )
        computed = None
        if r["is_computed"]:
            computed = str(r["computed_definition"]) + (" PERSISTED" if r["is_persisted"] else "")
        kept_variant = d.name == "sql_variant" and self.u.sql_variant == "keep"
        return Column(
            name=str(r["name"]),
            native_type=native,
            logical=LogicalType("variant") if kept_variant else logical_type(d),
            nullable=bool(r["is_nullable"]),
            default=r["default_definition"],
            identity=identity,
            computed=computed,
            collation=r["collation"],
            alias_type=_alias_type(r),
        )

    def _keys_and_indexes(self, by_id: dict[int, Table]) -> None:
        indexes = [ix for ix in self.query_named("reading indexes", _INDEXES_SQL) if not ix.get("is_hypothetical")]
        cols: dict[tuple[int, int], list[tuple[str, bool, bool]]] = {}
        for oid, iid, cname, _ko, desc, included, _icid in self.query("reading index columns", _INDEX_COLUMNS_SQL):
            cols.setdefault((int(oid), int(iid)), []).append((str(cname), bool(desc), bool(included)))
        for ix in indexes:
            t = by_id.get(int(ix["object_id"]))
            if t is None:
                continue
            entries = cols.get((int(ix["object_id"]), int(ix["index_id"])), [])
            key_cols = tuple(c for c, _d, inc in entries if not inc)
            kind = str(ix["type_desc"]).upper()
            if ix["is_primary_key"]:
                t.primary_key = Key(str(ix["name"]), key_cols, primary=True)
                if kind != "CLUSTERED":  # a nonclustered primary key is remembered as such for SQL Server targets
                    t.indexes.append(Index(str(ix["name"]), key_cols, unique=True, method="PK NONCLUSTERED"))
            elif ix["is_unique_constraint"]:
                t.unique_keys.append(Key(str(ix["name"]), key_cols))
            elif kind in ("CLUSTERED", "NONCLUSTERED"):
                t.indexes.append(
                    Index(
                        name=str(ix["name"]),
                        columns=key_cols,
                        unique=bool(ix["is_unique"]),
                        include=tuple(c for c, _d, inc in entries if inc),
                        where=ix.get("filter_definition"),
                        descending=tuple(d for _c, d, inc in entries if not inc),
                        method=kind,
                    )
                )
            else:
                log.warning("index %s on %s is %s; not copied", ix["name"], t.qualified, kind.lower())

    def _foreign_keys(self, by_id: dict[int, Table]) -> None:
        cols: dict[int, list[tuple[str, str]]] = {}
        for fid, _n, cname, rname in self.query("reading foreign key columns", _FK_COLUMNS_SQL):
            cols.setdefault(int(fid), []).append((str(cname), str(rname)))
        for fid, parent, name, ref_schema, ref_table, on_delete, on_update in self.query(
            "reading foreign keys", _FKS_SQL
        ):
            t = by_id.get(int(parent))
            if t is None:
                continue
            pairs = cols.get(int(fid), [])
            t.foreign_keys.append(
                ForeignKey(
                    name=str(name),
                    columns=tuple(p[0] for p in pairs),
                    ref_schema=str(ref_schema),
                    ref_table=str(ref_table),
                    ref_columns=tuple(p[1] for p in pairs),
                    on_delete=_FK_ACTIONS.get(str(on_delete), "NO ACTION"),
                    on_update=_FK_ACTIONS.get(str(on_update), "NO ACTION"),
                )
            )
