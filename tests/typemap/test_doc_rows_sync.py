"""docs/type-mapping.md and the per-row tests agree: every row of its tables has a test row (doc_rows.py) with the
same source and target cells, in the same order, so a new doc row without a test fails here."""

from __future__ import annotations

from tests.typemap.doc_rows import MSSQL_ROWS, doc_table
from tests.typemap.doc_rows_pg import PG_ROWS


def test_sql_server_to_postgres_rows_are_the_docs() -> None:
    doc = [(cells[0], cells[3]) for cells in doc_table("SQL Server → Arrow → PostgreSQL")]
    assert [(r.source, r.target) for r in MSSQL_ROWS] == doc


def test_postgres_to_sql_server_rows_are_the_docs() -> None:
    doc = [(cells[0], cells[1]) for cells in doc_table("PostgreSQL → SQL Server")]
    assert [(r.source, r.target) for r in PG_ROWS] == doc


def test_every_runnable_row_has_columns_with_values() -> None:
    """A row that runs tests something: each of its columns has values, except xml (no libxml on the test
    PostgreSQL: NULLs only)."""
    for row in (*MSSQL_ROWS, *PG_ROWS):
        if row.cannot_run:
            continue
        assert row.cols, row.source
        assert all(c.values or c.decl == "xml" for c in row.cols), row.source
