"""Comparison helpers shared by end-to-end tests: compare databases row by row, not by our own code."""

from __future__ import annotations

from typing import Any

import psycopg


def pg_tables(url: str, schema: str = "public") -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY table_name",
            (schema,),
        ).fetchall()
    return [r[0] for r in rows]


def pg_table_digest(url: str, schema: str, table: str) -> tuple[int, str]:
    """Row count and an order-independent digest of every row's text form (same on both sides iff equal)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') "
            f'FROM "{schema}"."{table}" t'
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def pg_columns(url: str, schema: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
            "datetime_precision, is_nullable, udt_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()


def pg_primary_key(url: str, schema: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            (schema, table),
        ).fetchall()
    return [r[0] for r in rows]


def assert_same_database(source_url: str, target_url: str, schema: str = "public", target_schema: str | None = None):
    """Every table: same columns and types, same primary key, same rows."""
    target_schema = target_schema or schema
    tables = pg_tables(source_url, schema)
    assert tables, "source has no tables"
    assert pg_tables(target_url, target_schema) == tables
    for table in tables:
        assert pg_columns(source_url, schema, table) == pg_columns(target_url, target_schema, table), table
        assert pg_primary_key(source_url, schema, table) == pg_primary_key(target_url, target_schema, table), table
        assert pg_table_digest(source_url, schema, table) == pg_table_digest(target_url, target_schema, table), table
