"""PostgreSQL → PostgreSQL through the whole pipeline on real Ray and a real embedded PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.synth.stackoverflow import generate, write_postgres
from tests.helpers import assert_same_database, large_value_storage, pg_table_digest


@pytest.fixture(scope="module")
def so_source(pg_base_url: str) -> str:
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "so_src_pipeline")
    generate(url, 0.003, 7)
    return url


@pytest.fixture(scope="module")
def so_source_uncompressed(pg_base_url: str) -> str:
    """The same database with its large values stored uncompressed (the generator's compress_text=False)."""
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "so_src_pipeline_plain")
    write_postgres(url, 0.003, 7, compress_text=False, verbose=False)
    return url


@pytest.mark.parametrize("method", ["raw", "arrow"])
@pytest.mark.parametrize("keys", ["after-load", "before-load"])
def test_stackoverflow_round_trip(
    ray_local: None, so_source: str, make_database: Callable[[str], str], method: str, keys: str
) -> None:
    target = make_database("so_dst")
    report = replicate(
        {
            "source": {"url": so_source},
            "target": {"url": target},
            "copy_method": method,
            "keys": keys,
            "rows_per_range": 5000,
            "report_path": None,
        }
    )
    assert report.status == "ok", report.errors
    assert report.method == method
    assert {t.table for t in report.tables} >= {"public.Posts", "public.Votes", "public.Users"}
    assert all(t.verified == "yes (checksums)" for t in report.tables)
    assert sum(t.ranges for t in report.tables) > 9
    assert_same_database(so_source, target)
    source_storage = large_value_storage(so_source, "Posts", "Body")
    # the generator stores them as PostgreSQL does by default: compressed
    assert list(source_storage["compressed"]) == [source_storage["default"]]
    assert sum(source_storage["compressed"].values()) > 100
    # large_values = compress (the default): the target compresses them too, and keeps its default settings
    assert large_value_storage(target, "Posts", "Body") == source_storage
    with psycopg.connect(target) as conn:
        empty = conn.execute('SELECT count(*) FROM "Users" WHERE "WebsiteUrl" = \'\'').fetchone()
        nulls = conn.execute('SELECT count(*) FROM "Users" WHERE "WebsiteUrl" IS NULL').fetchone()
        assert empty and nulls and empty[0] > 0 and nulls[0] > 0
        conn.execute('INSERT INTO "Badges" ("Name", "UserId", "Date") VALUES (\'new\', 1, now())')
        new_id = conn.execute('SELECT max("Id") FROM "Badges"').fetchone()
    with psycopg.connect(so_source) as conn:
        old_max = conn.execute('SELECT max("Id") FROM "Badges"').fetchone()
    assert new_id and old_max and new_id[0] > old_max[0]


def test_filters_schema_map_and_existing_policy(
    ray_local: None, so_source_uncompressed: str, make_database: Callable[[str], str]
) -> None:
    target = make_database("so_dst_map")
    settings = {
        "source": {"url": so_source_uncompressed},
        "target": {"url": target},
        "tables": ["public.Post*", "Users"],
        "exclude": ["PostLinks"],
        "schema_map": {"public": "so"},
        "large_values": "as-source",
        "report_path": None,
    }
    report = replicate(settings)
    assert report.status == "ok"
    assert sorted(t.table for t in report.tables) == ["so.PostTypes", "so.Posts", "so.Users"]
    assert "public.Votes" in report.excluded and "public.PostLinks" in report.excluded
    for table in ("Posts", "Users", "PostTypes"):
        assert pg_table_digest(so_source_uncompressed, "public", table) == pg_table_digest(target, "so", table)
    # as-source: loaded uncompressed under its mapped name, then its settings put back
    stored = large_value_storage(target, "Posts", "Body", schema="so")
    assert list(stored["compressed"]) == [None] and (stored["storage"], stored["reloptions"]) == ("x", None)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM _ray_replicator.load_settings").fetchone() == (0,)

    from ray_replicator.engines.base import UsageError

    with pytest.raises(UsageError, match=r"target table so\.Post\w* already exists"):
        replicate(settings)
    again = replicate({**settings, "existing": "truncate"})
    assert again.status == "ok" and again.total_rows == report.total_rows
    dropped = replicate({**settings, "existing": "drop"})
    assert dropped.status == "ok" and dropped.total_rows == report.total_rows
