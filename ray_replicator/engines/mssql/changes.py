"""What a SQL Server target's tables change against their source's, decided without writing (Target.schema_changes).

Every decision here is the DDL's own (types.target_type, ddl.index_not_kept, ddl.foreign_key_not_kept): `plan`
shows what `prepare` will do, never a second opinion of it.
"""

from __future__ import annotations

from ray_replicator.catalog import Catalog, Column, Domain, Table
from ray_replicator.constraint_names import FOREIGN_KEY, KEYS, constraint_renames
from ray_replicator.engines.base import UsageError
from ray_replicator.engines.mssql.ddl import IDENTITY_TYPES, foreign_key_not_kept, index_not_kept, keyed_columns
from ray_replicator.engines.mssql.types import MSSQL, TargetType, base_name, target_type
from ray_replicator.record import SchemaChange, alias_type_change

_CHECKS_NOT_KEPT = "a SQL Server target does not recreate checks"
MAX_COLUMNS = 1024
"""SQL Server's columns per table (without sparse column sets)."""


def refuse_untakeable(catalog: Catalog) -> None:
    """Refuse, before any table is created, a table SQL Server cannot create at all."""
    for table in catalog.tables:
        if len(table.columns) > MAX_COLUMNS:
            raise UsageError(
                f"{table.qualified}: {len(table.columns)} columns, more than SQL Server's {MAX_COLUMNS} per table; "
                "exclude the table"
            )


def schema_changes(catalog: Catalog, source_engine: str) -> list[SchemaChange]:
    """Every way the tables prepare() creates differ from the source's, table by table in catalog order; a table
    SQL Server cannot create is refused (refuse_untakeable)."""
    refuse_untakeable(catalog)
    copied = {(t.schema, t.name) for t in catalog.tables}
    changes: list[SchemaChange] = []
    for table in catalog.tables:
        keyed = keyed_columns(table)
        for col in table.columns:
            changes.extend(_column_changes(table, col, source_engine, col.name in keyed, _domains(catalog, col)))
        changes.extend(_table_changes(table, source_engine, copied))
    return changes + constraint_renames(
        catalog,
        KEYS | {FOREIGN_KEY},
        same=str.casefold,
        stored=str,
        sequences=lambda schema: [],
        why="SQL Server constraint names are unique per schema",
    )


def _domains(catalog: Catalog, col: Column) -> list[Domain]:
    """The PostgreSQL domain a column is declared with and the domains it is based on, outermost first."""
    chain: list[Domain] = []
    domain = catalog.domain_of(col)
    while domain is not None:
        chain.append(domain)
        domain = catalog.domains.get(domain.base.removesuffix("[]"))
    return chain


def _domain_changes(table: str, col: Column, tt: TargetType, chain: list[Domain]) -> list[SchemaChange]:
    """A domain column has the domain's base type, NOT NULL where a domain says so (the catalog's nullable); the
    domains' checks and default are listed as not kept, as a table's own are."""
    why = f"SQL Server has no domains: the base type {chain[-1].base}" + (f"; {tt.reason}" if tt.reason else "")
    found = [SchemaChange(table, col.name, "type_changed", col.native_type, tt.type, why)]
    for domain in chain:
        found += [
            SchemaChange(
                table, col.name, "constraint_not_kept", f"domain {domain.name} {c.definition}", "", _CHECKS_NOT_KEPT
            )
            for c in domain.checks
        ]
    collated = next((d for d in chain if d.collation), None)
    if collated is not None and not col.collation:
        why = f"the collation of domain {collated.name}: the column takes the database's default collation"
        found.append(SchemaChange(table, col.name, "collation_not_kept", str(collated.collation), "", why))
    default = next((d for d in chain if d.default is not None), None)
    if default is not None and col.default is None:
        why = f"the default of domain {default.name}: defaults are recreated only SQL Server → SQL Server"
        found.append(SchemaChange(table, col.name, "default_not_kept", str(default.default), "", why))
    return found


def _column_changes(
    table: Table, col: Column, source_engine: str, keyed: bool, domains: list[Domain]
) -> list[SchemaChange]:
    name = table.qualified
    if source_engine == MSSQL:
        tt = target_type(col, source_engine, keyed)
        alias = alias_type_change(name, col, tt.type)
        return _type_change(name, col, tt) + ([alias] if alias is not None else []) + _variant_collation(name, col)
    if col.computed is not None:
        why = f"a {source_engine} generated column: its expression is {source_engine} SQL"
        return [SchemaChange(name, col.name, "column_dropped", f"GENERATED ALWAYS AS ({col.computed})", "", why)]
    tt = target_type(col, source_engine, keyed)
    found = _domain_changes(name, col, tt, domains) if domains else _type_change(name, col, tt)
    ident = col.identity
    if ident is not None and base_name(tt.type) in IDENTITY_TYPES:
        if not ident.always:
            source = "GENERATED BY DEFAULT AS IDENTITY" if col.default is None else f"DEFAULT {col.default}"
            why = "explicit values only under SET IDENTITY_INSERT; continues after the source's current value"
            target = f"IDENTITY({int(ident.seed)}, {int(ident.increment)})"
            found.append(SchemaChange(name, col.name, "identity_changed", source, target, why))
    elif col.default is not None:
        why = f"a {source_engine} expression: defaults are recreated only SQL Server → SQL Server"
        found.append(SchemaChange(name, col.name, "default_not_kept", col.default, "", why))
    if col.collation:
        why = "the column takes the database's default collation"
        found.append(SchemaChange(name, col.name, "collation_not_kept", col.collation, "", why))
    return found


def _variant_collation(table: str, col: Column) -> list[SchemaChange]:
    """sql_variant = keep makes each value again with its base type, but a string value's own collation is not
    read: it takes the target database's default."""
    if col.logical.kind != "variant":
        return []
    why = "sql_variant = keep: each string value takes the target database's default collation"
    return [SchemaChange(table, col.name, "collation_not_kept", "each string value's own collation", "", why)]


def _type_change(table: str, col: Column, tt: TargetType) -> list[SchemaChange]:
    """The column's type change, if the target type differs from the column's: a column the type policy already
    carries as the target's text (its own SchemaChange says so) is not changed again."""
    if tt.change is None or col.native_type == tt.type:
        return []
    return [SchemaChange(table, col.name, tt.change, col.native_type, tt.type, tt.reason)]


def _table_changes(table: Table, source_engine: str, copied: set[tuple[str, str]]) -> list[SchemaChange]:
    name = table.qualified
    same = source_engine == MSSQL
    found = [
        SchemaChange(name, None, "constraint_not_kept", f"CHECK {c.name} {c.definition}", "", _CHECKS_NOT_KEPT)
        for c in table.checks
    ]
    for ix in table.indexes:
        why = index_not_kept(ix, same)
        if why is not None:
            found.append(SchemaChange(name, None, "constraint_not_kept", f"index {ix.name}", "", why))
    for fk in table.foreign_keys:
        why = foreign_key_not_kept(fk, copied)
        if why is not None:
            found.append(SchemaChange(name, None, "constraint_not_kept", f"foreign key {fk.name}", "", why))
    return found
