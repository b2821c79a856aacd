"""PostgreSQL → PostgreSQL checksums are computed by each server over its rows' values as text: equal tables give
equal digests, and each kind of silent damage a copy can do changes the digest."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ray_replicator.engines.base import KeyRange
from ray_replicator.engines.postgres import PostgresSource

DDL = "CREATE TABLE t (id int PRIMARY KEY, a text, b text, f float8, n numeric(10,2), ts timestamptz, raw bytea)"
ROWS = [
    (1, "", None, 0.0, "1.50", "2024-01-01 00:00:00.000001+00", b"\x00\x01"),
    (2, "x", "y", 1.5, "2.00", "1999-12-31 23:59:59+02", b""),
    (3, "😀 emoji", "tab\there", -2.25, "-3.10", None, None),
]


def _load(url: str, rows: list[tuple[object, ...]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def _digest(url: str, rng: KeyRange | None = None) -> tuple[int, int, int]:
    source = PostgresSource(url)
    try:
        table = source.catalog([], []).tables[0]
        full = KeyRange(schema="public", table="t", index=0, kind="full")
        return source.range_digest(table, rng or full, [c.name for c in table.copy_columns])
    finally:
        source.close()


def _changed(row: int, column: int, value: object) -> list[tuple[object, ...]]:
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    return [tuple(r) for r in rows]


def test_equal_tables_equal_digests_in_any_row_order(make_database: Callable[[str], str]) -> None:
    left, right = make_database("dig_l"), make_database("dig_r")
    _load(left, ROWS)
    _load(right, list(reversed(ROWS)))
    assert _digest(left) == _digest(right)
    assert _digest(left)[0] == 3


@pytest.mark.parametrize(
    "damaged",
    [
        _changed(0, 1, None),  # '' became NULL
        _changed(0, 2, ""),  # NULL became ''
        [(1, None, "", *ROWS[0][3:]), *ROWS[1:]],  # values moved to the other column
        _changed(0, 3, -0.0),  # 0 became -0
        _changed(0, 4, "1.5"),  # numeric(10,2) keeps its scale, so this is equal...
        _changed(0, 5, "2024-01-01 00:00:00+00"),  # a microsecond lost
        _changed(0, 6, b"\x00"),  # a byte lost
        _changed(2, 1, "😀 emojı"),  # one character
        ROWS[:2],  # a row lost
    ],
    ids=["empty-to-null", "null-to-empty", "swapped-columns", "negative-zero", "numeric-scale", "microsecond",
         "byte", "character", "row-lost"],
)  # fmt: skip
def test_each_damage_changes_the_digest(make_database: Callable[[str], str], damaged: list[tuple[object, ...]]) -> None:
    left, right = make_database("dig_l"), make_database("dig_r")
    _load(left, ROWS)
    _load(right, damaged)
    same_value = damaged == _changed(0, 4, "1.5")  # numeric(10,2) stores 1.5 as 1.50: not damage at all
    assert (_digest(left) == _digest(right)) is same_value


def test_a_key_range_digests_only_its_rows(make_database: Callable[[str], str]) -> None:
    left, right = make_database("dig_l"), make_database("dig_r")
    _load(left, ROWS)
    _load(right, _changed(2, 1, "other"))
    low = KeyRange(schema="public", table="t", index=0, kind="key", columns=("id",), lower=None, upper=(3,))
    high = KeyRange(schema="public", table="t", index=1, kind="key", columns=("id",), lower=(3,), upper=None)
    assert _digest(left, low) == _digest(right, low)
    assert _digest(left, low)[0] == 2
    assert _digest(left, high) != _digest(right, high)


def test_verify_uses_the_servers_and_reads_rows_only_on_a_mismatch(make_database: Callable[[str], str]) -> None:
    from ray_replicator.bisection import checksum_range_local
    from ray_replicator.verify import target_tables

    left, right = make_database("dig_l"), make_database("dig_r")
    _load(left, ROWS)
    _load(right, ROWS)
    source = PostgresSource(left)
    table = source.catalog([], []).tables[0]
    source.close()
    full = KeyRange(schema="public", table="t", index=0, kind="full", estimated_rows=3)
    same = checksum_range_local(left, right, table, target_tables(right, [table])[("public", "t")], full)
    assert same.ok and same.rows_read == 0 and same.source.rows == 3
    with psycopg.connect(right, autocommit=True) as conn:
        conn.execute("UPDATE t SET a = NULL WHERE id = 1")
    differs = checksum_range_local(left, right, table, target_tables(right, [table])[("public", "t")], full)
    assert not differs.ok and differs.keys == ("id=1",) and differs.rows_read == 6
