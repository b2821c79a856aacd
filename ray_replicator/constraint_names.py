"""Index and constraint names a target schema would hold twice, and the names they get instead.

Engines scope these names differently. SQL Server scopes an index name to its table and PostgreSQL a check or
foreign key name to its table; PostgreSQL scopes index names (a key's included) to the schema, beside table and
sequence names, and SQL Server scopes every constraint name (keys, foreign keys) to the schema, beside table
names. So two source tables may each have an index IX_Date, which one PostgreSQL schema cannot hold twice.

The rule: a name of a kind the target scopes to the schema that another table of the same target schema also
uses, or that names a table or sequence of that schema, becomes ``<table>_<name>`` on every table that uses it
(then the target's own length rule: PostgreSQL's 63 bytes, names.pg_name). Names the target keeps apart are
compared as the target compares them (SQL Server: case-insensitively). Each mapping is a SchemaChange of kind
constraint_renamed whose source is ``<what> <name>`` ("index IX_Date"); a mapped name that still meets another
name is refused before anything is written. The run gives the target tables the mapped names (renamed_twin), so
every later stage names the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ray_replicator.catalog import Catalog, Table
from ray_replicator.engines.base import UsageError
from ray_replicator.record import SchemaChange

INDEX = "index"
PRIMARY_KEY = "primary key"
UNIQUE_KEY = "unique key"
FOREIGN_KEY = "foreign key"
KEYS = frozenset({PRIMARY_KEY, UNIQUE_KEY})


@dataclass(frozen=True)
class _Owned:
    """One index or constraint name of a table."""

    table: Table
    what: str
    name: str


def _owned(table: Table, kinds: frozenset[str]) -> list[_Owned]:
    found = [_Owned(table, PRIMARY_KEY, table.primary_key.name)] if table.primary_key else []
    found += [_Owned(table, UNIQUE_KEY, k.name) for k in table.unique_keys]
    found += [_Owned(table, INDEX, ix.name) for ix in table.indexes]
    found += [_Owned(table, FOREIGN_KEY, fk.name) for fk in table.foreign_keys]
    return [o for o in found if o.what in kinds]


def constraint_renames(
    catalog: Catalog,
    kinds: frozenset[str],
    same: Callable[[str], str],
    stored: Callable[[str], str],
    sequences: Callable[[str], list[str]],
    why: str,
) -> list[SchemaChange]:
    """The constraint_renamed changes of a target where names of `kinds` share the schema's namespace. same: the
    key two names collide on; stored: the name the target stores for a name; sequences: the names of the sequences
    the target creates in a schema (PostgreSQL: the catalog's and its identities'); why: the target's scoping."""
    changes: list[SchemaChange] = []
    for schema in dict.fromkeys(t.schema for t in catalog.tables):
        tables = [t for t in catalog.tables if t.schema == schema]
        taken: dict[str, str] = {same(t.name): f"table {t.name}" for t in tables}
        taken.update({same(name): f"sequence {name}" for name in sequences(schema)})
        owners: dict[str, list[_Owned]] = {}
        for table in tables:
            for owned in _owned(table, kinds):
                owners.setdefault(same(owned.name), []).append(owned)
        kept = {key: f"{o[0].what} {o[0].name}" for key, o in owners.items() if len(o) == 1 and key not in taken}
        for key, found in owners.items():
            if key in kept:
                continue
            others = [f"{o.table.name}" for o in found]
            clash = f"also {taken[key]}" if key in taken else f"used by tables {', '.join(others)}"
            for owned in found:
                new = stored(f"{owned.table.name}_{owned.name}")
                where = f"{owned.what} {owned.name}"
                if same(new) in taken or same(new) in kept:
                    holder = taken.get(same(new)) or kept[same(new)]
                    raise UsageError(
                        f"{owned.table.qualified}: {where} would become {new!r} ({why}), which is {holder}'s "
                        "name too; rename one at the source"
                    )
                kept[same(new)] = f"{where} of {owned.table.name}"
                changes.append(
                    SchemaChange(owned.table.qualified, None, "constraint_renamed", where, new, f"{why}; {clash}")
                )
    return changes


def renamed_twin(table: Table, changes: list[SchemaChange]) -> Table:
    """The table with the index and constraint names the target gives it (constraint_renamed changes)."""
    names = {c.source: c.target for c in changes if c.kind == "constraint_renamed" and c.table == table.qualified}
    if not names:
        return table

    def new(what: str, name: str) -> str:
        return names.get(f"{what} {name}", name)

    pk = table.primary_key
    return replace(
        table,
        primary_key=None if pk is None else replace(pk, name=new(PRIMARY_KEY, pk.name)),
        unique_keys=[replace(k, name=new(UNIQUE_KEY, k.name)) for k in table.unique_keys],
        indexes=[replace(ix, name=new(INDEX, ix.name)) for ix in table.indexes],
        foreign_keys=[replace(fk, name=new(FOREIGN_KEY, fk.name)) for fk in table.foreign_keys],
    )
