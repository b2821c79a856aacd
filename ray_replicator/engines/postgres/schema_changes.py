"""The one decision of what a PostgreSQL target makes of each source column and name, and the record of every way
that differs from the source (record.SchemaChange). schema_changes() lists the record at plan time and prepare()
creates the tables from the same designs, so what is listed is what is created.

Between PostgreSQL databases a column is created as the source declares it and nothing is listed. From another
engine (SQL Server): names longer than 63 bytes are mapped (names.pg_name); types the target spells otherwise are
listed; computed columns become generated columns where the expression keeps its meaning and the target accepts
it, else plain columns holding the source's values; defaults are translated or listed as not kept; a
case-insensitive collation is either listed as not kept (collation = binary) or carried by a nondeterministic ICU
collation (collation = ci).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ray_replicator.catalog import Catalog, Column, Index, Table
from ray_replicator.constraint_names import INDEX, KEYS, constraint_renames
from ray_replicator.engines.base import UsageError, WriteOptions
from ray_replicator.engines.postgres.expressions import Translation, translate_computed, translate_default
from ray_replicator.engines.postgres.names import check_unique, is_mapped, pg_name
from ray_replicator.engines.postgres.sql import qualified, quote_ident
from ray_replicator.engines.postgres.types import POSTGRES, postgres_type
from ray_replicator.record import SchemaChange, SchemaChangeKind, alias_type_change

CI_COLLATIONS = {False: ("ci_as", "und-u-ks-level2"), True: ("ci_ai", "und-u-ks-level1")}
"""accent insensitive → (collation name created in the table's schema, ICU locale): level2 compares letters and
accents but not case, level1 letters only."""

_TYPE_NOTES: dict[tuple[SchemaChangeKind, str], tuple[str, ...]] = {
    ("type_widened", "PostgreSQL has no 1-byte integer"): ("tinyint",),
    ("type_widened", "PostgreSQL's money follows lc_monetary"): ("smallmoney", "money"),
    ("type_widened", "lengths count characters, not UTF-16 code units"): ("nchar", "nvarchar"),
    ("type_widened", "text holds any length"): ("text", "ntext"),
    ("type_widened", "image is bytea"): ("image",),
    ("type_widened", "timestamp holds every smalldatetime"): ("smalldatetime",),
    ("type_changed", "the instant is kept, the offset is not"): ("datetimeoffset",),
    ("type_changed", "the target does not generate row versions"): ("rowversion", "timestamp"),
    ("type_changed", "SQL Server's own serialization of the value, as bytes"): ("geography", "geometry", "hierarchyid"),
}
"""SQL Server types the target spells otherwise: (kind, why) → the declared types' names."""
_NOTE_OF = {name: note for note, names in _TYPE_NOTES.items() for name in names}
_SEVEN_DIGITS = ("time", "datetime2", "datetimeoffset")


@dataclass(frozen=True)
class ColumnDesign:
    """How the target creates one source column."""

    column: Column
    type: str
    collation: str | None = None
    """SQL after COLLATE, or None for the database's default."""
    generated: str | None = None
    """The expression of GENERATED ALWAYS AS (...) STORED."""
    default: str | None = None

    @property
    def copied(self) -> bool:
        """Whether the copy writes the column's values (a generated column's are computed by the target)."""
        return self.generated is None


@dataclass
class TableDesign:
    table: Table
    columns: list[ColumnDesign] = field(default_factory=list)
    changes: list[SchemaChange] = field(default_factory=list)
    collations: set[tuple[str, bool]] = field(default_factory=set)
    """(schema, accent insensitive) of the ICU collations its columns use."""


@dataclass
class Probe:
    """Translated expressions of one table for the target to accept or refuse."""

    table: Table
    generated: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    """'g:'/'d:' + column → the target's error."""


def case_insensitive(collation: str | None) -> bool:
    return collation is not None and "_CI" in collation.upper()


def accent_insensitive(collation: str) -> bool:
    return bool(re.search(r"_AI(_|$)", collation.upper()))


def ci_collation(schema: str, accents: bool) -> str:
    return qualified(schema, CI_COLLATIONS[accents][0])


def _pass_through(table: Table) -> TableDesign:
    """A PostgreSQL source's column as it is declared."""
    design = TableDesign(table)
    for col in table.columns:
        design.columns.append(ColumnDesign(col, col.native_type, col.collation, col.computed, col.default))
    return design


def probes(catalog: Catalog, source_engine: str) -> list[Probe]:
    """The translated computed expressions and defaults the target must accept before they are used."""
    out: list[Probe] = []
    if source_engine == POSTGRES:
        return out
    for table in catalog.tables:
        probe = Probe(table)
        by_name = {c.name: c for c in table.columns if c.computed is None}
        for col in table.columns:
            if col.computed is not None:
                gen = translate_computed(col.computed, by_name)
                if gen.sql is not None:
                    probe.generated[col.name] = gen.sql
            elif col.default is not None and col.identity is None:
                dflt = translate_default(col.default, col)
                if dflt.sql is not None:
                    probe.defaults[col.name] = dflt.sql
        if probe.generated or probe.defaults:
            out.append(probe)
    return out


async def run_probes(c: Any, found: list[Probe], source_engine: str) -> None:
    """Ask the target whether it takes each expression, in a transaction rolled back whatever happens: a scratch
    temporary table with the source table's plain columns, one savepoint per expression."""
    tr = c.transaction()
    await tr.start()
    try:
        for n, probe in enumerate(found):
            await _probe_table(c, probe, f"pg_temp.{quote_ident(f'rr_probe_{n}')}", source_engine)
    finally:
        await tr.rollback()


async def _probe_table(c: Any, probe: Probe, scratch: str, source_engine: str) -> None:
    plain = [
        f"{quote_ident(col.name)} {postgres_type(col, source_engine)}"
        for col in probe.table.columns
        if col.computed is None
    ]
    try:
        async with c.transaction():
            await c.execute(f"CREATE TEMPORARY TABLE {scratch} ({', '.join(plain)})")
    except Exception as exc:  # noqa: BLE001 - no scratch table (no TEMP privilege): nothing is accepted
        reason = str(exc).splitlines()[0]
        probe.refused.update({f"g:{name}": reason for name in probe.generated})
        probe.refused.update({f"d:{name}": reason for name in probe.defaults})
        return
    for prefix, exprs in (("g:", probe.generated), ("d:", probe.defaults)):
        for name, sql in exprs.items():
            ctype = postgres_type(probe.table.column(name), source_engine)
            clause = f"GENERATED ALWAYS AS ({sql}) STORED" if prefix == "g:" else f"DEFAULT {sql}"
            try:
                async with c.transaction():
                    await c.execute(f"ALTER TABLE {scratch} ADD COLUMN rr_probe_col {ctype} {clause}")
                    await c.execute(f"INSERT INTO {scratch} DEFAULT VALUES")
                    raise _Accepted
            except _Accepted:
                pass
            except Exception as exc:  # noqa: BLE001 - the target's refusal is the answer
                probe.refused[prefix + name] = str(exc).splitlines()[0]


class _Accepted(Exception):
    """Leaves a probe's savepoint, undoing it."""


def design_catalog(
    catalog: Catalog, source_engine: str, options: WriteOptions, found: list[Probe]
) -> list[TableDesign]:
    """Every table's design and its record; found: run_probes' answers."""
    renames = index_renames(catalog)
    if source_engine == POSTGRES:
        designs = [_pass_through(t) for t in catalog.tables]
    else:
        check_unique("schema", sorted({t.schema for t in catalog.tables}))
        for schema in sorted({t.schema for t in catalog.tables}):
            in_schema = [t for t in catalog.tables if t.schema == schema]
            check_unique(f"in schema {schema!r} table", [t.name for t in in_schema])
        refused = {(p.table.schema, p.table.name): p for p in found}
        designs = [
            _design_table(table, source_engine, options, refused.get((table.schema, table.name), Probe(table)))
            for table in catalog.tables
        ]
    copied = {(t.schema, t.name) for t in catalog.tables}
    for design in designs:
        design.changes.extend(_not_created(design.table, source_engine, copied))
        design.changes.extend(c for c in renames if c.table == design.table.qualified)
    return designs


def index_not_created(ix: Index, same: bool) -> bool:
    """A filtered index from another engine: its filter is that engine's SQL, and the index without it would mean
    something else (a unique one would refuse rows the source holds)."""
    return ix.where is not None and not same


def _not_created(table: Table, source_engine: str, copied: set[tuple[str, str]]) -> list[SchemaChange]:
    """What finalize does not create: foreign keys to tables not copied; from another engine, checks (their
    expressions are that engine's SQL and are not translated) and filtered indexes."""
    where = table.qualified
    found = [
        SchemaChange(
            where, None, "constraint_not_kept", f"foreign key {fk.name}", "", "it references a table not copied"
        )
        for fk in table.foreign_keys
        if (fk.ref_schema, fk.ref_table) not in copied
    ]
    if source_engine == POSTGRES:
        return found
    why = f"a {source_engine} expression: checks are not translated"
    found += [
        SchemaChange(where, None, "constraint_not_kept", f"CHECK {c.name} {c.definition}", "", why)
        for c in table.checks
    ]
    found += [
        SchemaChange(
            where,
            None,
            "constraint_not_kept",
            f"index {ix.name} WHERE {ix.where}",
            "",
            "its filter is in another dialect",
        )
        for ix in table.indexes
        if index_not_created(ix, same=False)
    ]
    return found


def _sequences(catalog: Catalog, schema: str) -> list[str]:
    """The sequences the target has in `schema`: the catalog's, and those PostgreSQL names for identity columns
    (<table>_<column>_seq, when that fits)."""
    names = [s.name for s in catalog.sequences if s.schema == schema]
    for table in (t for t in catalog.tables if t.schema == schema):
        names += [f"{table.name}_{c.name}_seq" for c in table.columns if c.identity is not None and c.default is None]
    return [name for name in names if not is_mapped(name)]


def index_renames(catalog: Catalog) -> list[SchemaChange]:
    """Index and key names two tables of one schema share, or that name a table or sequence there: PostgreSQL
    holds index names per schema (constraint_names' rule)."""
    return constraint_renames(
        catalog,
        KEYS | {INDEX},
        same=pg_name,
        stored=pg_name,
        sequences=partial(_sequences, catalog),
        why="PostgreSQL index names are unique per schema",
    )


def _name_changes(table: Table) -> list[SchemaChange]:
    where = table.qualified
    out = []
    for what, name in (("schema", table.schema), ("table", table.name)):
        if pg_name(name) != name:
            out.append(SchemaChange(where, None, "name_mapped", name, pg_name(name), f"{what} name over 63 bytes"))
    check_unique(f"in {where} column", [c.name for c in table.columns])
    keys = [k.name for k in ([table.primary_key] if table.primary_key else []) + table.unique_keys]
    constraints = keys + [i.name for i in table.indexes] + [f.name for f in table.foreign_keys]
    constraints += [c.name for c in table.checks]
    check_unique(f"in {where} index or constraint", constraints)
    for col in table.columns:
        if pg_name(col.name) != col.name:
            out.append(SchemaChange(where, col.name, "name_mapped", col.name, pg_name(col.name), "over 63 bytes"))
    for name in dict.fromkeys(constraints):
        if pg_name(name) != name:
            out.append(
                SchemaChange(where, None, "name_mapped", name, pg_name(name), "index or constraint over 63 bytes")
            )
    return out


def _type_change(table: Table, col: Column, target_type: str) -> SchemaChange | None:
    declared = col.native_type.split("(")[0].strip().lower()
    if col.logical.kind == "other":
        return SchemaChange(table.qualified, col.name, "type_text", col.native_type, target_type, "carried as text")
    if (alias := alias_type_change(table.qualified, col, target_type)) is not None:
        return alias
    if declared in _SEVEN_DIGITS and (col.logical.precision or 0) > 6:
        reason = "PostgreSQL keeps microseconds; the hundred_ns setting decides the values"
        if declared == "datetimeoffset":
            reason = "the offset is not kept and " + reason
        return SchemaChange(table.qualified, col.name, "type_changed", col.native_type, target_type, reason)
    if declared == "text" and col.logical.unicode:
        return None  # not SQL Server's text: the type policy's text twin, whose type_text change says so
    if declared in _NOTE_OF:
        kind, reason = _NOTE_OF[declared]
        return SchemaChange(table.qualified, col.name, kind, col.native_type, target_type, reason)
    return None


def _design_table(table: Table, source_engine: str, options: WriteOptions, probe: Probe) -> TableDesign:
    design = TableDesign(table, changes=_name_changes(table))
    by_name = {c.name: c for c in table.columns if c.computed is None}
    for col in table.columns:
        target_type = postgres_type(col, source_engine)
        changes: list[SchemaChange] = []
        if (change := _type_change(table, col, target_type)) is not None:
            changes.append(change)
        generated = _generated(table, col, by_name, probe, changes)
        default = _default(table, col, probe, changes)
        collation = _collation(table, col, options, changes, design)
        design.columns.append(ColumnDesign(col, target_type, collation, generated, default))
        design.changes.extend(changes)
    return design


def _generated(
    table: Table, col: Column, by_name: dict[str, Column], probe: Probe, changes: list[SchemaChange]
) -> str | None:
    if col.computed is None:
        return None
    sql = probe.generated.get(col.name)
    translation = translate_computed(col.computed, by_name) if sql is None else Translation(sql)
    refusal = probe.refused.get("g:" + col.name)
    if translation.sql is not None and refusal is None and sql is not None:
        changes.append(SchemaChange(table.qualified, col.name, "computed_generated", col.computed, sql))
        return sql
    reason = translation.reason if sql is None else f"PostgreSQL refuses the translation {sql}: {refusal}"
    changes.append(
        SchemaChange(
            table.qualified, col.name, "computed_plain", col.computed, "plain column", reason + "; values copied"
        )
    )
    return None


def _default(table: Table, col: Column, probe: Probe, changes: list[SchemaChange]) -> str | None:
    if col.default is None or col.identity is not None or col.computed is not None:
        return None
    sql = probe.defaults.get(col.name)
    refusal = probe.refused.get("d:" + col.name)
    if sql is not None and refusal is None:
        reason = translate_default(col.default, col).reason
        changes.append(SchemaChange(table.qualified, col.name, "default_translated", col.default, sql, reason))
        return sql
    if sql is not None:
        reason = f"PostgreSQL refuses the translation {sql}: {refusal}"
    else:
        reason = translate_default(col.default, col).reason
    changes.append(SchemaChange(table.qualified, col.name, "default_not_kept", col.default, "", reason))
    return None


def _collation(
    table: Table, col: Column, options: WriteOptions, changes: list[SchemaChange], design: TableDesign
) -> str | None:
    if not case_insensitive(col.collation) or col.logical.kind != "string":
        return None
    assert col.collation is not None
    if options.collation == "binary":
        changes.append(
            SchemaChange(
                table.qualified,
                col.name,
                "collation_not_kept",
                col.collation,
                "",
                "collation = binary: compared, sorted and unique by exact characters",
            )
        )
        return None
    accents = accent_insensitive(col.collation)
    name, locale = CI_COLLATIONS[accents]
    design.collations.add((table.schema, accents))
    changes.append(
        SchemaChange(
            table.qualified,
            col.name,
            "collation_kept",
            col.collation,
            f"{pg_name(table.schema)}.{name} (ICU {locale}, nondeterministic)",
            "collation = ci",
        )
    )
    return ci_collation(table.schema, accents)


def needs_icu(designs: list[TableDesign]) -> bool:
    return any(d.collations for d in designs)


def refuse_without_icu(has_icu: bool, designs: list[TableDesign]) -> None:
    if has_icu or not needs_icu(designs):
        return
    first = next(c for d in designs for c in d.changes if c.kind == "collation_kept")
    raise UsageError(
        f"{first.table}.{first.column}: collation = ci needs a PostgreSQL built with ICU and the target has none; "
        "set collation = binary (the case-insensitive collations are then listed as not kept) or use a target "
        "with ICU"
    )
