"""SQL Server DDL for a target: schemas and tables with exact types before the load, keys and indexes after it,
foreign keys once every table is done, and identities continued where the source's stood."""

from __future__ import annotations

import logging

from ray_replicator.catalog import Catalog, Column, ForeignKey, Index, Table
from ray_replicator.engines.base import UsageError, WriteOptions
from ray_replicator.engines.mssql.connect import MssqlEndpoint
from ray_replicator.engines.mssql.sql import n_literal, qualified, quote_ident
from ray_replicator.engines.mssql.types import MSSQL, base_name, target_type

log = logging.getLogger(__name__)

IDENTITY_TYPES = ("int", "bigint", "smallint", "tinyint", "decimal", "numeric")


def index_not_kept(ix: Index, same: bool) -> str | None:
    """Why an index is not created here, or None: its expressions or filter are the source dialect's SQL."""
    if not ix.columns or any(not c for c in ix.columns):
        return "it has expressions"
    if ix.where and not same:
        return "its filter is in another dialect"
    return None


def foreign_key_not_kept(fk: ForeignKey, copied: set[tuple[str, str]]) -> str | None:
    """Why a foreign key is not created here, or None."""
    if (fk.ref_schema, fk.ref_table) not in copied:
        return "it references a table not copied"
    return None


def keyed_columns(table: Table) -> set[str]:
    """Columns in a key or index: SQL Server cannot index (max) types."""
    keys = ([table.primary_key] if table.primary_key else []) + list(table.unique_keys)
    return {c for k in keys for c in k.columns} | {c for ix in table.indexes for c in ix.columns}


class MssqlDdl(MssqlEndpoint):
    """The DDL half of a SQL Server target."""

    def column_ddl(self, col: Column, source_engine: str, keyed: bool = False) -> str:
        """keyed: the column is in a key or index, where SQL Server refuses (max) types (types.target_type)."""
        same = source_engine == MSSQL
        ident = quote_ident(col.name)
        if col.computed is not None and same:
            return f"{ident} AS {col.computed}"
        typ = target_type(col, source_engine, keyed).type
        parts = [ident, typ]
        if same and col.collation and col.logical.kind == "string":
            parts.append(f"COLLATE {col.collation}")
        if col.identity is not None and base_name(typ) in IDENTITY_TYPES:
            parts.append(f"IDENTITY({int(col.identity.seed)}, {int(col.identity.increment)})")
        elif same and col.default is not None:
            parts.append(f"DEFAULT {col.default}")
        parts.append("NULL" if col.nullable else "NOT NULL")
        return " ".join(parts)

    def prepare_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        rel = qualified(table.schema, table.name)
        keyed = keyed_columns(table)
        cols = []
        for c in table.columns:
            if c.computed is not None and source_engine != MSSQL:
                log.warning("computed column %s.%s is %s SQL; not created", table.qualified, c.name, source_engine)
                continue
            cols.append(self.column_ddl(c, source_engine, keyed=c.name in keyed))
        if self.table_exists(table.schema, table.name):
            if options.existing == "fail":
                raise UsageError(
                    f"target table {table.qualified} already exists; set existing to truncate or drop, or drop it"
                )
            if options.existing == "truncate":
                self.execute(f"truncating {table.qualified}", f"DELETE FROM {rel}")
                return
            self.execute(f"dropping {table.qualified}", f"DROP TABLE {rel}")
        self.execute(
            f"creating table {table.qualified}",
            f"CREATE TABLE {rel} ({', '.join(cols)})",
            "check that every type and collation exists on the target",
        )
        if options.keys_before_load:
            self._add_keys(table)

    def _index_names(self, table: Table) -> set[str]:
        sql = (
            "SELECT i.name FROM sys.indexes i WHERE i.object_id = OBJECT_ID("
            f"{n_literal(qualified(table.schema, table.name))}) AND i.name IS NOT NULL"
        )
        return {str(r[0]) for r in self.query(f"listing indexes of {table.qualified}", sql)}

    def _add_keys(self, table: Table) -> None:
        rel = qualified(table.schema, table.name)
        existing = self._index_names(table)
        clustered_elsewhere = any(ix.method == "CLUSTERED" for ix in table.indexes)
        pk_nonclustered = any(ix.method == "PK NONCLUSTERED" for ix in table.indexes)
        keys = ([table.primary_key] if table.primary_key else []) + list(table.unique_keys)
        for key in keys:
            if key.name in existing:
                continue
            cols = ", ".join(quote_ident(k) for k in key.columns)
            if key.primary:
                kind = "PRIMARY KEY " + ("NONCLUSTERED" if clustered_elsewhere or pk_nonclustered else "CLUSTERED")
            else:
                kind = "UNIQUE NONCLUSTERED"
            self.execute(
                f"adding key {key.name} to {table.qualified}",
                f"ALTER TABLE {rel} ADD CONSTRAINT {quote_ident(key.name)} {kind} ({cols})",
                "the copied rows break the key: compare source and target",
            )

    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        rel = qualified(table.schema, table.name)
        same = source_engine == MSSQL
        existing = self._index_names(table)
        for ix in sorted(table.indexes, key=lambda i: i.method != "CLUSTERED"):  # clustered first: no rebuilds
            if ix.method == "CLUSTERED" and ix.name not in existing:
                self._create_index(table, ix, same)
                existing.add(ix.name)
        self._add_keys(table)
        existing = self._index_names(table)
        for ix in table.indexes:
            if ix.name in existing or ix.method in ("CLUSTERED", "PK NONCLUSTERED"):
                continue
            self._create_index(table, ix, same)
        for col in table.columns:
            ident = col.identity
            if ident is None or ident.current is None:
                continue
            self.execute(
                f"continuing identity of {table.qualified}.{col.name}",
                f"DBCC CHECKIDENT ({n_literal(rel)}, RESEED, {int(ident.current)}) WITH NO_INFOMSGS",
            )

    def _create_index(self, table: Table, ix: Index, same: bool) -> None:
        why = index_not_kept(ix, same)
        if why is not None:
            log.warning("index %s on %s not created: %s", ix.name, table.qualified, why)
            return
        cols = ", ".join(
            quote_ident(c) + (" DESC" if i < len(ix.descending) and ix.descending[i] else "")
            for i, c in enumerate(ix.columns)
        )
        kind = "CLUSTERED" if ix.method == "CLUSTERED" else "NONCLUSTERED"
        rel = qualified(table.schema, table.name)
        sql = f"CREATE {'UNIQUE ' if ix.unique else ''}{kind} INDEX {quote_ident(ix.name)} ON {rel} ({cols})"
        if ix.include:
            sql += f" INCLUDE ({', '.join(quote_ident(c) for c in ix.include)})"
        if ix.where:
            sql += f" WHERE {ix.where}"
        self.execute(f"creating index {ix.name} on {table.qualified}", sql)

    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        copied = {(t.schema, t.name) for t in catalog.tables}
        for table in catalog.tables:
            existing = {
                str(r[0])
                for r in self.query(
                    f"listing foreign keys of {table.qualified}",
                    "SELECT name FROM sys.foreign_keys WHERE parent_object_id = OBJECT_ID("
                    f"{n_literal(qualified(table.schema, table.name))})",
                )
            }
            for fk in table.foreign_keys:
                why = foreign_key_not_kept(fk, copied)
                if why is not None:
                    log.warning("foreign key %s on %s not created: %s", fk.name, table.qualified, why)
                    continue
                if fk.name in existing:
                    continue
                cols = ", ".join(quote_ident(c) for c in fk.columns)
                refs = ", ".join(quote_ident(c) for c in fk.ref_columns)
                self.execute(
                    f"adding foreign key {fk.name} to {table.qualified}",
                    f"ALTER TABLE {qualified(table.schema, table.name)} WITH CHECK "
                    f"ADD CONSTRAINT {quote_ident(fk.name)} "
                    f"FOREIGN KEY ({cols}) REFERENCES {qualified(fk.ref_schema, fk.ref_table)} ({refs}) "
                    f"ON DELETE {fk.on_delete} ON UPDATE {fk.on_update}",
                    "rows reference missing parents (the source may hold untrusted keys): fix or drop the key",
                )
