"""What a run changed, on the record: every way a target table differs from its source table (decided at plan
time, before anything is written) and every value a lossy opt-in policy changed (counted by the copy tasks).

`plan` lists the schema changes; the run report lists both, per table. A change that is not here is a defect:
the promise is "exact, or refused with the reason, or an opt-in counted here".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ray_replicator.catalog import Column

SchemaChangeKind = Literal[
    "type_widened",
    "type_changed",
    "type_narrowed",
    "type_text",
    "name_mapped",
    "column_dropped",
    "computed_generated",
    "computed_plain",
    "default_translated",
    "default_not_kept",
    "collation_kept",
    "collation_not_kept",
    "identity_changed",
    "constraint_not_kept",
    "constraint_renamed",
]
"""type_widened: the target type holds every source value but is not the same type (tinyint → smallint).
type_changed: the target type keeps less than the source type declares (datetimeoffset → timestamptz keeps the
instant, not the offset; datetime2(7) → timestamp(6), whose values a policy such as hundred_ns decides).
type_narrowed: the target type holds fewer values than the source's; a value outside it is refused, never changed.
type_text: the column is carried as text (unsupported_types = text, sql_variant = text, enums, arrays ...).
name_mapped: the target name differs (e.g. longer than PostgreSQL's 63 bytes). column_dropped: the column is not
copied (unsupported_types = skip-column). computed_generated / computed_plain: a computed column became a generated
column / a plain column holding the source's values. default_translated / default_not_kept: a column default
recreated in the target's dialect / not recreated. collation_kept / collation_not_kept: a column collation the
target carries as an equivalent / cannot carry. identity_changed: identity semantics differ. constraint_not_kept:
a check or other constraint not recreated. constraint_renamed: an index or constraint name the target's schema
would hold twice, mapped by the rule of constraint_names.py (source: '<what> <name>')."""


@dataclass(frozen=True)
class SchemaChange:
    """One way a target table differs from its source table."""

    table: str
    """The source table, schema-qualified as the source names it."""
    column: str | None
    """The source column, or None for a change to the table itself (its name, a constraint, an index)."""
    kind: SchemaChangeKind
    source: str
    """What the source has: a type, a name, an expression, a default, a collation."""
    target: str
    """What the target gets ('' when nothing)."""
    reason: str = ""
    """Why, in a few words, and the setting that chose it when one did (e.g. 'collation = binary')."""

    def line(self) -> str:
        """One line for the terminal, markdown and logs."""
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        what = f"{self.source} → {self.target}" if self.target else f"{self.source} not kept"
        return f"{where}: {self.kind.replace('_', ' ')}: {what}" + (f" ({self.reason})" if self.reason else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchemaChange:
        return cls(**data)


def alias_type_change(table: str, column: Column, target: str) -> SchemaChange | None:
    """A column declared with a SQL Server alias type (CREATE TYPE .. FROM base) gets the base type on any target:
    the alias is not recreated, and that is on the record."""
    if column.alias_type is None:
        return None
    reason = f"alias type {column.alias_type} is not recreated; the column has its base type {column.native_type}"
    return SchemaChange(table, column.name, "type_changed", column.alias_type, target, reason)


FIRST_KEYS_KEPT = 5
"""How many keys of changed values a ValueChanges keeps: enough to find them, bounded for any row count."""


@dataclass
class ValueChanges:
    """The values of one column that one lossy opt-in policy changed, e.g. hundred_ns = round on
    dbo.Posts.CreationDate: how many, and the keys of the first few (as text, in key order of discovery)."""

    table: str
    column: str
    policy: str
    """The setting that allowed the change, as the user writes it ('hundred_ns=round')."""
    count: int = 0
    first_keys: list[str] = field(default_factory=list)

    def add(self, count: int, keys: list[str]) -> None:
        """Count `count` more changed values; keep keys up to FIRST_KEYS_KEPT."""
        self.count += count
        room = FIRST_KEYS_KEPT - len(self.first_keys)
        if room > 0:
            self.first_keys.extend(keys[:room])

    def merge(self, other: ValueChanges) -> None:
        self.add(other.count, other.first_keys)

    def line(self) -> str:
        keys = f"; first keys {', '.join(self.first_keys)}" if self.first_keys else ""
        return f"{self.table}.{self.column}: {self.count:,} values changed by {self.policy}{keys}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValueChanges:
        return cls(**data)


def merge_value_changes(parts: list[list[ValueChanges]]) -> list[ValueChanges]:
    """One ValueChanges per (table, column, policy) from the copy tasks' parts, in first-seen order."""
    merged: dict[tuple[str, str, str], ValueChanges] = {}
    for part in parts:
        for change in part:
            key = (change.table, change.column, change.policy)
            if key in merged:
                merged[key].merge(change)
            else:
                merged[key] = ValueChanges(change.table, change.column, change.policy)
                merged[key].merge(change)
    return list(merged.values())


def key_text(names: list[str], values: list[Any]) -> str:
    """A row's key as the report shows it: `Id=5`, or `(a=1, b='x')` for a composite key."""
    parts = [f"{n}={v!r}" if isinstance(v, str) else f"{n}={v}" for n, v in zip(names, values, strict=True)]
    return parts[0] if len(parts) == 1 else f"({', '.join(parts)})"


def value_changes_json(changes: list[ValueChanges]) -> str:
    """ValueChanges as the ledger keeps them beside a range's done mark."""
    return json.dumps([c.to_json() for c in changes], sort_keys=True)


def value_changes_from_json(text: str | None) -> list[ValueChanges]:
    return [ValueChanges.from_json(item) for item in json.loads(text)] if text else []
