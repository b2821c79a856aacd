"""PostgreSQL domains. Between PostgreSQL databases a domain is recreated (base type, collation, default, NOT NULL,
named checks; domains over domains and arrays of domains too) and the columns keep it. Into SQL Server, which has
no domains, a domain column gets the base type and the domains' NOT NULL; their checks, default and collation are
listed as not kept. Values and definitions are read back with a real client on each side."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.record import SchemaChange
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server, small_run_settings, standin

_DOMAINS = (
    "CREATE SCHEMA types",
    "CREATE DOMAIN types.positive AS integer DEFAULT 1 NOT NULL CONSTRAINT positive_check CHECK (VALUE > 0)",
    "CREATE DOMAIN types.small_positive AS types.positive CONSTRAINT below_100 CHECK (VALUE < 100)",
    """CREATE DOMAIN code AS varchar(10) COLLATE "C" CONSTRAINT letters CHECK (VALUE ~ '^[A-Z]+$')""",
    "CREATE TABLE items (id int PRIMARY KEY, qty types.positive, small types.small_positive, tag code, "
    "tags code[], note text)",
    "INSERT INTO items VALUES (1, 5, 99, 'AB', '{AB,CD}', ''), (2, 1, 1, NULL, NULL, NULL), "
    "(3, 2147483647, 50, 'Z', '{}', 'x')",
)
_VALUES = "SELECT id, qty, small, tag, {tags}, note FROM {items} ORDER BY id"


@pytest.fixture
def domains_source(src_db: Db) -> Db:
    for sql in _DOMAINS:
        src_db.run(sql)
    return src_db


def _definitions(db: Db) -> list[tuple[object, ...]]:
    return db.rows(
        "SELECT format_type(t.oid, NULL), format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, "
        "co.collname::text, ARRAY(SELECT con.conname || ' ' || pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "WHERE con.contypid = t.oid ORDER BY con.conname) FROM pg_type t "
        "LEFT JOIN pg_collation co ON co.oid = t.typcollation AND t.typcollation <> 100 "
        "WHERE t.typtype = 'd' AND t.typnamespace::regnamespace::text IN ('public', 'types') ORDER BY 1"
    )


def test_postgresql_to_postgresql_recreates_the_domains(domains_source: Db, dst_db: Db, ray_local: None) -> None:
    report = replicate(small_run_settings(domains_source.url, dst_db.url))
    assert report.status == "ok", report.errors
    assert report.schema_change_count == 0
    assert _definitions(dst_db) == _definitions(domains_source)
    assert len(_definitions(dst_db)) == 3
    column_types = (
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'public.items'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert dst_db.rows(column_types) == domains_source.rows(column_types)
    query = _VALUES.format(tags="tags::text", items="items")
    assert dst_db.rows(query) == domains_source.rows(query)
    with pytest.raises(psycopg.errors.CheckViolation, match="below_100"):
        dst_db.run("INSERT INTO items (id, small) VALUES (4, 100)")
    dst_db.run("INSERT INTO items (id, small) VALUES (4, 7)")
    assert dst_db.rows("SELECT qty, small FROM items WHERE id = 4") == [(1, 7)]  # the domain's default


@pytest.fixture
def ms_server() -> Iterator[Server]:
    with standin() as server:
        yield server


def _lines(report: object) -> list[str]:
    tables = getattr(report, "tables", [])
    return [c.line() for t in tables for c in t.schema_changes if isinstance(c, SchemaChange)]


def test_postgresql_to_sql_server_gives_the_base_type_and_lists_the_rest(
    domains_source: Db, ms_server: Server, ray_local: None
) -> None:
    report = replicate(small_run_settings(domains_source.url, ms_server.url()))
    assert report.status == "ok", report.errors
    assert _lines(report) == [
        "public.items.qty: type changed: types.positive → int (SQL Server has no domains: the base type integer)",
        "public.items.qty: constraint not kept: domain types.positive CHECK ((VALUE > 0)) not kept "
        "(a SQL Server target does not recreate checks)",
        "public.items.qty: default not kept: 1 not kept (the default of domain types.positive: defaults are "
        "recreated only SQL Server → SQL Server)",
        "public.items.small: type changed: types.small_positive → int (SQL Server has no domains: the base type "
        "integer)",
        "public.items.small: constraint not kept: domain types.small_positive CHECK (((VALUE)::integer < 100)) "
        "not kept (a SQL Server target does not recreate checks)",
        "public.items.small: constraint not kept: domain types.positive CHECK ((VALUE > 0)) not kept "
        "(a SQL Server target does not recreate checks)",
        "public.items.small: default not kept: 1 not kept (the default of domain types.small_positive: defaults "
        "are recreated only SQL Server → SQL Server)",
        "public.items.tag: type changed: public.code → nvarchar(20) (SQL Server has no domains: the base type "
        "character varying(10); lengths count UTF-16 code units: a character outside the BMP takes two)",
        "public.items.tag: constraint not kept: domain public.code CHECK (((VALUE)::text ~ '^[A-Z]+$'::text)) "
        "not kept (a SQL Server target does not recreate checks)",
        'public.items.tag: collation not kept: pg_catalog."C" not kept (the collation of domain public.code: the '
        "column takes the database's default collation)",
        "public.items.tags: type changed: public.code[] → nvarchar(max) (SQL Server has no domains: the base type "
        "character varying(10); SQL Server has no arrays: the text as PostgreSQL prints it)",
        "public.items.tags: constraint not kept: domain public.code CHECK (((VALUE)::text ~ '^[A-Z]+$'::text)) "
        "not kept (a SQL Server target does not recreate checks)",
        'public.items.tags: collation not kept: pg_catalog."C" not kept (the collation of domain public.code: the '
        "column takes the database's default collation)",
        "public.items.note: type widened: text → nvarchar(max) (SQL Server's unbounded Unicode text)",
    ]
    columns = ms_server.rows(
        "SELECT c.name, t.name, c.max_length, c.is_nullable FROM sys.columns c "
        "JOIN sys.types t ON t.user_type_id = c.user_type_id "
        "WHERE c.object_id = OBJECT_ID('public.items') ORDER BY c.column_id"
    )
    assert columns == [
        ("id", "int", 4, False),
        ("qty", "int", 4, False),
        ("small", "int", 4, False),
        ("tag", "nvarchar", 40, True),
        ("tags", "nvarchar", -1, True),
        ("note", "nvarchar", -1, True),
    ]
    assert ms_server.rows(_VALUES.format(tags="tags", items="public.items")) == domains_source.rows(
        _VALUES.format(tags="tags::text", items="items")
    )
