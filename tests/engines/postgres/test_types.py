"""The PostgreSQL type table against a real server: each row's logical kind is what the catalog reads for a column
of that type, and its Arrow type is what read_range yields for it."""

from __future__ import annotations

from collections import defaultdict

from ray_replicator.engines.base import KeyRange
from ray_replicator.engines.postgres import PostgresSource
from ray_replicator.engines.postgres.types import ENUM, OTHER, PG_TYPES, arrow_name

from ..conftest import Db

DECLARED: dict[str, list[str]] = {
    "bool": ["boolean"],
    "int2": ["smallint"],
    "int4": ["integer"],
    "int8": ["bigint"],
    "oid": ["oid"],
    "float4": ["real"],
    "float8": ["double precision"],
    "money": ["money"],
    "numeric": ["numeric(10,2)", "numeric(38,0)", "numeric(50,3)", "numeric"],
    "text": ["text"],
    "varchar": ["varchar(5)", "varchar"],
    "bpchar": ["char(3)"],
    "name": ["name"],
    "char": ['"char"'],
    "bytea": ["bytea"],
    "date": ["date"],
    "time": ["time(3)", "time"],
    "timestamp": ["timestamp(3)", "timestamp"],
    "timestamptz": ["timestamptz(0)", "timestamptz"],
    "interval": ["interval"],
    "uuid": ["uuid"],
    "json": ["json"],
    "jsonb": ["jsonb"],
    "xml": ["xml"],
}
"""Column declarations for every row of the type table (a typmod changes some types' Arrow form)."""

OUTSIDE = {"mood": "enum", "inet": "other", "timetz": "other", "int4range": "other"}
"""Types the table has no row for: an enum and some of kind other."""


def test_every_row_is_declared_here() -> None:
    assert set(DECLARED) == set(PG_TYPES)


def test_rows_of_one_kind_are_read_alike() -> None:
    """read_range decides by logical kind: every row of a kind must ask for the same cast."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for row in [*PG_TYPES.values(), ENUM, OTHER]:
        by_kind[row.kind].add(row.read)
    assert {kind: len(ways) for kind, ways in by_kind.items() if len(ways) > 1} == {}


def test_table_matches_what_the_server_and_adbc_give(src_db: Db, source: PostgresSource) -> None:
    columns: list[tuple[str, str, str, str]] = []  # (column, declaration, typname, element typname)
    for typname, declarations in DECLARED.items():
        for i, declared in enumerate(declarations):
            columns.append((f"{typname}_{i}", declared, typname, ""))
            if PG_TYPES[typname].kind != "decimal" or i == 0:
                columns.append((f"{typname}_{i}_array", f"{declared}[]", "_" + typname, typname))
    for typname in OUTSIDE:
        declared = "public.mood" if typname == "mood" else typname
        columns.append((typname, declared, typname, ""))
        columns.append((f"{typname}_array", f"{declared}[]", "_" + typname, typname))
    src_db.run("CREATE TYPE public.mood AS ENUM ('sad', 'ok')")
    src_db.run(f"CREATE TABLE every_type ({', '.join(f'{c} {d}' for c, d, _, _ in columns)})")
    src_db.run("INSERT INTO every_type DEFAULT VALUES")

    table = source.catalog(["public.every_type"], []).table("public", "every_type")
    batches = list(source.read_range(table, KeyRange("public", "every_type", 0, "full"), 100, 1 << 20))
    read = {field.name: str(field.type) for field in batches[0].schema}

    got: dict[str, tuple[str, str]] = {}
    want: dict[str, tuple[str, str]] = {}
    for name, _, typname, element in columns:
        logical = table.column(name).logical
        if element:
            assert logical.kind == "array" and logical.element is not None, name
            logical_kind = logical.element.kind
        else:
            logical_kind = logical.kind
        got[name] = (logical_kind, read[name])
        base = element or typname
        want[name] = (OUTSIDE.get(base) or PG_TYPES[base].kind, arrow_name(typname, logical))
    assert got == want
