"""SQL Server's date and time values over their whole range (0001-01-01 .. 9999-12-31, 100 ns, offsets ±14:00).

The carrier of a datetime2(7) column whose 100 ns digit is kept is `TICKS`: 100 ns ticks since 1970-01-01 in an
int64 (an Arrow extension type, so every consumer sees what the integers mean). Why not timestamp('ns'): its int64
nanoseconds end in 1677 and 2262, so 0001-01-01 and 9999-12-31 could not travel. Why not a µs timestamp plus a
digit column: one value would become two columns that every stage has to keep together. int64 ticks hold
±29,000 years and are the canonical form digest.py compares anyway (µs timestamps × 10), so verify needs nothing
new. time(7) keeps time64('ns') (a day of nanoseconds fits) and datetimeoffset its text with the offset.

The writers turn ticks into what SQL Server reads: text 'YYYY-MM-DD hh:mm:ss.fffffff' (INSERT, BULK INSERT) or,
for the bulk copy, timestamp('ns') where a value lies within 1677..2262 (`fits_ns`) or timestamp('us') where its
100 ns digit is 0 (`fits_us`); rows neither holds go by INSERT (write_bulk.py). Everything here is Arrow
compute: no Python per value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Table
from ray_replicator.engines.base import EngineError

TICKS_PER_SECOND = 10_000_000
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
MIN_SECONDS = -62_135_596_800
"""0001-01-01 00:00:00 in seconds since 1970."""
END_SECONDS = 253_402_300_800
"""10000-01-01 00:00:00 in seconds since 1970: SQL Server's date and time types end just before it."""
_NS_MIN_TICKS = -(2**63) // 100 + 1
_NS_MAX_TICKS = (2**63 - 1) // 100


class Datetime2Ticks(pa.ExtensionType):
    """100 ns ticks since 1970-01-01 00:00:00 (no time zone) in an int64: a datetime2(7) with every digit."""

    def __init__(self) -> None:
        super().__init__(pa.int64(), "ray_replicator.datetime2_ticks")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> Datetime2Ticks:
        return cls()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Datetime2Ticks, ())


TICKS = Datetime2Ticks()
with contextlib.suppress(pa.ArrowKeyError):  # registered by an earlier import of this module
    pa.register_extension_type(TICKS)


def is_ticks(t: pa.DataType) -> bool:
    return isinstance(t, Datetime2Ticks)


def floor_mod(ints: pa.Array, m: int) -> pa.Array:
    """Non-negative remainder (ticks before 1970 are negative; Arrow's integer division truncates toward 0)."""
    r = pc.subtract(ints, pc.multiply(pc.divide(ints, m), m))
    return pc.if_else(pc.less(r, 0), pc.add(r, m), r)


def _digits(units: pa.Array) -> pa.Array:
    """0..9999999 as seven digits."""
    return pc.utf8_lpad(pc.cast(units, pa.string()), 7, "0")


def text_ticks(text: pa.Array, is_time: bool) -> tuple[pa.Array, pa.Array]:
    """SQL Server's text of a datetime2(7) 'YYYY-MM-DD hh:mm:ss[.fffffff]' (ticks since 1970) or time(7)
    'hh:mm:ss[.fffffff]' (ticks since midnight), and the 100 ns units within the second (0..9999999)."""
    s = text.cast(pa.string())
    whole_len = 8 if is_time else 19
    whole = pc.utf8_slice_codeunits(s, 0, whole_len)
    units = pc.cast(pc.utf8_rpad(pc.utf8_slice_codeunits(s, whole_len + 1, whole_len + 8), 7, "0"), pa.int64())
    if is_time:
        parts = pc.split_pattern(whole, ":")
        hours, minutes, seconds = (pc.cast(pc.list_element(parts, i), pa.int64()) for i in range(3))
        secs = pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds)
    else:
        secs = pc.cast(pc.strptime(whole, format="%Y-%m-%d %H:%M:%S", unit="s"), pa.int64())
    return pc.add(pc.multiply(secs, TICKS_PER_SECOND), units), units


def ticks_text(ticks: pa.Array) -> pa.Array:
    """Ticks since 1970 as 'YYYY-MM-DD hh:mm:ss.fffffff', the form SQL Server reads into datetime2(7)."""
    ints = ticks.storage if isinstance(ticks, pa.ExtensionArray) else ticks
    units = floor_mod(ints, TICKS_PER_SECOND)
    secs = pc.divide(pc.subtract(ints, units), TICKS_PER_SECOND)
    whole = pc.strftime(secs.cast(pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
    return pc.binary_join_element_wise(whole, _digits(units), pa.scalar("."))


def time_ns_text(arr: pa.Array) -> pa.Array:
    """time64('ns') as 'hh:mm:ss.fffffff' (SQL Server's time(7) holds 100 ns, the digits below are zero)."""
    ns = arr.cast(pa.int64())
    units = pc.divide(floor_mod(ns, 1_000_000_000), 100)
    secs = pc.divide(ns, 1_000_000_000)
    whole = secs.cast(pa.int32()).cast(pa.time32("s")).cast(pa.string())
    return pc.binary_join_element_wise(whole, _digits(units), pa.scalar("."))


def fits_ns(ticks: pa.Array) -> pa.Array:
    """Where ticks fit timestamp('ns') (1677-09-21 .. 2262-04-11), or are NULL."""
    ints = _storage(ticks)
    inside = pc.and_(pc.greater_equal(ints, _NS_MIN_TICKS), pc.less_equal(ints, _NS_MAX_TICKS))
    return pc.fill_null(inside, True)


def fits_us(ticks: pa.Array) -> pa.Array:
    """Where ticks are whole microseconds (timestamp('us') holds them over 0001..9999), or are NULL."""
    return pc.fill_null(pc.equal(floor_mod(_storage(ticks), 10), 0), True)


def ticks_as_us(ticks: pa.Array) -> pa.Array:
    """Ticks that fits_us as timestamp('us')."""
    return pc.divide(_storage(ticks), 10).cast(pa.timestamp("us"))


def _storage(ticks: pa.Array) -> pa.Array:
    return ticks.storage if isinstance(ticks, pa.ExtensionArray) else ticks


def ticks_as_ns(ticks: pa.Array) -> pa.Array:
    """Ticks that fits_ns as timestamp('ns'), the type the bulk copy's Arrow writer takes for datetime2."""
    ints = _storage(ticks)
    return pc.multiply(ints, 100).cast(pa.timestamp("ns"))


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def outside_sql_server(arr: pa.Array) -> pa.Array | None:
    """Where a date/time value lies outside what SQL Server's date and time types hold (0001-01-01 ..
    9999-12-31 23:59:59.9999999; times of day below 24:00), or None for an array of another type. A timestamp with
    a time zone is checked as its UTC instant (a datetimeoffset's)."""
    t = arr.type
    if is_ticks(t):
        raw, per_second = arr.storage, TICKS_PER_SECOND
    elif pa.types.is_timestamp(t) and t.unit != "ns":  # int64 nanoseconds never leave 1677..2262
        raw, per_second = arr.cast(pa.int64()), _PER_SECOND[t.unit]
    elif pa.types.is_date32(t) or pa.types.is_date64(t):
        raw, per_second = pc.multiply(arr.cast(pa.date32()).cast(pa.int32()).cast(pa.int64()), 86_400), 1
    elif pa.types.is_time(t):
        raw = arr.cast(pa.int32() if pa.types.is_time32(t) else pa.int64()).cast(pa.int64())
        return pc.fill_null(pc.or_(pc.less(raw, 0), pc.greater_equal(raw, 86_400 * _PER_SECOND[t.unit])), False)
    else:
        return None
    low, high = MIN_SECONDS * per_second, END_SECONDS * per_second
    return pc.fill_null(pc.or_(pc.less(raw, low), pc.greater_equal(raw, high)), False)


def shown(value: pa.Scalar) -> str:
    """A date/time value for a message, also one Python's datetime cannot hold (year 0, 10000, 24:00:00)."""
    t = value.type
    if not value.is_valid:
        return "NULL"
    if is_ticks(t):
        return str(ticks_text(pa.array([value.value.as_py()], pa.int64()))[0].as_py())
    if pa.types.is_time(t):
        raw = pa.array([value]).cast(pa.int32() if pa.types.is_time32(t) else pa.int64())[0].as_py()
        per_second = _PER_SECOND[t.unit]
        secs, frac = divmod(raw, per_second)
        text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        return text + (f".{frac:0{len(str(per_second)) - 1}d}" if frac else "")
    return str(pa.array([value]).cast(pa.string())[0].as_py())


def refuse_outside_sql_server(table: Table, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches, each checked before it is written: a date/time value SQL Server cannot hold (a PostgreSQL
    year before 1 or after 9999, time 24:00:00) stops the range with one line naming table, column, key and value,
    instead of an error of the server's mid-load (or a value wrapped around by a client)."""
    for batch in batches:
        for i, field in enumerate(batch.schema):
            outside = outside_sql_server(batch.column(i))
            if outside is not None and pc.any(outside).as_py():
                row = int(pc.index(outside, True).as_py())
                raise EngineError(
                    f"{table.qualified}.{field.name} at {_where(table, batch, row)}: value "
                    f"{shown(batch.column(i)[row])} is outside what SQL Server's date and time types hold "
                    "(0001-01-01 through 9999-12-31, times of day below 24:00); change the value at the source or "
                    "exclude the table"
                )
        yield batch


def _where(table: Table, batch: pa.RecordBatch, row: int) -> str:
    keys = [k for k in table.split_key if k in batch.schema.names]
    if not keys:
        return f"row {row + 1} of its batch (the table has no key)"
    return "key " + ", ".join(f"{k}={batch.column(batch.schema.get_field_index(k))[row].as_py()!r}" for k in keys)
