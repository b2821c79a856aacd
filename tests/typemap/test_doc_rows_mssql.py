"""docs/type-mapping.md, SQL Server → PostgreSQL and SQL Server → SQL Server, row by row: one stand-in table
holding every row's columns (doc_rows.MSSQL_ROWS), copied into a real PostgreSQL (types from format_type, values
read with psycopg) and into another stand-in by each of the three writers (types from sys.columns, values read
with pymssql against the source's)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.engines.base import WriteOptions
from ray_replicator.engines.mssql.read import MssqlSource
from ray_replicator.engines.mssql.target import MssqlTarget
from tests.engines.mssql.servers import Server, small_run_settings, standin
from tests.typemap.doc_rows import MSSQL_ROWS, Col

COLUMNS: list[Col] = [c for row in MSSQL_ROWS if not row.cannot_run for c in row.cols]
ROWS = max(len(c.values) for c in COLUMNS) + 1
"""Every column gets a NULL in the last row at least (a rowversion column gets a value in every row)."""
NAMES = [f"c{i}" for i in range(len(COLUMNS))]
SELECT = f"SELECT {', '.join(f'[{n}]' for n in NAMES)} FROM dbo.doc_rows ORDER BY id"


@pytest.fixture(scope="module")
def source() -> Iterator[tuple[Server, list[tuple[Any, ...]]]]:
    """The stand-in source and its rows as pymssql reads them."""
    with standin() as server:
        decls = ", ".join(f"[{n}] {c.decl}" for n, c in zip(NAMES, COLUMNS, strict=True))
        server.run(f"CREATE TABLE dbo.doc_rows (id int NOT NULL PRIMARY KEY, {decls})")
        for row in range(ROWS):
            pairs = [(n, c.values[row][0]) for n, c in zip(NAMES, COLUMNS, strict=True) if row < len(c.values)]
            pairs = [(n, v) for n, v in pairs if v != "DEFAULT"]
            names = "".join(f", [{n}]" for n, _ in pairs)
            server.run(f"INSERT INTO dbo.doc_rows (id{names}) VALUES ({row + 1}{''.join(', ' + v for _, v in pairs)})")
        # xml values only SQL Server → SQL Server: the test PostgreSQL has no libxml to take them
        server.run(
            "CREATE TABLE dbo.doc_rows_xml (id int NOT NULL PRIMARY KEY, x xml NULL)",
            "INSERT INTO dbo.doc_rows_xml VALUES (1, N'<a b=\"1\">λ 😀 &amp;</a>'), (2, N''), (3, NULL)",
        )
        yield server, server.rows(SELECT)


def _expected(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Per column, what PostgreSQL must hold: the doc rows' values (rowversion: the source's bytes)."""
    out = []
    for i, col in enumerate(COLUMNS):
        values = []
        for row in range(ROWS):
            want = col.values[row][1] if row < len(col.values) else None
            if col.decl == "rowversion":
                want = rows[row][i]
            values.append(want)
        out.append(values)
    return out


def test_every_row_into_postgres(
    source: tuple[Server, list[tuple[Any, ...]]], make_database: Callable[[str], str], ray_local: None
) -> None:
    server, rows = source
    url = make_database("doc_rows_ms")
    report = replicate(small_run_settings(server.url(), url, tables=["dbo.doc_rows"]))
    assert report.status == "ok", report.errors
    assert all(t.verified == "yes (checksums)" for t in report.tables)
    with psycopg.connect(url) as conn:
        types = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'dbo.doc_rows'::regclass AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
        )
        got = conn.execute(f"SELECT {', '.join(NAMES)} FROM dbo.doc_rows ORDER BY id").fetchall()
    assert {c.decl: types[n] for n, c in zip(NAMES, COLUMNS, strict=True)} == {c.decl: c.target for c in COLUMNS}
    expected = _expected(rows)
    for i, col in enumerate(COLUMNS):
        assert [r[i] for r in got] == expected[i], col.decl


def _declared_types(server: Server) -> dict[str, tuple[Any, ...]]:
    rows = server.rows(
        "SELECT c.name, t.name, c.max_length, c.precision, c.scale, c.is_nullable FROM sys.columns c "
        "JOIN sys.types t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('dbo.doc_rows')"
    )
    return {str(r[0]): tuple(r[1:]) for r in rows}


@pytest.mark.parametrize("writer", ["bulkcopy", "bulk-insert", "insert"])
def test_every_row_into_sql_server(source: tuple[Server, list[tuple[Any, ...]]], ray_local: None, writer: str) -> None:
    """The declared type verbatim, except rowversion → binary(8) holding the same bytes; the values as the source
    holds them."""
    server, rows = source
    with standin(bulk_dir=tempfile.mkdtemp(prefix="rr_doc_rows_")) as dst:
        report = replicate(small_run_settings(server.url(), dst.writer_url(writer)))
        assert report.status == "ok", report.errors
        assert all(t.verified == "yes (checksums)" for t in report.tables)
        got = dst.rows(SELECT)
        types = _declared_types(dst)
        xml = dst.rows("SELECT id, CAST(x AS nvarchar(max)) FROM dbo.doc_rows_xml ORDER BY id")
    want = _declared_types(server)
    rowversion = NAMES[next(i for i, c in enumerate(COLUMNS) if c.decl == "rowversion")]
    assert want.pop(rowversion)[0] == "timestamp"
    assert types.pop(rowversion) == ("binary", 8, 0, 0, False)
    assert types == want
    assert got == rows
    assert xml == server.rows("SELECT id, CAST(x AS nvarchar(max)) FROM dbo.doc_rows_xml ORDER BY id")
    assert xml[0][1] == '<a b="1">λ 😀 &amp;</a>' and xml[1][1] == "" and xml[2][1] is None


def test_schema_changes_sql_server_to_sql_server_only_rowversion(source: tuple[Server, list[tuple[Any, ...]]]) -> None:
    server, _ = source
    reader = MssqlSource(server.url())
    try:
        catalog = reader.catalog(["dbo.doc_rows", "dbo.doc_rows_xml"], [])
    finally:
        reader.close()
    changes = MssqlTarget(server.url()).schema_changes(catalog, "mssql", WriteOptions())
    rowversion = NAMES[next(i for i, c in enumerate(COLUMNS) if c.decl == "rowversion")]
    assert [(c.table, c.column, c.kind, c.source, c.target) for c in changes] == [
        ("dbo.doc_rows", rowversion, "type_widened", "rowversion", "binary(8)")
    ]
