"""docs/type-mapping.md, PostgreSQL → SQL Server, row by row: one real PostgreSQL table holding every row's columns
(doc_rows.PG_ROWS) copied into the SQL Server stand-in by each of the three writers, the types read from sys.columns
and the values read back with pymssql; values SQL Server cannot hold are refused naming table, column, key and
value; schema_changes lists every difference before anything is written."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.engines.base import WriteOptions
from ray_replicator.engines.mssql.target import MssqlTarget
from ray_replicator.engines.postgres import PostgresSource
from tests.engines.mssql.servers import Server, small_run_settings, standin
from tests.helpers import assert_one_line_error, cli
from tests.typemap.doc_rows import PG_TEXT, Col
from tests.typemap.doc_rows_pg import PG_ROWS, PG_SETUP

COLUMNS: list[Col] = [c for row in PG_ROWS if not row.cannot_run for c in row.cols]
ROWS = max(len(c.values) for c in COLUMNS) + 1
"""Every column gets a NULL in the last row at least."""


def _name(i: int) -> str:
    return f"c{i}"


@pytest.fixture(scope="module")
def pg_source(pg_base_url: str) -> Iterator[tuple[str, list[list[Any]]]]:
    """The source database and the expected values, column by column (PG_TEXT resolved from the source)."""
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "doc_rows_pg")
    decls = ", ".join(f"{_name(i)} {c.decl}" for i, c in enumerate(COLUMNS))
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in PG_SETUP:
            conn.execute(sql)
        conn.execute(f"CREATE TABLE public.doc_rows (id integer PRIMARY KEY, {decls})")
        for row in range(ROWS):
            literals = [c.values[row][0] if row < len(c.values) else "NULL" for c in COLUMNS]
            conn.execute(f"INSERT INTO public.doc_rows VALUES ({row + 1}, {', '.join(literals)})")
        texts = conn.execute(
            f"SELECT {', '.join(f'{_name(i)}::text' for i in range(len(COLUMNS)))} FROM public.doc_rows ORDER BY id"
        ).fetchall()
    expected = [
        [
            (texts[row][i] if c.values[row][1] is PG_TEXT else c.values[row][1]) if row < len(c.values) else None
            for row in range(ROWS)
        ]
        for i, c in enumerate(COLUMNS)
    ]
    yield url, expected


def _sql_server_type(name: str, max_length: int, precision: int, scale: int) -> str:
    """A sys.columns row as the doc writes the type."""
    if name in ("nvarchar", "nchar"):
        return f"{name}(max)" if max_length == -1 else f"{name}({max_length // 2})"
    if name in ("varchar", "char", "varbinary", "binary"):
        return f"{name}(max)" if max_length == -1 else f"{name}({max_length})"
    if name in ("decimal", "numeric"):
        return f"{name}({precision},{scale})"
    if name in ("time", "datetime2", "datetimeoffset"):
        return f"{name}({scale})"
    return name


def _target_types(server: Server) -> dict[str, str]:
    rows = server.rows(
        "SELECT c.name, t.name, c.max_length, c.precision, c.scale FROM sys.columns c "
        "JOIN sys.types t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('public.doc_rows')"
    )
    return {str(r[0]): _sql_server_type(str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


WRITERS = ["bulkcopy", "bulk-insert", "insert"]


def _url(server: Server, writer: str) -> str:
    return server.writer_url(writer)


@pytest.mark.parametrize("writer", WRITERS)
def test_every_row_with_every_writer(pg_source: tuple[str, list[list[Any]]], ray_local: None, writer: str) -> None:
    url, expected = pg_source
    with standin(bulk_dir=tempfile.mkdtemp(prefix="rr_doc_rows_")) as dst:
        report = replicate(small_run_settings(url, _url(dst, writer), unsupported_types="text"))
        assert report.status == "ok", report.errors
        assert all(t.verified == "yes (checksums)" for t in report.tables)
        types = _target_types(dst)
        got = dst.rows(f"SELECT {', '.join(_name(i) for i in range(len(COLUMNS)))} FROM public.doc_rows ORDER BY id")
    assert {c.decl: types[_name(i)] for i, c in enumerate(COLUMNS)} == {c.decl: c.target for c in COLUMNS}
    for i, col in enumerate(COLUMNS):
        assert [r[i] for r in got] == expected[i], col.decl


@pytest.mark.parametrize(
    ("decl", "literal", "shown"),
    [
        ("double precision", "'NaN'", "nan"),
        ("real", "'-Infinity'", "-inf"),
        ("numeric", "'NaN'", "'nan'"),
        ("numeric", "'1.00000000001'", "'1.00000000001'"),
        ("numeric(60,0)", "1e30", "'1000000000000000000000000000000'"),
    ],
)
def test_a_value_sql_server_cannot_hold_is_refused_naming_it(
    make_database: Callable[[str], str], decl: str, literal: str, shown: str
) -> None:
    """From a later batch too (the bulk copy's driver pulls those itself): the run stops with one line naming
    table, column, key and value, exit 1."""
    url = make_database("doc_rows_refused")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.v (id integer PRIMARY KEY, x {decl})")
        conn.execute("INSERT INTO public.v SELECT g, 1 FROM generate_series(1, 1500) g")
        conn.execute(f"UPDATE public.v SET x = {literal} WHERE id = 1200")
    with standin() as dst:
        done = cli("run", "--source", url, "--target", dst.url(), env={"RAY_REPLICATOR_BATCH_ROWS": "1000"})
    assert_one_line_error(done, 1, "public.v.x", "key id=1200", f"value {shown}")


def test_schema_changes_name_every_difference(pg_source: tuple[str, list[list[Any]]]) -> None:
    """Decided from the catalog alone (nothing connects to the target), by the decision the DDL takes: each doc
    row's columns get the row's kind and the type the writers' test found in sys.columns."""
    url, _ = pg_source
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.shaped (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            'tag text UNIQUE, n integer DEFAULT 7 CHECK (n > 0), name text COLLATE "C", '
            "twice integer GENERATED ALWAYS AS (n * 2) STORED)"
        )
    source = PostgresSource(url)
    try:
        catalog = source.catalog(["public.doc_rows", "public.shaped"], [])
    finally:
        source.close()
    changes = MssqlTarget("mssql://sa:x@127.0.0.1:1/master").schema_changes(catalog, "postgres", WriteOptions())
    typed = {c.column: (c.kind, c.source, c.target) for c in changes if c.table == "public.doc_rows"}
    want = {}
    for row in PG_ROWS:
        for col in row.cols if not row.cannot_run else ():
            name = _name(COLUMNS.index(col))
            if col.change or row.change:
                native = catalog.table("public", "doc_rows").column(name).native_type
                want[name] = (col.change or row.change, native, col.target)
    assert typed == want
    shaped = {(c.column, c.kind): (c.source, c.target) for c in changes if c.table == "public.shaped"}
    assert shaped == {
        ("id", "identity_changed"): ("GENERATED BY DEFAULT AS IDENTITY", "IDENTITY(1, 1)"),
        ("tag", "type_narrowed"): ("text", "nvarchar(450)"),
        ("n", "default_not_kept"): ("7", ""),
        ("name", "type_widened"): ("text", "nvarchar(max)"),
        ("name", "collation_not_kept"): ('pg_catalog."C"', ""),
        ("twice", "column_dropped"): ("GENERATED ALWAYS AS ((n * 2))", ""),
        (None, "constraint_not_kept"): (
            f"CHECK {catalog.table('public', 'shaped').checks[0].name} "
            f"{catalog.table('public', 'shaped').checks[0].definition}",
            "",
        ),
    }


def test_unbounded_types_in_keys_get_types_a_key_can_hold(make_database: Callable[[str], str], ray_local: None) -> None:
    """SQL Server cannot index (max) types: unbounded bytes, text and text-carried types in a key or index become
    varbinary(900) / nvarchar(450), and the keys are created with the values exact. (The stand-in has no
    CREATE INDEX: unique keys stand for indexes here.)"""
    url = make_database("doc_rows_keyed")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.keyed (b bytea PRIMARY KEY, j jsonb UNIQUE, a integer[], t text, n integer, "
            "UNIQUE (a, t))"
        )
        conn.execute(
            "INSERT INTO public.keyed VALUES ('\\x00ff', '{\"k\": \"😀\"}', '{{1,2},{3,4}}', '', 1), "
            "('\\x01', '[]', '{}', 'λ', 2)"
        )
    with standin() as dst:
        report = replicate(small_run_settings(url, dst.url()))
        assert report.status == "ok", report.errors
        types = {
            str(r[0]): _sql_server_type(str(r[1]), int(r[2]), int(r[3]), int(r[4]))
            for r in dst.rows(
                "SELECT c.name, t.name, c.max_length, c.precision, c.scale FROM sys.columns c JOIN sys.types t "
                "ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('public.keyed')"
            )
        }
        rows = dst.rows("SELECT b, j, a, t, n FROM public.keyed ORDER BY n")
        indexes = sorted(
            str(r[0])
            for r in dst.rows(
                "SELECT name FROM sys.indexes WHERE object_id = OBJECT_ID('public.keyed') AND name IS NOT NULL"
            )
        )
    assert types == {
        "b": "varbinary(900)",
        "j": "nvarchar(450)",
        "a": "nvarchar(450)",
        "t": "nvarchar(450)",
        "n": "int",
    }
    assert rows == [(b"\x00\xff", '{"k": "😀"}', "{{1,2},{3,4}}", "", 1), (b"\x01", "[]", "{}", "λ", 2)]
    assert len(indexes) == 3


def test_a_table_sql_server_cannot_create_is_refused_before_any_table_is(
    make_database: Callable[[str], str],
) -> None:
    url = make_database("doc_rows_wide")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.a_first (id integer PRIMARY KEY)")
        conn.execute(
            f"CREATE TABLE public.wide (id integer PRIMARY KEY, {', '.join(f'c{i} integer' for i in range(1024))})"
        )
    with standin() as dst:
        done = cli("run", "--source", url, "--target", dst.url())
        tables = dst.rows("SELECT name FROM sys.tables")
    assert_one_line_error(done, 2, "public.wide: 1025 columns", "1024", "exclude the table")
    assert tables == []
