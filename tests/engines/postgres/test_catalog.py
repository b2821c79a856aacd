"""The PostgreSQL catalog: exact native types, logical types, keys, indexes, identity, sequences, filters."""

from __future__ import annotations

import pytest

from ray_replicator.catalog import Column, Identity, LogicalType
from ray_replicator.engines.base import UsageError, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget, retarget_index
from ray_replicator.engines.postgres.types import postgres_type
from ray_replicator.redact import redact_url

from ..conftest import Db
from .pg_copy import copy_database, table_text


def _schema(db: Db) -> None:
    db.run("CREATE SCHEMA sales")
    db.run("CREATE TYPE sales.status AS ENUM ('new', 'paid', 'it''s shipped')")
    db.run(
        """CREATE TABLE sales.customer (
            id int GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10) PRIMARY KEY,
            email varchar(120) NOT NULL UNIQUE,
            name text COLLATE "C",
            score numeric(9,3) DEFAULT 0,
            tags text[],
            created timestamp(3) with time zone NOT NULL DEFAULT now()
        )"""
    )
    db.run(
        """CREATE TABLE sales."order" (
            order_no bigserial PRIMARY KEY,
            customer_id int NOT NULL REFERENCES sales.customer (id) ON DELETE CASCADE,
            status sales.status NOT NULL DEFAULT 'new',
            qty int2 CONSTRAINT "qty positive" CHECK (qty > 0), price numeric(12,2),
            total numeric GENERATED ALWAYS AS (qty * price) STORED
        )"""
    )
    db.run("CREATE INDEX order_status_idx ON sales.\"order\" (status) WHERE status <> 'new'")
    db.run('CREATE INDEX order_expr_idx ON sales."order" (abs(qty), price DESC) INCLUDE (customer_id)')
    db.run("CREATE TABLE public.log (at timestamptz, msg text)")
    db.run("CREATE SEQUENCE public.invoice_no START 1000")
    db.run("SELECT nextval('public.invoice_no')")
    db.run("INSERT INTO sales.customer (email, name) SELECT 'c' || g || '@x', 'n' || g FROM generate_series(1, 5) g")
    db.run(
        'INSERT INTO sales."order" (customer_id, qty, price) '
        "SELECT 100 + 10 * (g % 5), g, 1.5 FROM generate_series(1, 20) g"
    )


def test_catalog_describes_the_schema(src_db: Db, source: PostgresSource) -> None:
    _schema(src_db)
    cat = source.catalog([], [])
    assert cat.engine == "postgres"
    assert [t.qualified for t in cat.tables] == ["public.log", "sales.customer", "sales.order"]
    cust = cat.table("sales", "customer")
    assert [c.native_type for c in cust.columns] == [
        "integer",
        "character varying(120)",
        "text",
        "numeric(9,3)",
        "text[]",
        "timestamp(3) with time zone",
    ]
    ident = cust.column("id").identity
    assert ident == Identity(seed=100, increment=10, current=140, always=True, sequence="sales.customer_id_seq")
    assert cust.column("id").default is None and not cust.column("id").nullable
    assert cust.column("email").logical == LogicalType("string", length=120)
    assert cust.column("name").collation == 'pg_catalog."C"'
    assert cust.column("score").logical == LogicalType("decimal", precision=9, scale=3)
    assert cust.column("score").default == "0"
    assert cust.column("tags").logical == LogicalType("array", element=LogicalType("string"))
    assert cust.column("created").logical == LogicalType("timestamptz", precision=3)
    assert cust.primary_key is not None and cust.primary_key.columns == ("id",)
    assert [k.columns for k in cust.unique_keys] == [("email",)]
    assert cust.row_estimate == 5  # reltuples is -1 before ANALYZE: counted
    assert cust.byte_estimate > 0

    order = cat.table("sales", "order")
    assert order.column("status").native_type == "sales.status"
    assert order.column("status").logical.kind == "enum"
    assert order.column("order_no").identity is not None
    assert order.column("order_no").identity.current == 20  # type: ignore[union-attr]
    assert order.column("order_no").default == "nextval('sales.order_order_no_seq'::regclass)"
    assert order.column("total").computed == "((qty)::numeric * price)"
    assert [c.name for c in order.copy_columns] == ["order_no", "customer_id", "status", "qty", "price"]
    fk = order.foreign_keys[0]
    assert (fk.columns, fk.ref_schema, fk.ref_table, fk.ref_columns, fk.on_delete) == (
        ("customer_id",),
        "sales",
        "customer",
        ("id",),
        "CASCADE",
    )
    assert [(c.name, c.definition) for c in order.checks] == [("qty positive", "CHECK ((qty > 0))")]
    assert {i.name for i in order.indexes} == {"order_status_idx", "order_expr_idx"}
    partial = next(i for i in order.indexes if i.name == "order_status_idx")
    assert partial.where is not None and partial.columns == ("status",)
    assert cat.enums == {"sales.status": ["new", "paid", "it's shipped"]}
    assert [(s.schema, s.name, s.last_value, s.is_called) for s in cat.sequences] == [
        ("public", "invoice_no", 1000, True)
    ]
    assert cat.table("public", "log").split_key == ()


def test_include_exclude_patterns(src_db: Db, source: PostgresSource) -> None:
    _schema(src_db)
    names = lambda inc, exc: [t.qualified for t in source.catalog(inc, exc).tables]  # noqa: E731
    assert names(["sales.*"], ["sales.order"]) == ["sales.customer"]
    assert names(["log", "customer"], []) == ["public.log", "sales.customer"]
    assert names([], ["sales.*"]) == ["public.log"]
    with pytest.raises(UsageError, match="no table"):
        source.catalog(["nothing*"], [])


def test_ledger_schema_is_never_catalogued(src_db: Db, source: PostgresSource) -> None:
    with PostgresTarget(src_db.url) as t:
        t.ledger.init("r", "p", "s", [])
    assert source.catalog([], []).tables == []


def test_whole_schema_copies_with_keys_indexes_and_foreign_keys(
    src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget
) -> None:
    _schema(src_db)
    copy_database(source, target, "raw", options=WriteOptions(run_id="r", unlogged=True))
    for schema, name in (("sales", "customer"), ("sales", "order"), ("public", "log")):
        assert table_text(dst_db, schema, name) == table_text(src_db, schema, name)
    defs = "SELECT indexdef FROM pg_indexes WHERE schemaname = 'sales' ORDER BY 1"
    assert dst_db.rows(defs) == src_db.rows(defs)
    cons = (
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE connamespace = 'sales'::regnamespace ORDER BY 1"
    )
    assert dst_db.rows(cons) == src_db.rows(cons)
    assert dst_db.value("SELECT relpersistence FROM pg_class WHERE oid = 'sales.order'::regclass") == "p"
    assert dst_db.value("SELECT nextval('public.invoice_no')") == 1001
    assert dst_db.value("INSERT INTO sales.customer (email) VALUES ('new') RETURNING id") == 150
    assert dst_db.value("SELECT reltuples FROM pg_class WHERE oid = 'sales.order'::regclass") == 20  # analyzed


def test_keys_before_load(src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget) -> None:
    src_db.run("CREATE TABLE t (id int PRIMARY KEY, v text UNIQUE)")
    target.prepare(source.catalog([], []), "postgres", WriteOptions(keys_before_load=True))
    assert (
        dst_db.value("SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype IN ('p', 'u')") == 2
    )
    copy_database(source, target, "arrow", options=WriteOptions(existing="truncate", keys_before_load=True))
    assert (
        dst_db.value("SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype IN ('p', 'u')") == 2
    )


def test_other_engines_map_through_logical_types() -> None:
    def col(lt: LogicalType) -> Column:
        return Column("c", "x", lt)

    cases = {
        LogicalType("int8"): "smallint",
        LogicalType("decimal", precision=18, scale=4): "numeric(18,4)",
        LogicalType("money"): "numeric(19,4)",
        LogicalType("string", length=40): "character varying(40)",
        LogicalType("string", length=10, fixed=True, unicode=False): "character(10)",
        LogicalType("string", length=10, fixed=True): "character varying(10)",  # nchar(10): UTF-16 units, padded
        LogicalType("string"): "text",
        LogicalType("timestamp", precision=7): "timestamp(6) without time zone",
        LogicalType("timestamptz", precision=7): "timestamp(6) with time zone",
        LogicalType("rowversion"): "bytea",
        LogicalType("uuid"): "uuid",
        LogicalType("array", element=LogicalType("int32")): "integer[]",
        LogicalType("other"): "text",
    }
    for lt, pg in cases.items():
        assert postgres_type(col(lt), "mssql") == pg
    assert postgres_type(Column("c", "public.mood[]", LogicalType("array")), "postgres") == "public.mood[]"


def test_retarget_index_and_redaction() -> None:
    d = 'CREATE UNIQUE INDEX "we ""x" ON "My S"."t.1" USING btree (lower(a), "b c") WHERE (a <> \' ON x USING \'::text)'
    assert retarget_index(d, "other", "tt", "n") == (
        'CREATE UNIQUE INDEX "n" ON "other"."tt" USING btree (lower(a), "b c") WHERE (a <> \' ON x USING \'::text)'
    )
    assert redact_url("postgresql://u:s3cr3t@h:5432/db?password=x2&host=/tmp") == (
        "postgresql://u:***@h:5432/db?password=***&host=/tmp"
    )
