"""Large values stored as the source stores them: the catalog's sample of TOAST compression, per-column STORAGE,
and a target that loads uncompressed values without compressing them and then puts its settings back."""

from __future__ import annotations

from typing import Literal

import pytest

from ray_replicator.engines.base import WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget, large_values_compressed

from ..conftest import Db
from .pg_copy import copy_database, table_text

# About 3 KB of words: compresses well (pglz keeps about half), and each row passes the 2 KB TOAST threshold.
_BODY = "repeat('lorem ipsum dolor ' || g || ' sit amet, consectetur ', 60)"


def _uncompressed(db: Db, name: str, rows: int = 600) -> None:
    """Large values stored uncompressed, as a bulk load with compression switched off leaves them."""
    db.run(f"CREATE TABLE {name} (id int PRIMARY KEY, body text NOT NULL, note text)")
    db.run(f"ALTER TABLE {name} SET (toast_tuple_target = 8160)")
    db.run(f"ALTER TABLE {name} ALTER COLUMN body SET STORAGE EXTERNAL")
    db.run(f"INSERT INTO {name} SELECT g, {_BODY}, CASE WHEN g % 3 = 0 THEN '' END FROM generate_series(1, {rows}) g")
    db.run(f"ALTER TABLE {name} RESET (toast_tuple_target)")
    db.run(f"ALTER TABLE {name} ALTER COLUMN body SET STORAGE EXTENDED")


def _compressed(db: Db, name: str, rows: int = 600) -> None:
    db.run(f"CREATE TABLE {name} (id int PRIMARY KEY, body text NOT NULL)")
    db.run(f"INSERT INTO {name} SELECT g, {_BODY} FROM generate_series(1, {rows}) g")


def _compressed_values(db: Db, table: str, column: str = "body") -> int:
    return int(db.value(f"SELECT count(*) FROM {table} WHERE pg_column_compression({column}) IS NOT NULL"))


def test_catalog_samples_how_large_values_are_stored(src_db: Db, source: PostgresSource) -> None:
    _uncompressed(src_db, "plain_big")
    _compressed(src_db, "packed", rows=20000)  # compressed this well, 600 rows would be too few pages to sample
    _uncompressed(src_db, "tiny", rows=5)
    src_db.run("CREATE TABLE narrow (id int PRIMARY KEY, n int)")
    src_db.run("INSERT INTO narrow SELECT g, g FROM generate_series(1, 50000) g")
    src_db.run("CREATE TABLE kept (id int PRIMARY KEY, blob bytea, doc text)")
    src_db.run("ALTER TABLE kept ALTER COLUMN blob SET STORAGE EXTERNAL, ALTER COLUMN doc SET STORAGE MAIN")
    assert _compressed_values(src_db, "plain_big") == 0
    assert _compressed_values(src_db, "packed") == 20000

    cat = source.catalog([], [])
    assert cat.table("public", "plain_big").large_values_compressed is False
    assert cat.table("public", "packed").large_values_compressed is True
    assert cat.table("public", "tiny").large_values_compressed is None  # too small to be worth a sample
    assert cat.table("public", "narrow").large_values_compressed is None  # nothing TOAST could compress
    kept = cat.table("public", "kept")
    assert [(c.name, c.storage) for c in kept.columns] == [("id", None), ("blob", "EXTERNAL"), ("doc", "MAIN")]
    assert cat.table("public", "plain_big").column("body").storage is None


def test_the_verdict_needs_evidence() -> None:
    assert large_values_compressed(1, 1000) is True
    assert large_values_compressed(0, 1000) is False
    assert large_values_compressed(0, 19) is None
    assert large_values_compressed(0, 0) is None


@pytest.mark.parametrize("path", ["raw", "arrow"])
def test_uncompressed_source_loads_uncompressed_and_settings_return(
    src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget, path: Literal["raw", "arrow"]
) -> None:
    _uncompressed(src_db, "plain_big")
    _compressed(src_db, "packed")
    src_db.run("CREATE TABLE kept (id int PRIMARY KEY, blob bytea)")
    src_db.run("ALTER TABLE kept ALTER COLUMN blob SET STORAGE EXTERNAL")
    src_db.run("INSERT INTO kept SELECT g, convert_to(repeat('x', 5000), 'UTF8') FROM generate_series(1, 3) g")

    copy_database(source, target, path, options=WriteOptions(run_id="as-source", large_values_as_source=True))

    for name in ("plain_big", "packed", "kept"):
        assert table_text(dst_db, "public", name) == table_text(src_db, "public", name)
    assert _compressed_values(dst_db, "plain_big") == 0  # stored as the source stores them
    assert _compressed_values(dst_db, "packed") == 600  # the source compresses: so does the target
    assert dst_db.value("SELECT pg_relation_size('plain_big')") >= 0.9 * src_db.value(
        "SELECT pg_relation_size('plain_big')"
    )
    storage = dst_db.rows(
        "SELECT attrelid::regclass::text, attname::text, attstorage::text FROM pg_attribute "
        "WHERE attrelid IN ('plain_big'::regclass, 'kept'::regclass) AND attnum > 0 AND attstorage <> 'p' ORDER BY 1, 2"
    )
    assert storage == [("kept", "blob", "e"), ("plain_big", "body", "x"), ("plain_big", "note", "x")]
    assert dst_db.value("SELECT reloptions FROM pg_class WHERE oid = 'plain_big'::regclass") is None
    assert dst_db.value("SELECT count(*) FROM _ray_replicator.load_settings") == 0
    dst_db.run(f"INSERT INTO plain_big SELECT 100000 + g, {_BODY} FROM generate_series(1, 5) g")
    assert _compressed_values(dst_db, "plain_big") == 5  # later writes compress as PostgreSQL's defaults say


def test_compress_setting_lets_the_target_compress(
    src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget
) -> None:
    _uncompressed(src_db, "plain_big")
    copy_database(source, target, "raw", options=WriteOptions(run_id="compress", large_values_as_source=False))
    assert table_text(dst_db, "public", "plain_big") == table_text(src_db, "public", "plain_big")
    assert _compressed_values(dst_db, "plain_big") == 600


def test_an_existing_tables_own_settings_come_back(
    src_db: Db, dst_db: Db, source: PostgresSource, target: PostgresTarget
) -> None:
    _uncompressed(src_db, "plain_big")
    dst_db.run(
        "CREATE TABLE plain_big (id int PRIMARY KEY, body text NOT NULL, note text) WITH (toast_tuple_target = 4096)"
    )
    dst_db.run("INSERT INTO plain_big VALUES (-1, 'stale', NULL)")
    options = WriteOptions(run_id="truncate", existing="truncate", keys_before_load=True, large_values_as_source=True)
    copy_database(source, target, "raw", options=options)
    assert table_text(dst_db, "public", "plain_big") == table_text(src_db, "public", "plain_big")
    assert _compressed_values(dst_db, "plain_big") == 0
    assert dst_db.value("SELECT reloptions FROM pg_class WHERE oid = 'plain_big'::regclass") == [
        "toast_tuple_target=4096"
    ]
    assert (
        dst_db.value(
            "SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'plain_big'::regclass AND attname = 'body'"
        )
        == "x"
    )


def test_settings_survive_a_new_connection_between_prepare_and_finalize(
    src_db: Db, dst_db: Db, source: PostgresSource
) -> None:
    """A resumed run finalizes from another process: what to restore comes from the ledger, not from memory."""
    _uncompressed(src_db, "plain_big")
    options = WriteOptions(run_id="resumed", large_values_as_source=True)
    catalog = source.catalog([], [])
    table = catalog.table("public", "plain_big")
    with PostgresTarget(dst_db.url) as first:
        first.prepare(catalog, "postgres", options)
    assert dst_db.value("SELECT reloptions FROM pg_class WHERE oid = 'plain_big'::regclass") == [
        "toast_tuple_target=8160"
    ]
    assert dst_db.rows("SELECT schema_name, table_name, extended_columns FROM _ray_replicator.load_settings") == [
        ("public", "plain_big", ["body", "note"])
    ]
    with PostgresTarget(dst_db.url) as second:
        from .pg_copy import plan_ranges

        for rng in plan_ranges(source, table, 2):
            second.write_range_raw(table, rng, source.read_range_raw(table, rng, 1 << 16), options)
        second.finalize_table(table, "postgres", options)
    assert table_text(dst_db, "public", "plain_big") == table_text(src_db, "public", "plain_big")
    assert _compressed_values(dst_db, "plain_big") == 0
    assert dst_db.value("SELECT reloptions FROM pg_class WHERE oid = 'plain_big'::regclass") is None
    assert dst_db.value("SELECT count(*) FROM _ray_replicator.load_settings") == 0
