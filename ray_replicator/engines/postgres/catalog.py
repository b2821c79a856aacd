"""Reading a PostgreSQL catalog: tables, columns, keys, checks, indexes, sequences, enums, estimates, and whether
a table's large values are stored compressed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ray_replicator.catalog import (
    Catalog,
    Check,
    Column,
    Domain,
    ForeignKey,
    Identity,
    Index,
    Key,
    Sequence,
    Table,
    chosen_by,
)
from ray_replicator.engines.postgres.ledger import LEDGER_SCHEMA
from ray_replicator.engines.postgres.sql import qualified, quote_ident
from ray_replicator.engines.postgres.types import POSTGRES, postgres_logical

log = logging.getLogger(__name__)

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", LEDGER_SCHEMA)

TABLES_SQL = """
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
       c.reltuples::float8 AS reltuples, pg_relation_size(c.oid)::int8 AS bytes,
       (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8 AS pages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> ALL($1::text[])
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 2, 3
"""

_PARTITIONED_SQL = (
    "SELECT n.nspname::text || '.' || c.relname::text AS name FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p' AND n.nspname <> ALL($1::text[])"
)

_COLUMNS_SQL = """
SELECT a.attrelid::int8 AS oid, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS native,
       CASE WHEN dt.typtype = 'd' THEN base.typmod ELSE a.atttypmod END AS typmod,
       a.attnotnull OR coalesce(base.not_null, false) AS notnull, a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       CASE WHEN a.atthasdef THEN pg_get_expr(d.adbin, d.adrelid) END AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> dt.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       t.typname::text AS typname, t.typtype::text AS typtype, t.typcategory::text AS typcategory,
       e.typname::text AS elem_typname, e.typtype::text AS elem_typtype,
       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS sequence,
       a.attstorage::text AS attstorage, dt.typstorage::text AS typstorage
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type dt ON dt.oid = a.atttypid
LEFT JOIN LATERAL (
    WITH RECURSIVE chain(base, typmod, not_null, depth) AS (
        SELECT dt.typbasetype, dt.typtypmod, dt.typnotnull, 1 WHERE dt.typtype = 'd'
        UNION ALL
        SELECT bt.typbasetype, bt.typtypmod, bt.typnotnull, chain.depth + 1
        FROM chain JOIN pg_type bt ON bt.oid = chain.base WHERE bt.typtype = 'd'
    )
    SELECT (array_agg(base ORDER BY depth DESC))[1] AS oid, max(typmod) AS typmod, bool_or(not_null) AS not_null
    FROM chain
) base ON true
JOIN pg_type t ON t.oid = coalesce(base.oid, a.atttypid)
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
"""A column of a domain gets the logical type of the domain's base type (through domains over domains) and is
NOT NULL when any domain on the way is; its native type stays the domain's name."""

_DOMAINS_SQL = """
SELECT format_type(t.oid, NULL) AS name, n.nspname::text AS schema, format_type(t.typbasetype, t.typtypmod) AS base,
       t.typnotnull AS not_null, t.typdefault AS default_expr,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> b.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       ARRAY(SELECT con.conname::text FROM pg_constraint con WHERE con.contypid = t.oid AND con.contype = 'c'
             ORDER BY con.conname) AS check_names,
       ARRAY(SELECT pg_get_constraintdef(con.oid) FROM pg_constraint con WHERE con.contypid = t.oid
             AND con.contype = 'c' ORDER BY con.conname) AS check_definitions
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_type b ON b.oid = t.typbasetype
LEFT JOIN pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE t.typtype = 'd' AND n.nspname <> ALL($1::text[])
ORDER BY 1
"""

_STORAGE_NAMES = {"p": "PLAIN", "e": "EXTERNAL", "x": "EXTENDED", "m": "MAIN"}
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

LARGE_VALUE_BYTES = 2000
"""PostgreSQL compresses values (TOAST) once a row passes about 2 KB; a value this large sits in such a row."""
_COMPRESSION_SAMPLE_PAGES = 500
_COMPRESSION_SAMPLE_MIN_PAGES = 128
_COMPRESSION_SAMPLE_VALUES = 1000
_COMPRESSION_MIN_VALUES = 20


def compression_sample_sql(schema: str, table: str, columns: list[str], pages: int) -> str:
    """How many of a sample of the table's large values are stored compressed, and how many were looked at.

    A compressed value counts at any size: compression shrinks it, and it sat in a row TOAST worked on.

    A fixed seed (REPEATABLE) keeps the answer the same on every read of an unchanged table, so a resumed run
    loads as the first one did.
    """
    pct = min(100.0, 100.0 * _COMPRESSION_SAMPLE_PAGES / max(1, pages))
    arms = ", ".join(
        f"(pg_column_compression(s.{quote_ident(c)}), pg_column_size(s.{quote_ident(c)}))" for c in columns
    )
    return (
        "SELECT count(*) FILTER (WHERE v.method IS NOT NULL) AS compressed, count(*) AS large FROM ("
        f"SELECT v.method FROM {qualified(schema, table)} AS s TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (0), "
        f"LATERAL (VALUES {arms}) AS v(method, size) WHERE v.method IS NOT NULL OR v.size >= {LARGE_VALUE_BYTES} "
        f"LIMIT {_COMPRESSION_SAMPLE_VALUES}) AS v"
    )


def large_values_compressed(compressed: int, large: int) -> bool | None:
    """The sample's verdict: compressed if any sampled large value is; uncompressed only on enough evidence."""
    if compressed:
        return True
    return False if large >= _COMPRESSION_MIN_VALUES else None


_SEQUENCE_STATE_SQL = """
SELECT s.seqstart AS start, s.seqincrement AS increment, pg_sequence_last_value(s.seqrelid) AS last_value
FROM pg_sequence s WHERE s.seqrelid = $1::regclass
"""

_CONSTRAINTS_SQL = """
SELECT con.conrelid::int8 AS oid, con.conname::text AS name, con.contype::text AS type,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
       rn.nspname::text AS ref_schema, rc.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY con.conrelid, con.contype, con.conname
"""

_INDEXES_SQL = """
SELECT i.indrelid::int8 AS oid, ic.relname::text AS name, i.indisunique AS is_unique,
       pg_get_indexdef(i.indexrelid) AS definition, am.amname::text AS method,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       ARRAY(SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey[0:i.indnkeyatts - 1]) k(n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname
"""

_SEQUENCES_SQL = """
SELECT s.schemaname::text AS schema, s.sequencename::text AS name, s.last_value, s.increment_by, s.start_value
FROM pg_sequences s
JOIN pg_class c ON c.relname = s.sequencename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
WHERE s.schemaname <> ALL($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
ORDER BY 1, 2
"""

_ENUMS_SQL = """
SELECT format_type(t.oid, NULL) AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname <> ALL($1::text[])
GROUP BY t.oid ORDER BY 1
"""


@dataclass
class CatalogRows:
    """What the catalog queries returned, before it becomes a Catalog."""

    database: str
    collation: str
    tables: list[Any]
    columns: list[Any] = field(default_factory=list)
    sequence_state: dict[str, Any] = field(default_factory=dict)
    constraints: list[Any] = field(default_factory=list)
    indexes: list[Any] = field(default_factory=list)
    sequences: list[Any] = field(default_factory=list)
    enums: list[Any] = field(default_factory=list)
    domains: list[Any] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    compression: dict[int, bool | None] = field(default_factory=dict)


async def _sample_compression(c: Any, rows: CatalogRows) -> None:
    """Whether each large enough table stores its large values compressed (PostgreSQL 14 and later can tell)."""
    if int(await c.fetchval("SELECT current_setting('server_version_num')")) < 140000:
        return
    extended: dict[int, list[str]] = {}
    for col in rows.columns:
        if col["attstorage"] == "x":
            extended.setdefault(col["oid"], []).append(col["name"])
    for r in rows.tables:
        if r["oid"] in extended and r["pages"] >= _COMPRESSION_SAMPLE_MIN_PAGES:
            got = await c.fetchrow(compression_sample_sql(r["schema"], r["name"], extended[r["oid"]], r["pages"]))
            rows.compression[r["oid"]] = large_values_compressed(got["compressed"], got["large"])


async def fetch_catalog(c: Any, include: list[str], exclude: list[str]) -> CatalogRows:
    """The catalog rows of the tables that include (all when empty) and exclude leave."""
    system = list(SYSTEM_SCHEMAS)
    db = await c.fetchval("SELECT current_database()::text")
    collation = await c.fetchval("SELECT datcollate::text FROM pg_database WHERE datname = current_database()")
    tables = await c.fetch(TABLES_SQL, system)
    for p in await c.fetch(_PARTITIONED_SQL, system):
        log.warning("%s is partitioned: its partitions are copied as plain tables, the parent is not", p[0])
    rows = CatalogRows(db, collation, [r for r in tables if chosen_by(r["schema"], r["name"], include, exclude)])
    oids = [r["oid"] for r in rows.tables]
    rows.columns = await c.fetch(_COLUMNS_SQL, oids)
    for col in rows.columns:
        if col["sequence"]:
            rows.sequence_state[col["sequence"]] = await c.fetchrow(_SEQUENCE_STATE_SQL, col["sequence"])
    rows.constraints = await c.fetch(_CONSTRAINTS_SQL, oids)
    rows.indexes = await c.fetch(_INDEXES_SQL, oids)
    rows.sequences = await c.fetch(_SEQUENCES_SQL, system)
    rows.enums = await c.fetch(_ENUMS_SQL, system)
    rows.domains = await c.fetch(_DOMAINS_SQL, system)
    await _sample_compression(c, rows)
    for r in rows.tables:
        if r["reltuples"] < 0:  # never vacuumed or analyzed: count once
            rows.counts[r["oid"]] = await c.fetchval(f"SELECT count(*) FROM {qualified(r['schema'], r['name'])}")
    return rows


def _column(col: Any, seq: Any) -> Column:
    element = None
    if col["typcategory"] == "A" and col["elem_typname"]:
        element = postgres_logical(col["elem_typname"], -1, col["elem_typtype"])
    logical = postgres_logical(col["typname"], col["typmod"], col["typtype"], element)
    identity = None
    default = col["default_expr"]
    computed = None
    if col["generated"]:
        computed, default = default, None
    if col["identity"] or (col["sequence"] and default and "nextval(" in default):
        start, inc, last = (seq["start"], seq["increment"], seq["last_value"]) if seq else (1, 1, None)
        identity = Identity(
            seed=start,
            increment=inc,
            current=last,
            always=col["identity"] == "a",
            sequence=col["sequence"],
        )
        if col["identity"]:
            default = None
    return Column(
        name=col["name"],
        native_type=col["native"],
        logical=logical,
        nullable=not col["notnull"],
        default=default,
        identity=identity,
        computed=computed,
        collation=col["collation"],
        storage=_STORAGE_NAMES.get(col["attstorage"]) if col["attstorage"] != col["typstorage"] else None,
    )


def _add_constraint(t: Table, con: Any) -> None:
    cols = tuple(con["columns"])
    if con["type"] == "p":
        t.primary_key = Key(con["name"], cols, primary=True)
    elif con["type"] == "u":
        t.unique_keys.append(Key(con["name"], cols))
    elif con["type"] == "c":
        t.checks.append(Check(con["name"], con["definition"]))
    else:
        t.foreign_keys.append(
            ForeignKey(
                name=con["name"],
                columns=cols,
                ref_schema=con["ref_schema"],
                ref_table=con["ref_table"],
                ref_columns=tuple(con["ref_columns"]),
                on_delete=_FK_ACTIONS.get(con["on_delete"], "NO ACTION"),
                on_update=_FK_ACTIONS.get(con["on_update"], "NO ACTION"),
            )
        )


def _table(r: Any, rows: CatalogRows) -> Table:
    return Table(
        schema=r["schema"],
        name=r["name"],
        columns=[],
        row_estimate=max(rows.counts.get(r["oid"], int(r["reltuples"])), 0),
        byte_estimate=int(r["bytes"]),
        physical_pages=int(r["pages"]),
        large_values_compressed=rows.compression.get(r["oid"]),
    )


def build_catalog(rows: CatalogRows) -> Catalog:
    """The Catalog the rows describe."""
    by_oid = {r["oid"]: _table(r, rows) for r in rows.tables}
    for col in rows.columns:
        by_oid[col["oid"]].columns.append(_column(col, rows.sequence_state.get(col["sequence"])))
    for con in rows.constraints:
        _add_constraint(by_oid[con["oid"]], con)
    for ix in rows.indexes:
        by_oid[ix["oid"]].indexes.append(
            Index(
                name=ix["name"],
                columns=tuple(ix["columns"]),
                unique=ix["is_unique"],
                where=ix["predicate"],
                method=ix["method"],
                definition=ix["definition"],
            )
        )
    seqs = [
        Sequence(
            schema=s["schema"],
            name=s["name"],
            last_value=s["last_value"] if s["last_value"] is not None else s["start_value"],
            increment=s["increment_by"],
            is_called=s["last_value"] is not None,
        )
        for s in rows.sequences
    ]
    return Catalog(
        engine=POSTGRES,
        database=rows.database,
        tables=list(by_oid.values()),
        sequences=seqs,
        enums={e["name"]: list(e["labels"]) for e in rows.enums},
        collation=rows.collation,
        domains=_used_domains(rows.domains, [c for t in by_oid.values() for c in t.columns]),
    )


def _used_domains(found: list[Any], columns: list[Column]) -> dict[str, Domain]:
    """The domains the columns are declared with (arrays of them included) and the domains those are based on."""
    every = {
        r["name"]: Domain(
            name=r["name"],
            schema=r["schema"],
            base=r["base"],
            not_null=r["not_null"],
            default=r["default_expr"],
            collation=r["collation"],
            checks=tuple(Check(n, d) for n, d in zip(r["check_names"], r["check_definitions"], strict=True)),
        )
        for r in found
    }
    used: dict[str, Domain] = {}
    waiting = [c.native_type.removesuffix("[]") for c in columns]
    while waiting:
        name = waiting.pop()
        if name in every and name not in used:
            used[name] = every[name]
            waiting.append(every[name].base.removesuffix("[]"))
    return dict(sorted(used.items()))
