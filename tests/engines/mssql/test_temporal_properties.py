"""Properties of the temporal encodings over SQL Server's whole ranges: SQL Server's text ↔ 100 ns ticks ↔ the Arrow
carrier ↔ what each writer sends (INSERT/BULK INSERT text, the bulk copy's timestamp('ns') or held-back rows), and
the digest's canonical form. The reference values are computed with Python's datetime, not with the code under
test."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ray_replicator.catalog import Column, LogicalType, Table
from ray_replicator.digest import canonical_array
from ray_replicator.engines.base import EngineError
from ray_replicator.engines.mssql.temporal import (
    END_SECONDS,
    MIN_SECONDS,
    TICKS,
    TICKS_PER_DAY,
    TICKS_PER_SECOND,
    fits_ns,
    fits_us,
    outside_sql_server,
    shown,
    text_ticks,
    ticks_as_ns,
    ticks_as_us,
    ticks_text,
    time_ns_text,
)
from ray_replicator.engines.mssql.url import parse_url
from ray_replicator.engines.mssql.values import Converter, as_text
from ray_replicator.engines.mssql.write_bulk import held_back, stream_unit
from ray_replicator.typemap import datetimeoffset_parts

EPOCH = dt.datetime(1970, 1, 1)
DATETIME2_TICKS = st.integers(MIN_SECONDS * TICKS_PER_SECOND, END_SECONDS * TICKS_PER_SECOND - 1)
TIME_TICKS = st.integers(0, TICKS_PER_DAY - 1)
OFFSETS = st.integers(-14 * 60, 14 * 60)


def _text(ticks: int) -> str:
    """The reference: SQL Server's text of a datetime2(7), built with Python's datetime."""
    moment = EPOCH + dt.timedelta(microseconds=ticks // 10)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}{ticks % 10}".rjust(27, "0")


def _time_text(ticks: int) -> str:
    seconds, units = divmod(ticks, TICKS_PER_SECOND)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{units:07d}"


def _offset(minutes: int) -> str:
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _table(native: str, kind: str) -> tuple[Table, Column]:
    col = Column("v", native, LogicalType(kind, precision=7))
    return Table("dbo", "t", [col]), col


def _convert(native: str, kind: str, texts: list[str | None], policy: str) -> pa.Array:
    table, col = _table(native, kind)
    conv = Converter(table, [col], parse_url(f"mssql://u:p@127.0.0.1:1/db?hundred_ns={policy}"))
    batch = pa.record_batch([pa.array(texts, pa.large_string())], names=["v"])
    return conv.convert(batch).column(0)


@given(st.lists(DATETIME2_TICKS | st.none(), min_size=1, max_size=20))
def test_datetime2_text_ticks_carrier_and_insert_text_round_trip(values: list[int | None]) -> None:
    texts = [None if v is None else _text(v) for v in values]
    ticks, _ = text_ticks(pa.array(texts), is_time=False)
    assert ticks.to_pylist() == values
    kept = _convert("datetime2(7)", "timestamp", texts, "keep")
    assert kept.type == TICKS and kept.storage.to_pylist() == values
    assert as_text(kept).to_pylist() == texts  # what INSERT and BULK INSERT send
    assert ticks_text(pa.array(values, pa.int64())).to_pylist() == texts
    # the digest's canonical form is the ticks: µs timestamps of another engine compare by ticks × 10
    assert canonical_array(kept).to_pylist() == values


@given(st.lists(DATETIME2_TICKS | st.none(), min_size=1, max_size=20), st.sampled_from(["ns", "us"]))
def test_a_bulk_load_carries_exactly_the_rows_its_unit_holds_and_holds_back_the_others(
    values: list[int | None], unit: str
) -> None:
    keys = list(range(len(values)))
    batch = pa.record_batch(
        [pa.array(keys, pa.int32()), pa.ExtensionArray.from_storage(TICKS, pa.array(values, pa.int64()))],
        names=["id", "v"],
    )
    carried, rest = held_back(batch, unit)

    inside = [k for k, v in zip(keys, values, strict=True) if holds_in(v, unit)]
    assert carried.column(0).to_pylist() == inside
    assert (rest.column(0).to_pylist() if rest is not None else []) == [k for k in keys if k not in inside]
    sent = ticks_as_ns(carried.column(1)) if unit == "ns" else ticks_as_us(carried.column(1))
    assert sent.type == pa.timestamp(unit)
    want = [
        None if v is None else (v * 100 if unit == "ns" else v // 10) for v in carried.column(1).storage.to_pylist()
    ]
    assert sent.cast(pa.int64()).to_pylist() == want
    assert (fits_ns if unit == "ns" else fits_us)(carried.column(1)).to_pylist() == [True] * carried.num_rows
    # the stream's unit is the one that carries more rows of its first batch
    by_ns, by_us = sum(holds_in(v, "ns") for v in values), sum(holds_in(v, "us") for v in values)
    assert stream_unit(batch) == ("us" if by_us > by_ns else "ns")


def holds_in(v: int | None, unit: str) -> bool:
    return v is None or (-(2**63) // 100 + 1 <= v <= (2**63 - 1) // 100 if unit == "ns" else v % 10 == 0)


@given(st.lists(DATETIME2_TICKS, min_size=1, max_size=20))
def test_refuse_and_round_policies_see_the_100ns_digit(values: list[int]) -> None:
    texts = [_text(v) for v in values]
    whole_us = [v for v in values if v % 10 == 0]
    if len(whole_us) == len(values):
        got = _convert("datetime2(7)", "timestamp", texts, "refuse")
        assert got.type == pa.timestamp("us") and got.cast(pa.int64()).to_pylist() == [v // 10 for v in values]
        return
    with pytest.raises(EngineError) as err:
        _convert("datetime2(7)", "timestamp", texts, "refuse")
    first = next(t for t, v in zip(texts, values, strict=True) if v % 10)
    assert first in str(err.value) and "hundred_ns=round" in str(err.value)
    with pytest.raises(EngineError):  # auto that no target resolved refuses too
        _convert("datetime2(7)", "timestamp", texts, "auto")


@given(st.lists(TIME_TICKS | st.none(), min_size=1, max_size=20))
def test_time_text_ticks_carrier_and_insert_text_round_trip(values: list[int | None]) -> None:
    texts = [None if v is None else _time_text(v) for v in values]
    ticks, _ = text_ticks(pa.array(texts), is_time=True)
    assert ticks.to_pylist() == values
    kept = _convert("time(7)", "time", texts, "keep")
    assert kept.type == pa.time64("ns")
    assert kept.cast(pa.int64()).to_pylist() == [None if v is None else v * 100 for v in values]
    assert as_text(kept).to_pylist() == texts
    assert time_ns_text(kept).to_pylist() == texts


@given(st.lists(st.tuples(DATETIME2_TICKS, OFFSETS), min_size=1, max_size=20))
def test_datetimeoffset_text_parts_keep_instant_and_offset(pairs: list[tuple[int, int]]) -> None:
    """Only values whose UTC instant lies in 0001..9999 exist in SQL Server (MS-BCP 2.1.9)."""
    valid = [
        (local, off)
        for local, off in pairs
        if MIN_SECONDS * TICKS_PER_SECOND <= local - off * 60 * TICKS_PER_SECOND < END_SECONDS * TICKS_PER_SECOND
    ]
    texts = [f"{_text(local)} {_offset(off)}" for local, off in valid] + [None]
    utc, offsets = datetimeoffset_parts(pa.array(texts))
    assert utc.to_pylist() == [local - off * 60 * TICKS_PER_SECOND for local, off in valid] + [None]
    assert offsets.to_pylist() == [off for _, off in valid] + [None]
    assert _convert("datetimeoffset(7)", "timestamptz", texts, "keep").to_pylist() == texts


PG_MICROSECONDS = st.integers(-210_866_803_200_000_000, 9_223_371_331_199_999_999 // 10)
"""PostgreSQL's timestamps: 4714 BC .. 294276 AD as µs since 1970 (as ADBC hands them over)."""


@given(st.lists(PG_MICROSECONDS, min_size=1, max_size=20))
def test_outside_sql_server_is_exactly_years_before_1_and_after_9999(values: list[int]) -> None:
    arr = pa.array(values, pa.int64()).cast(pa.timestamp("us"))
    low, high = MIN_SECONDS * 1_000_000, END_SECONDS * 1_000_000
    mask = outside_sql_server(arr)
    assert mask is not None
    assert mask.to_pylist() == [not low <= v < high for v in values]
    for v, out in zip(values, mask.to_pylist(), strict=True):
        if not out:
            assert shown(pa.scalar(v, pa.timestamp("us"))) == (EPOCH + dt.timedelta(microseconds=v)).isoformat(
                sep=" ", timespec="microseconds"
            )
    with_zone = outside_sql_server(arr.cast(pa.timestamp("us", "UTC")))
    assert with_zone is not None and with_zone.to_pylist() == mask.to_pylist()


@given(st.lists(st.integers(0, 86_400_000_000), min_size=1, max_size=20))
def test_times_of_day_from_24_00_are_outside(values: list[int]) -> None:
    arr = pa.array(values, pa.int64()).cast(pa.time64("us"))
    mask = outside_sql_server(arr)
    assert mask is not None and mask.to_pylist() == [v == 86_400_000_000 for v in values]
    if 86_400_000_000 in values:
        assert shown(arr[values.index(86_400_000_000)]) == "24:00:00"


def test_other_types_are_not_judged() -> None:
    assert outside_sql_server(pa.array([1], pa.int64())) is None
    assert outside_sql_server(pa.array(["x"])) is None
    assert pc.all(outside_sql_server(pa.array([None], pa.timestamp("us")))).as_py() is False
