"""sql_variant = text carries each value as its exact text (docs/type-mapping.md, the sql_variant row): one value
of each base type, copied SQL Server → PostgreSQL with each reader and SQL Server → SQL Server with each writer,
read back with psycopg and pymssql and compared with the documented text, not with our own reading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ray_replicator.engines.mssql import MssqlTarget
from ray_replicator.engines.mssql.variant import variant_text
from ray_replicator.engines.postgres import PostgresTarget
from ray_replicator.record import SchemaChange
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server, standin
from tests.engines.mssql.test_writer_values import WRITERS, _copy, _plan, _run

EXACT: tuple[tuple[str, str | None], ...] = (
    ("NULL", None),
    ("N''", ""),
    ("N'emoji 😀'", "emoji 😀"),
    ("CAST('2020-01-01 10:00:00.1234567' AS datetime2(7))", "2020-01-01 10:00:00.1234567"),
    ("CAST('0001-01-01' AS datetime2(7))", "0001-01-01 00:00:00.0000000"),
    ("CAST('9999-12-31 23:59:59.9999999' AS datetime2(7))", "9999-12-31 23:59:59.9999999"),
    ("CAST('2020-01-01 10:00:00.1234567 +14:00' AS datetimeoffset(7))", "2020-01-01 10:00:00.1234567 +14:00"),
    ("CAST('2020-01-01 10:00:00.1234567 -14:00' AS datetimeoffset(7))", "2020-01-01 10:00:00.1234567 -14:00"),
    ("CAST(0.1 AS float)", "0.10000000000000001"),
    ("CAST(1e308 AS float)", "1E+308"),
    ("CAST(0.1 AS real)", "0.100000001"),
    ("CAST(12.3456 AS money)", "12.3456"),
    ("CAST(-1234567890.0123456789 AS decimal(38,10))", "-1234567890.0123456789"),
    ("0x", "0x"),
    ("0x00ff", "0x00FF"),
    ("CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS uniqueidentifier)", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    ("CAST(1 AS bit)", "1"),
    ("CAST(255 AS tinyint)", "255"),
    ("CAST('2020-02-29' AS date)", "2020-02-29"),
    ("CAST('23:59:59.9999999' AS time(7))", "23:59:59.9999999"),
    ("CAST('2020-01-02 03:04:05.997' AS datetime)", "2020-01-02 03:04:05.997"),
)
"""(T-SQL value of the sql_variant, its documented exact text)."""

EXPECTED = [(i, text) for i, (_, text) in enumerate(EXACT, 1)]


@pytest.fixture(scope="module")
def source() -> Iterator[Server]:
    with standin() as server:
        rows = ", ".join(f"({i}, {value})" for i, (value, _) in enumerate(EXACT, 1))
        server.run(
            "CREATE SCHEMA vals",
            "CREATE TABLE vals.exact (id int NOT NULL PRIMARY KEY, x sql_variant NULL)",
            f"INSERT INTO vals.exact (id, x) VALUES {rows}",
        )
        yield server


@pytest.mark.parametrize("reader", ["pymssql", "mssql-python"])
def test_each_base_type_arrives_in_postgresql_as_its_exact_text(source: Server, dst_db: Db, reader: str) -> None:
    url = source.url(sql_variant="text", reader=reader)
    table, twin, _ = _plan(url, "exact", "postgres")
    with PostgresTarget(dst_db.url) as target:
        _copy(url, table, twin, target)
    assert sorted(dst_db.rows("SELECT id, x FROM vals.exact")) == EXPECTED


def _into_sql_server(source: Server, target: Server, writer: str, policy: str) -> list[SchemaChange]:
    """vals.exact copied into `target` with `writer` under sql_variant = `policy`; the type policy's changes."""
    url = source.url(sql_variant=policy)
    table, twin, changes = _plan(url, "exact", "mssql")
    with MssqlTarget(target.writer_url(writer)) as mssql:
        _copy(url, table, twin, mssql)
    return changes


@pytest.mark.parametrize("writer", WRITERS)
def test_each_base_type_arrives_in_sql_server_as_its_exact_text(
    source: Server, mssql_target_server: Server, writer: str
) -> None:
    _into_sql_server(source, mssql_target_server, writer, "text")
    assert sorted(mssql_target_server.rows("SELECT id, x FROM vals.exact")) == EXPECTED


PROPERTIES = (
    "SELECT id, CAST(SQL_VARIANT_PROPERTY(x, 'BaseType') AS nvarchar(128)), "
    "CAST(SQL_VARIANT_PROPERTY(x, 'Precision') AS int), CAST(SQL_VARIANT_PROPERTY(x, 'Scale') AS int), "
    "CAST(SQL_VARIANT_PROPERTY(x, 'MaxLength') AS int) FROM vals.exact"
)
"""Each value's base type, precision, scale and length."""


@pytest.mark.parametrize("writer", WRITERS)
def test_keep_makes_each_value_again_with_its_base_type(
    source: Server, mssql_target_server: Server, writer: str
) -> None:
    assert _into_sql_server(source, mssql_target_server, writer, "keep") == []
    types = mssql_target_server.rows(
        "SELECT ty.name FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        "WHERE c.object_id = OBJECT_ID('vals.exact') AND c.name = 'x'"
    )
    assert types == [("sql_variant",)]
    assert sorted(mssql_target_server.rows(PROPERTIES)) == sorted(source.rows(PROPERTIES))
    exact = f"SELECT id, {variant_text('[x]')} FROM vals.exact"
    assert sorted(mssql_target_server.rows(exact)) == EXPECTED


def test_a_keep_run_verifies_and_says_insert_wrote_the_table(
    source: Server, mssql_target_server: Server, tmp_path: Path
) -> None:
    url = source.url(sql_variant="keep")
    report = _run(url, mssql_target_server.writer_url("bulkcopy"), "vals.exact", tmp_path / "r.json")
    assert report["warnings"] == [
        "vals.exact: written with writer=insert, not writer=bulkcopy: only INSERT makes each sql_variant value with "
        "its base type (sql_variant = keep), and x hold them"
    ]
    assert sorted(mssql_target_server.rows(PROPERTIES)) == sorted(source.rows(PROPERTIES))
    changes = [(c["column"], c["kind"], c["source"]) for t in report["tables"] for c in t["schema_changes"]]
    assert changes == [("x", "collation_not_kept", "each string value's own collation")]
