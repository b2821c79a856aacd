"""SQL Server source against the stand-in through both real drivers: catalog, boundaries, exact values."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import pytest

from ray_replicator.catalog import Table
from ray_replicator.engines.base import EngineError, KeyRange, UsageError
from ray_replicator.engines.mssql import MssqlSource
from ray_replicator.engines.mssql.values import has_nul
from ray_replicator.plan import plan_table_ranges
from tests.engines.mssql.servers import (
    HARD_COLUMNS,
    Server,
    create_hard_table,
    hard_expected,
)

READERS = ["pymssql", "mssql-python"]
SPARSE = [-50_000, -1, 0, 1, 2, 3, 50, 51, 26_597, 1_000_000, 2_000_000_000]
GUIDS = [uuid.UUID(int=(i * 0x9E3779B97F4A7C15 << 64 | i * 7919) % (1 << 128)) for i in range(1, 41)]
COMP = [(a, b) for a in (-1, 0, 5) for b in ("a", "B", "c", "É", "zz")]
NAMES = ["apple", "Banana", "cherry", "Éclair", "date", "Fig", "grape", "Ω", "  lead", "z"]


@pytest.fixture(scope="module")
def loaded(mssql_source_server: Server) -> Server:
    s = mssql_source_server
    create_hard_table(s)
    s.run(
        "CREATE SCHEMA [sales app]",
        "CREATE TABLE [sales app].[Order Lines] ([Key] int IDENTITY(100, 5) NOT NULL, [User] nvarchar(40) "
        "COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL DEFAULT (N'x'), [Total] decimal(12,2) NULL, "
        "[Twice] AS ([Key] * 2), CONSTRAINT [PK_Order Lines] PRIMARY KEY CLUSTERED ([Key]))",
        "CREATE INDEX [ix user] ON [sales app].[Order Lines] ([User] DESC) INCLUDE ([Total]) "
        "WHERE ([Total] IS NOT NULL)",
        "INSERT INTO [sales app].[Order Lines] ([User], [Total]) VALUES (N'a', 1.5), (N'B', NULL), (N'c', 2)",
        "CREATE TABLE dbo.parent (id int NOT NULL PRIMARY KEY)",
        "CREATE TABLE dbo.child (id int NOT NULL PRIMARY KEY, parent_id int NULL, "
        "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES dbo.parent (id) ON DELETE CASCADE)",
        "CREATE TABLE dbo.heap (a int NULL, b nvarchar(10) NULL)",
        "INSERT INTO dbo.heap VALUES (1, N'x'), (NULL, NULL)",
        "CREATE TABLE dbo.sparse (id int NOT NULL PRIMARY KEY, v int NULL)",
        "INSERT INTO dbo.sparse (id) VALUES " + ", ".join(f"({i})" for i in SPARSE),
        "CREATE TABLE dbo.guids (g uniqueidentifier NOT NULL PRIMARY KEY)",
        "INSERT INTO dbo.guids (g) VALUES " + ", ".join(f"('{g}')" for g in GUIDS),
        "CREATE TABLE dbo.comp (a int NOT NULL, b nvarchar(20) NOT NULL, CONSTRAINT pk_comp PRIMARY KEY (a, b))",
        "INSERT INTO dbo.comp (a, b) VALUES " + ", ".join(f"({a}, N'{b}')" for a, b in COMP),
        "CREATE TABLE dbo.names (n nvarchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL PRIMARY KEY)",
        "INSERT INTO dbo.names (n) VALUES " + ", ".join(f"(N'{n}')" for n in NAMES),
    )
    return s


def _source(server: Server, **opts: str) -> MssqlSource:
    return MssqlSource(server.url(**opts))


def _read_all(src: MssqlSource, table: Table, rng: KeyRange | None = None, **kw: Any) -> list[dict[str, Any]]:
    rng = rng or KeyRange(table.schema, table.name, 0, "full")
    out: list[dict[str, Any]] = []
    for batch in src.read_range(table, rng, kw.get("rows", 65536), kw.get("bytes", 16 << 20)):
        out.extend(batch.to_pylist())
    return out


@pytest.mark.parametrize("reader", READERS)
def test_catalog_types_identity_computed_defaults_indexes(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        cat = src.catalog([], [])
    hard = cat.table("dbo", "hard")
    declared = {c.name: c.native_type for c in hard.columns}
    assert declared["dec"] == "decimal(19,4)"
    assert declared["nv"] == "nvarchar(100)"
    assert declared["v"] == "varchar(50)"
    assert declared["big"] == "nvarchar(max)"
    assert declared["tm"] == "time(7)"
    assert declared["d3"] == "datetime2(3)"
    assert declared["nc"] == "nchar(5)"
    assert hard.column("ti").logical.kind == "int8"
    assert hard.column("m").logical.kind == "money"
    assert hard.column("nv").collation == "SQL_Latin1_General_CP1_CI_AS"
    assert hard.column("nn").nullable is False
    assert hard.primary_key is not None and hard.primary_key.columns == ("id",)
    assert hard.row_estimate == 4
    lines = cat.table("sales app", "Order Lines")
    key = lines.column("Key")
    assert key.identity is not None
    assert (key.identity.seed, key.identity.increment, key.identity.current) == (100, 5, 110)
    assert "Key" in str(lines.column("Twice").computed)
    assert [c.name for c in lines.copy_columns] == ["Key", "User", "Total"]
    assert "x" in str(lines.column("User").default)
    (ix,) = lines.indexes
    assert ix.columns == ("User",) and ix.include == ("Total",) and ix.descending == (True,)
    assert ix.where is not None and "Total" in ix.where
    (fk,) = cat.table("dbo", "child").foreign_keys
    assert (fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete) == (("parent_id",), "parent", ("id",), "CASCADE")


@pytest.mark.parametrize("reader", READERS)
def test_hard_cases_read_exactly(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.hard"], []).table("dbo", "hard")
        got = sorted(_read_all(src, table), key=lambda r: r["id"])
    expected = hard_expected()
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    for g, e in zip(got, expected, strict=True):
        for name, _ in HARD_COLUMNS:
            assert g[name] == e[name], f"{reader} row {e['id']} column {name}: {g[name]!r:.80} != {e[name]!r:.80}"


@pytest.mark.parametrize("reader", READERS)
def test_arrow_types_are_exact(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.hard"], []).table("dbo", "hard")
        batch = next(iter(src.read_range(table, KeyRange("dbo", "hard", 0, "full"), 100, 64 << 20)))
    types = {f.name: f.type for f in batch.schema}
    assert types["ti"] == pa.uint8()
    assert types["m"] == pa.decimal128(19, 4)
    assert types["dec28"] == pa.decimal128(28, 10)
    assert types["dt"] == pa.timestamp("ms")
    assert types["d2"] == pa.timestamp("us")
    assert types["g"] == pa.uuid()
    assert types["big"] == pa.large_string()


@pytest.mark.parametrize("reader", READERS)
def test_batches_are_capped_in_rows_and_bytes(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.hard"], []).table("dbo", "hard")
        batches = list(src.read_range(table, KeyRange("dbo", "hard", 0, "full"), 2, 1 << 20))
    assert sum(b.num_rows for b in batches) == 4
    assert all(b.num_rows <= 2 for b in batches)
    assert all(b.nbytes <= (1 << 20) or b.num_rows == 1 for b in batches)


def _check_ranges(src: MssqlSource, table: Table, parts: int, keys: list[Any]) -> None:
    ranges = plan_table_ranges(src, table, 1, 1 << 40, parts)
    assert len(ranges) > 1
    seen: list[Any] = []
    for rng in ranges:
        rows = _read_all(src, table, rng)
        got = [tuple(r[c] for c in table.split_key) for r in rows]
        assert src.count_range(table, rng) == len(got)
        seen.extend(got)
    assert sorted(map(repr, seen)) == sorted(map(repr, keys)), "ranges must be disjoint and cover every row"


@pytest.mark.parametrize("reader", READERS)
def test_boundaries_int_negative_sparse(loaded: Server, reader: str) -> None:
    ids = SPARSE
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.sparse"], []).table("dbo", "sparse")
        table.row_estimate = len(ids)
        bounds = src.split_boundaries(table, 4)
        assert [b[0] for b in bounds] == sorted(b[0] for b in bounds)
        _check_ranges(src, table, 4, [(i,) for i in ids])


@pytest.mark.parametrize("reader", READERS)
def test_boundaries_uniqueidentifier_in_server_order(loaded: Server, reader: str) -> None:
    guids = GUIDS
    server_order = [r[0] for r in loaded.rows("SELECT g FROM dbo.guids ORDER BY g")]
    # SQL Server sorts by bytes 10-15 first: the server's order is not Python's.
    assert server_order != sorted(server_order)
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.guids"], []).table("dbo", "guids")
        table.row_estimate = len(guids)
        bounds = [b[0] for b in src.split_boundaries(table, 5)]
        assert bounds == [g for g in server_order if g in bounds]
        _check_ranges(src, table, 5, [(g,) for g in guids])


@pytest.mark.parametrize("reader", READERS)
def test_boundaries_composite_and_nvarchar_keys(loaded: Server, reader: str) -> None:
    comp, names = COMP, NAMES
    with _source(loaded, reader=reader) as src:
        cat = src.catalog(["dbo.comp", "dbo.names"], [])
        for t, keys in ((cat.table("dbo", "comp"), comp), (cat.table("dbo", "names"), [(n,) for n in names])):
            t.row_estimate = len(keys)
            _check_ranges(src, t, 4, keys)


@pytest.mark.parametrize("reader", READERS)
def test_heap_is_one_full_range(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.heap"], []).table("dbo", "heap")
        table.row_estimate = 10_000_000
        ranges = plan_table_ranges(src, table, 1000, 1 << 40, 8)
        assert [r.kind for r in ranges] == ["full"]
        assert sorted(_read_all(src, table), key=repr) == sorted([{"a": 1, "b": "x"}, {"a": None, "b": None}], key=repr)


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_nul_scan_sees_only_the_values_of_a_slice(kind: pa.DataType) -> None:
    """The NUL check scans the bytes a (sliced) array's values span: a NUL just outside must not count."""
    arr = pa.array(["a\x00", "bc", None, "", "d\x00e"], kind)
    assert has_nul(arr)
    assert not has_nul(arr.slice(1, 3))
    assert has_nul(arr.slice(1, 4))
    assert has_nul(arr.slice(0, 1))
    assert not has_nul(arr.slice(2, 2))
    assert not has_nul(pa.array([], kind))
    assert not has_nul(pa.array([None, None], kind))


@pytest.mark.parametrize("reader", READERS)
def test_nul_policy(loaded: Server, reader: str) -> None:
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.nul"], []).table("dbo", "nul")
        with pytest.raises(EngineError) as err:
            _read_all(src, table)
    msg = str(err.value)
    assert "dbo.nul.t" in msg and "id=42" in msg and "NUL" in msg and "nul=" in msg
    assert "Passw0rd" not in msg
    for policy, want in (("keep", "a\x00b"), ("strip", "ab"), ("replace", "a\ufffdb")):
        with _source(loaded, reader=reader, nul=policy) as src:
            table = src.catalog(["dbo.nul"], []).table("dbo", "nul")
            rows = {r["id"]: r["t"] for r in _read_all(src, table)}
        assert rows == {1: "ok", 42: want}


def test_errors_never_show_the_password(loaded: Server) -> None:
    src = MssqlSource(loaded.url().replace("Str0ng!Passw0rd", "Wr0ng!Secret"))
    with pytest.raises(EngineError) as err:
        src.catalog([], [])
    assert "Wr0ng!Secret" not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("isolation", ["read-committed", "snapshot", "nolock"])
def test_isolation_levels_read_the_same_rows(loaded: Server, isolation: str) -> None:
    with _source(loaded, isolation=isolation) as src:
        table = src.catalog(["dbo.hard"], []).table("dbo", "hard")
        assert sorted(r["id"] for r in _read_all(src, table)) == [-1, 0, 7, 1_000_000]


def test_url_options_are_checked() -> None:
    with pytest.raises(UsageError, match="reader"):
        MssqlSource("mssql://u:p@127.0.0.1:1/db?reader=odbc")
    with pytest.raises(UsageError, match="unknown"):
        MssqlSource("mssql://u:p@127.0.0.1:1/db?readr=pymssql")
    with pytest.raises(UsageError, match="bulk_dir"):
        MssqlSource("mssql://u:p@127.0.0.1:1/db?writer=bulk-insert")


@pytest.mark.parametrize("reader", READERS)
def test_datetimeoffset_keeps_instant_and_offset(loaded: Server, reader: str) -> None:
    loaded.run(
        "IF OBJECT_ID('dbo.dto') IS NULL CREATE TABLE dbo.dto (id int NOT NULL PRIMARY KEY, v datetimeoffset(7) NULL)"
    )
    if not loaded.rows("SELECT COUNT(*) FROM dbo.dto")[0][0]:
        loaded.run("INSERT INTO dbo.dto VALUES (1, '2020-01-01 10:00:00.1234560 +05:30'), (2, NULL)")
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.dto"], []).table("dbo", "dto")
        rows = sorted(_read_all(src, table), key=lambda r: r["id"])
    assert rows == [{"id": 1, "v": "2020-01-01 10:00:00.123456 +05:30"}, {"id": 2, "v": None}]


@pytest.mark.parametrize("reader", READERS)
def test_names_with_brackets_quotes_dots_and_unicode(loaded: Server, reader: str) -> None:
    if not loaded.rows("SELECT COUNT(*) FROM sys.tables WHERE name = N'we]ird.t''able Ω'")[0][0]:
        loaded.run(
            "CREATE TABLE [dbo].[we]]ird.t'able Ω] ([Key]] 'x'] int NOT NULL PRIMARY KEY, [Ω name] nvarchar(5) NULL)",
            "INSERT INTO [dbo].[we]]ird.t'able Ω] VALUES (1, N'a'), (2, NULL), (3, N'c')",
        )
    with _source(loaded, reader=reader) as src:
        table = src.catalog(["dbo.we]ird.t'able Ω"], []).table("dbo", "we]ird.t'able Ω")
        assert [c.name for c in table.columns] == ["Key] 'x'", "Ω name"]
        table.row_estimate = 3
        _check_ranges(src, table, 2, [(1,), (2,), (3,)])
