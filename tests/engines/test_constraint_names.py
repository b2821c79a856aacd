"""Index and constraint names two source tables share, where the target holds such names once per schema, are
mapped by one rule (<table>_<name>, ray_replicator/constraint_names.py), created under the mapped name and listed
as constraint_renamed; a mapped name that still meets another is refused before anything is written.

SQL Server → PostgreSQL: SQL Server scopes index names to their table, PostgreSQL to the schema. PostgreSQL → SQL
Server: PostgreSQL scopes foreign key names to their table, SQL Server to the schema. Names are read back with a
real client on the target."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Catalog, Column, ForeignKey, Identity, Index, Key, LogicalType, Table
from ray_replicator.engines.base import UsageError, WriteOptions
from ray_replicator.engines.mssql import MssqlTarget
from ray_replicator.engines.postgres import PostgresTarget
from ray_replicator.report import RunReport
from tests.engines.conftest import Db
from tests.engines.mssql.servers import Server, small_run_settings, standin

WHY_PG = "PostgreSQL index names are unique per schema"
WHY_MS = "SQL Server constraint names are unique per schema"


@pytest.fixture
def ms_server() -> Iterator[Server]:
    with standin() as server:
        yield server


def _renames(report: RunReport) -> list[tuple[str, str, str, str]]:
    return [
        (c.table, c.source, c.target, c.reason)
        for t in report.tables
        for c in t.schema_changes
        if c.kind == "constraint_renamed"
    ]


def test_sql_server_index_names_shared_by_tables_all_reach_postgresql(
    ms_server: Server, dst_db: Db, ray_local: None
) -> None:
    ms_server.run(
        "CREATE TABLE dbo.posts (id int NOT NULL CONSTRAINT PK_posts PRIMARY KEY, created datetime2, score int)",
        "CREATE INDEX IX_Date ON dbo.posts (created)",
        "CREATE TABLE dbo.comments (id int NOT NULL CONSTRAINT PK_comments PRIMARY KEY, created datetime2)",
        "CREATE INDEX IX_Date ON dbo.comments (created)",
        "CREATE TABLE dbo.votes (id int NOT NULL CONSTRAINT PK_votes PRIMARY KEY, post_id int)",
        "CREATE INDEX posts ON dbo.votes (post_id)",
        "INSERT INTO dbo.posts VALUES (1, '2020-01-01', 5), (2, '2021-01-01', 7)",
        "INSERT INTO dbo.comments VALUES (1, '2020-02-02')",
        "INSERT INTO dbo.votes VALUES (1, 1), (2, 2)",
    )
    report = replicate(small_run_settings(ms_server.url(), dst_db.url))
    assert report.status == "ok", report.errors
    assert _renames(report) == [
        ("dbo.comments", "index IX_Date", "comments_IX_Date", f"{WHY_PG}; used by tables comments, posts"),
        ("dbo.posts", "index IX_Date", "posts_IX_Date", f"{WHY_PG}; used by tables comments, posts"),
        ("dbo.votes", "index posts", "votes_posts", f"{WHY_PG}; also table posts"),
    ]
    assert report.warnings == []
    indexes = dst_db.rows(
        "SELECT tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'dbo' ORDER BY 1, 2"
    )
    assert [(t, i) for t, i, _ in indexes] == [
        ("comments", "PK_comments"),
        ("comments", "comments_IX_Date"),
        ("posts", "PK_posts"),
        ("posts", "posts_IX_Date"),
        ("votes", "PK_votes"),
        ("votes", "votes_posts"),
    ]
    assert indexes[3][2].endswith("USING btree (created)")
    assert dst_db.rows("SELECT id, created::text FROM dbo.comments") == [(1, "2020-02-02 00:00:00")]


def test_postgresql_foreign_key_names_shared_by_tables_all_reach_sql_server(
    src_db: Db, ms_server: Server, ray_local: None
) -> None:
    src_db.run("CREATE TABLE parent (id int PRIMARY KEY)")
    for child in ("child_a", "child_b"):
        src_db.run(f"CREATE TABLE {child} (id int PRIMARY KEY, p int CONSTRAINT fk_parent REFERENCES parent)")
    src_db.run("CREATE TABLE child_c (id int PRIMARY KEY, p int CONSTRAINT parent REFERENCES parent)")
    src_db.run("INSERT INTO parent VALUES (1), (2)")
    src_db.run("INSERT INTO child_a VALUES (1, 1); INSERT INTO child_b VALUES (1, 2)")
    src_db.run("INSERT INTO child_c VALUES (1, 1)")
    report = replicate(small_run_settings(src_db.url, ms_server.url()))
    assert report.status == "ok", report.errors
    assert _renames(report) == [
        ("public.child_a", "foreign key fk_parent", "child_a_fk_parent", f"{WHY_MS}; used by tables child_a, child_b"),
        ("public.child_b", "foreign key fk_parent", "child_b_fk_parent", f"{WHY_MS}; used by tables child_a, child_b"),
        ("public.child_c", "foreign key parent", "child_c_parent", f"{WHY_MS}; also table parent"),
    ]
    keys = ms_server.rows(
        "SELECT OBJECT_NAME(parent_object_id), name, OBJECT_NAME(referenced_object_id) FROM sys.foreign_keys ORDER BY 1"
    )
    assert keys == [
        ("child_a", "child_a_fk_parent", "parent"),
        ("child_b", "child_b_fk_parent", "parent"),
        ("child_c", "child_c_parent", "parent"),
    ]
    assert ms_server.rows("SELECT id, p FROM public.child_b") == [(1, 2)]


def _table(name: str, *indexes: str) -> Table:
    cols = [Column("id", "int", LogicalType("int32"), nullable=False), Column("v", "int", LogicalType("int32"))]
    return Table("dbo", name, cols, Key(f"PK_{name}", ("id",), True), indexes=[Index(ix, ("v",)) for ix in indexes])


def test_a_mapped_name_that_meets_another_is_refused(target: PostgresTarget) -> None:
    """a.b_x and z.b_x become a_b_x and z_b_x; a_b.x and z.x become a_b_x and z_x: a_b_x twice."""
    catalog = Catalog("mssql", "db", [_table("a", "b_x"), _table("a_b", "x"), _table("z", "b_x", "x")])
    with pytest.raises(UsageError, match=r"dbo\.a_b: index x would become 'a_b_x' .*index b_x of a's name too"):
        target.schema_changes(catalog, "mssql", WriteOptions())


def test_finalize_refuses_an_index_name_another_table_holds(dst_db: Db, target: PostgresTarget) -> None:
    """Without the run's mapping (a target reached another way), a taken name is refused, never skipped."""
    catalog = Catalog("mssql", "db", [_table("a", "IX_v"), _table("b", "IX_v")])
    options = WriteOptions(run_id="names")
    target.prepare(catalog, "mssql", options)
    target.finalize_table(catalog.tables[0], "mssql", options)
    with pytest.raises(UsageError, match=r"dbo\.b: index IX_v cannot be created: schema dbo of the target has"):
        target.finalize_table(catalog.tables[1], "mssql", options)
    assert dst_db.rows("SELECT tablename::text FROM pg_indexes WHERE indexname = 'IX_v'") == [("a",)]


def test_sql_server_compares_names_case_insensitively() -> None:
    """fk_Parent and FK_parent are one name to SQL Server: both are mapped, and the record is made without a
    connection (plan time)."""
    parent = _table("parent")
    a = replace(_table("a"), foreign_keys=[ForeignKey("fk_Parent", ("v",), "dbo", "parent", ("id",))])
    b = replace(_table("b"), foreign_keys=[ForeignKey("FK_parent", ("v",), "dbo", "parent", ("id",))])
    target = MssqlTarget("mssql://sa:x@127.0.0.1:1/master")
    changes = target.schema_changes(Catalog("postgres", "db", [parent, a, b]), "postgres", WriteOptions())
    renamed = [(c.table, c.source, c.target) for c in changes if c.kind == "constraint_renamed"]
    assert renamed == [
        ("dbo.a", "foreign key fk_Parent", "a_fk_Parent"),
        ("dbo.b", "foreign key FK_parent", "b_FK_parent"),
    ]


def test_an_index_named_like_an_identity_sequence_is_mapped(target: PostgresTarget) -> None:
    """PostgreSQL names the sequence of t's identity column id t_id_seq, beside the schema's indexes."""
    t = _table("t")
    t.columns[0] = replace(t.columns[0], identity=Identity())
    changes = target.schema_changes(Catalog("mssql", "db", [t, _table("u", "t_id_seq")]), "mssql", WriteOptions())
    assert [(c.table, c.source, c.target) for c in changes if c.kind == "constraint_renamed"] == [
        ("dbo.u", "index t_id_seq", "u_t_id_seq")
    ]
