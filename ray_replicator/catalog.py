"""The engine-neutral schema model that every stage speaks.

A column keeps both its native type (exactly as the source declares it, used verbatim when source and target are
the same engine) and a logical type (used to map between engines). Everything here is plain, picklable data so a
plan item can travel to a Ray worker.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class LogicalType:
    """A type in terms both engines understand.

    kind is one of: bool, int8 (unsigned 0..255), int16, int32, int64, float32, float64, decimal, money,
    string, binary, date, time, timestamp, timestamptz, interval, uuid, json, jsonb, xml, array, enum, rowversion,
    variant (a SQL Server sql_variant kept with its base type, sql_variant = keep), other. length is in characters
    for strings and bytes for binary (None = unbounded), fixed marks char/binary(n), precision/scale for decimal
    and fractional seconds, element for arrays.
    """

    kind: str
    length: int | None = None
    fixed: bool = False
    unicode: bool = True
    precision: int | None = None
    scale: int | None = None
    element: LogicalType | None = None


@dataclass(frozen=True)
class Identity:
    """An identity/serial column: the target must keep its values and continue after `current`."""

    seed: int = 1
    increment: int = 1
    current: int | None = None
    always: bool = False
    sequence: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    native_type: str
    logical: LogicalType
    nullable: bool = True
    default: str | None = None
    identity: Identity | None = None
    computed: str | None = None
    collation: str | None = None
    storage: str | None = None
    """PostgreSQL's STORAGE (plain, external, extended, main) when the source sets one other than its type's."""
    alias_type: str | None = None
    """A SQL Server alias type the column is declared with (native_type is its base type)."""
    computed_copied: bool = False
    """A computed column the target keeps as a plain column (its expression does not translate): its values are
    read from the source and written like any column's."""


@dataclass(frozen=True)
class Key:
    """A primary key or unique constraint."""

    name: str
    columns: tuple[str, ...]
    primary: bool = False


@dataclass(frozen=True)
class Index:
    """A secondary index; `definition` is the native DDL when the source and target engines are the same."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False
    include: tuple[str, ...] = ()
    where: str | None = None
    descending: tuple[bool, ...] = ()
    method: str | None = None
    definition: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass(frozen=True)
class Check:
    """A CHECK constraint in the source's own syntax (e.g. "CHECK ((qty > 0))"): recreated only when source and
    target are the same engine, since expressions do not translate."""

    name: str
    definition: str


@dataclass(frozen=True)
class Domain:
    """A PostgreSQL domain: a base type with its own NOT NULL, default, collation and checks (in terms of VALUE,
    e.g. "CHECK ((VALUE > 0))"). Recreated between PostgreSQL databases; another engine's target gives its columns
    the base type (their nullable already says NOT NULL) and lists the rest."""

    name: str
    """As format_type prints it, schema-qualified: a column's native_type names it."""
    schema: str
    base: str
    checks: tuple[Check, ...]
    not_null: bool
    default: str | None
    collation: str | None
    """Every part is read from the source's pg_type row: none has a default here."""


@dataclass(frozen=True)
class Sequence:
    """A free-standing sequence (not owned by an identity column)."""

    schema: str
    name: str
    last_value: int | None
    increment: int = 1
    is_called: bool = True


@dataclass
class Table:
    schema: str
    name: str
    columns: list[Column]
    primary_key: Key | None = None
    unique_keys: list[Key] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    row_estimate: int = 0
    byte_estimate: int = 0
    physical_pages: int = 0
    large_values_compressed: bool | None = None
    """Whether the source stores this table's large values compressed (PostgreSQL TOAST, from a sample); None when
    unknown, when the engine has no such notion, or when the sample held too few large values to tell."""

    @property
    def qualified(self) -> str:
        """Display name; never used to build SQL (engines quote identifiers themselves)."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified} has no column {name!r}")

    @property
    def copy_columns(self) -> list[Column]:
        """Columns whose values are copied (computed columns are recomputed by the target unless it keeps them
        plain)."""
        return [c for c in self.columns if c.computed is None or c.computed_copied]

    @property
    def split_key(self) -> tuple[str, ...]:
        """The columns the planner splits on: the primary key, else the first unique key, else none."""
        if self.primary_key is not None:
            return self.primary_key.columns
        for key in self.unique_keys:
            return key.columns
        return ()


@dataclass
class Catalog:
    engine: str
    database: str
    tables: list[Table]
    sequences: list[Sequence] = field(default_factory=list)
    enums: dict[str, list[str]] = field(default_factory=dict)
    collation: str | None = None
    domains: dict[str, Domain] = field(default_factory=dict)
    """PostgreSQL domains by name (Domain.name), those the tables' columns use and the ones those are based on."""

    def domain_of(self, column: Column) -> Domain | None:
        """The domain a column (or its array's element) is declared with."""
        return self.domains.get(column.native_type.removesuffix("[]"))

    def table(self, schema: str, name: str) -> Table:
        for t in self.tables:
            if t.schema == schema and t.name == name:
                return t
        raise KeyError(f"no table {schema}.{name}")


def copy_computed(table: Table, names: set[str]) -> Table:
    """The table with its computed columns `names` copied like any column (a target keeps them plain)."""
    if not names:
        return table
    columns = [replace(c, computed_copied=True) if c.name in names else c for c in table.columns]
    return replace(table, columns=columns)


def compare_computed(table: Table, names: set[str]) -> Table:
    """The table with its computed columns `names` read like any column: verify compares the values a target
    computed (or holds) with the source's."""
    return copy_computed(table, {c.name for c in table.columns if c.computed is not None and c.name in names})


def table_matches(schema: str, name: str, patterns: list[str]) -> bool:
    """--tables/--exclude: a glob matches 'schema.table' or the bare table name. One rule for the pipeline and
    every engine, so an engine reads the details of exactly the tables the pipeline chose."""
    full = f"{schema}.{name}"
    return any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def chosen_by(schema: str, name: str, include: list[str], exclude: list[str]) -> bool:
    """Whether --tables (all when empty) and --exclude leave the table in."""
    return (not include or table_matches(schema, name, include)) and not table_matches(schema, name, exclude)
