"""Content checksums: equal values hash equally whatever Arrow type an engine hands out; one changed value is
found and its key named, even when the row counts agree."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable

import psycopg
import pyarrow as pa
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Column, LogicalType
from ray_replicator.config import load_settings
from ray_replicator.digest import digest_batches
from ray_replicator.pipeline import verify_only
from tests.helpers import pg_execute


def col(name: str, kind: str) -> Column:
    return Column(name, kind, LogicalType(kind))


def digest(arrays: list[pa.Array], kinds: list[str]) -> object:
    batch = pa.record_batch(arrays, names=[f"x{i}" for i in range(len(arrays))])
    return digest_batches([batch], [col(f"x{i}", k) for i, k in enumerate(kinds)])


PLUS2 = dt.timezone(dt.timedelta(hours=2))
UID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


@pytest.mark.parametrize(
    ("left", "right", "kind"),
    [
        (pa.array([255, None], pa.uint8()), pa.array([255, None], pa.int16()), "int8"),
        (pa.array([True, False]), pa.array([1, 0], pa.int64()), "bool"),
        (
            pa.array([decimal.Decimal("7082761.69")], pa.decimal128(19, 4)),
            pa.array([decimal.Decimal("7082761.69")], pa.decimal128(21, 2)),
            "money",
        ),
        (pa.array([decimal.Decimal("1.50")], pa.decimal128(10, 2)), pa.array(["1.5"]), "decimal"),
        (pa.array([-0.0, float("nan")], pa.float64()), pa.array([0.0, float("nan")], pa.float32()), "float64"),
        (
            pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)], pa.timestamp("ns", "UTC")),
            pa.array(
                [dt.datetime(2024, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))], pa.timestamp("us", "+02:00")
            ),
            "timestamptz",
        ),
        (pa.array([dt.date(9999, 12, 31)], pa.date32()), pa.array([dt.date(9999, 12, 31)], pa.date64()), "date"),
        (pa.array([UID.bytes], pa.binary(16)), pa.array([str(UID).upper()]), "uuid"),
        (pa.array(["😀 \x00"], pa.large_string()), pa.array(["😀 \x00"]), "string"),
    ],
    ids=["tinyint", "bit", "money", "decimal-text", "float-zero-nan", "tz-instant", "date-extremes", "uuid", "text"],
)
def test_same_value_same_hash_across_arrow_types(left: pa.Array, right: pa.Array, kind: str) -> None:
    assert digest([left], [kind]) == digest([right], [kind])


def test_different_values_differ_and_order_does_not_matter() -> None:
    a = pa.array([1, 2, 3], pa.int64())
    assert digest([a], ["int64"]) == digest([pa.array([3, 1, 2], pa.int64())], ["int64"])
    assert digest([a], ["int64"]) != digest([pa.array([1, 2, 4], pa.int64())], ["int64"])
    dup = digest([pa.array([1, 1, 3], pa.int64())], ["int64"])
    assert dup != digest([pa.array([1, 3, 3], pa.int64())], ["int64"])
    moved_null = digest([pa.array([1, 2]), pa.array([None, 5])], ["int64", "int64"])
    assert moved_null != digest([pa.array([None, 2]), pa.array([1, 5])], ["int64", "int64"])
    assert digest([pa.array(["ab", "c"])], ["string"]) != digest([pa.array(["a", "bc"])], ["string"])


def test_changed_value_is_found_with_its_key(ray_local: None, make_database: Callable[[str], str]) -> None:
    source = pg_execute(
        make_database("ck_src"),
        "CREATE TABLE acct (id bigint PRIMARY KEY, owner text, balance numeric(14,2), ts timestamp)",
        "INSERT INTO acct SELECT g, md5(g::text), g * 1.25, '2001-01-01'::timestamp + g * interval '1 s' "
        "FROM generate_series(1, 20000) g",
        "ANALYZE acct",
    )
    target = make_database("ck_dst")
    report = replicate(
        {"source": {"url": source}, "target": {"url": target}, "rows_per_range": 4000, "report_path": None}
    )
    assert report.status == "ok" and report.tables[0].verified == "yes (checksums)"

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("UPDATE acct SET balance = balance + 0.01 WHERE id = 12345")
        conn.execute("UPDATE acct SET ts = ts + interval '1 microsecond' WHERE id = 777")
    settings = load_settings(None, {"source": source, "target": target, "rows_per_range": 4000, "verify": "counts"})
    assert all(not mismatches for _, _, _, mismatches in verify_only(settings)), "counts cannot see a changed value"
    settings = load_settings(None, {"source": source, "target": target, "rows_per_range": 4000})
    [(name, src, dst, mismatches)] = verify_only(settings)
    assert name == "public.acct" and src == dst == 20000
    text = " ".join(mismatches)
    assert len(mismatches) == 2 and "id=12345" in text and "id=777" in text, mismatches
