"""SQL Server check constraints, filtered indexes and foreign keys to tables left out are on the record: into
PostgreSQL, where their T-SQL expressions are not translated, each is listed as constraint_not_kept and not created
(a filtered index without its filter would mean something else); a SQL Server target lists the checks it does not
recreate. Read back with a real client on the target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ray_replicator import replicate
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server, small_run_settings, standin

_SOURCE = (
    "CREATE TABLE dbo.customers (id int NOT NULL PRIMARY KEY)",
    "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, qty int CONSTRAINT CK_qty CHECK (qty > 0), "
    "status nvarchar(10), customer_id int CONSTRAINT FK_orders_customers REFERENCES dbo.customers (id))",
    "INSERT INTO dbo.customers VALUES (1)",
    "INSERT INTO dbo.orders VALUES (1, 5, N'open', 1), (2, 1, N'done', 1), (3, 2, N'done', 1)",
)


@pytest.fixture
def ms_source() -> Iterator[Server]:
    with standin() as server:
        server.run(*_SOURCE)
        yield server


def test_into_postgresql_each_is_listed_and_not_created(ms_source: Server, dst_db: Db, ray_local: None) -> None:
    ms_source.run("CREATE INDEX IX_open ON dbo.orders (customer_id) WHERE status = N'open'")
    ((where,),) = ms_source.rows("SELECT filter_definition FROM sys.indexes WHERE name = 'IX_open'")
    report = replicate({**small_run_settings(ms_source.url(), dst_db.url), "exclude": ["dbo.customers"]})
    assert report.status == "ok", report.errors
    listed = [(c.source, c.reason) for t in report.tables for c in t.schema_changes if c.kind == "constraint_not_kept"]
    assert listed == [
        ("foreign key FK_orders_customers", "it references a table not copied"),
        ("CHECK CK_qty CHECK ([qty]>(0))", "a mssql expression: checks are not translated"),
        (f"index IX_open WHERE {where}", "its filter is in another dialect"),
    ]
    indexes = dst_db.rows("SELECT indexname::text FROM pg_indexes WHERE tablename = 'orders'")
    assert len(indexes) == 1 and indexes[0][0].startswith("PK__orders")  # the primary key only
    checks = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'dbo.orders'::regclass AND contype IN ('c', 'f')"
    assert dst_db.rows(checks) == [(0,)]
    assert dst_db.rows("SELECT id, qty, status FROM dbo.orders ORDER BY id") == ms_source.rows(
        "SELECT id, qty, status FROM dbo.orders ORDER BY id"
    )


def test_sql_server_to_sql_server_lists_the_checks(ms_source: Server, ray_local: None) -> None:
    """The target does not recreate checks (the stand-in has no ALTER TABLE .. ADD CHECK to prove it on): each is
    on the record, and the rows arrive."""
    with standin() as target:
        report = replicate(small_run_settings(ms_source.url(), target.url()))
        assert report.status == "ok", report.errors
        listed = [(c.source, c.reason) for t in report.tables for c in t.schema_changes]
        assert listed == [("CHECK CK_qty CHECK ([qty]>(0))", "a SQL Server target does not recreate checks")]
        assert target.rows("SELECT name FROM sys.foreign_keys") == [("FK_orders_customers",)]
        assert target.rows("SELECT id, qty, status, customer_id FROM dbo.orders ORDER BY id") == ms_source.rows(
            "SELECT id, qty, status, customer_id FROM dbo.orders ORDER BY id"
        )
