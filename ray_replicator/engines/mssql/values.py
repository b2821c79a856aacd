"""Exact Arrow values from whatever a driver produced, and the value policies (hundred_ns, nul) applied on the way.

SQL Server sends datetime2(7), time(7) and datetimeoffset as text where Arrow or the driver would lose digits;
they are parsed here with Arrow compute, never per value in Python (temporal.py: the carriers and their text).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Column, Table
from ray_replicator.config import MssqlUrl
from ray_replicator.engines.base import EngineError
from ray_replicator.engines.mssql.sql import one_line, quote_ident
from ray_replicator.engines.mssql.temporal import TICKS, floor_mod, is_ticks, text_ticks, ticks_text, time_ns_text
from ray_replicator.engines.mssql.types import arrow_type, base_name, scale_of
from ray_replicator.record import FIRST_KEYS_KEPT, ValueChanges, key_text


def hundred_ns_policy(u: MssqlUrl) -> str:
    """The hundred_ns policy a reader applies: `auto` that no target resolved (engines/mssql/read.py
    url_for_target) refuses, as a copy into a target that cannot hold 100 ns must."""
    return "refuse" if u.hundred_ns == "auto" else u.hundred_ns


def has_nul(arr: pa.Array) -> bool:
    """Whether any value holds U+0000: one scan of the bytes the values span (a per-value substring search
    cost a quarter of the reader's CPU on text-heavy tables)."""
    _, offsets_buf, data = arr.buffers()
    if data is None or len(arr) == 0:
        return False
    offsets = np.frombuffer(offsets_buf, np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return end > start and bool(np.frombuffer(data, np.uint8)[start:end].min() == 0)


def py_arrow_type(col: Column) -> pa.DataType | None:
    """The Arrow type pymssql's Python values are first put into (the converter then makes them exact)."""
    n = base_name(col.native_type)
    if n == "uniqueidentifier":
        return pa.binary(16)
    if n in ("datetime2", "time", "datetimeoffset") and scale_of(col.native_type) == 7:
        return None  # text or a rounded value, depending on hundred_ns
    if n == "datetimeoffset":
        return pa.string()
    if n in ("datetime", "smalldatetime"):
        return pa.timestamp("us")
    return arrow_type(col)


def py_values(col: Column, values: Sequence[Any]) -> Sequence[Any]:
    if base_name(col.native_type) == "uniqueidentifier":
        return [
            None if v is None else (v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes) for v in values
        ]
    return values


class Converter:
    """Turns a driver's batch into the exact Arrow types of types.arrow_type and applies the policies."""

    def __init__(self, table: Table, cols: list[Column], u: MssqlUrl) -> None:
        self.table = table
        self.cols = cols
        self.u = u
        self.hundred_ns = hundred_ns_policy(u)
        self.types = [arrow_type(c, self.hundred_ns) for c in cols]
        self.key = [c for c in table.split_key if any(x.name == c for x in cols)]
        self.changes: dict[str, ValueChanges] = {}
        """What the lossy opt-in policies changed so far, per column (the run report counts it)."""

    def count_changed(self, batch: pa.RecordBatch, col: Column, changed: pa.Array, policy: str) -> None:
        """Count the values the mask marks as changed by `policy`, keeping the keys of the first few."""
        count = int(pc.sum(changed).as_py() or 0)
        if count == 0:
            return
        entry = self.changes.setdefault(col.name, ValueChanges(self.table.qualified, col.name, policy))
        keys: list[str] = []
        if self.key and len(entry.first_keys) < FIRST_KEYS_KEPT:
            rows = pc.indices_nonzero(changed).to_pylist()[: FIRST_KEYS_KEPT - len(entry.first_keys)]
            columns = [batch.column(batch.schema.get_field_index(k)) for k in self.key]
            keys = [key_text(self.key, [c[r].as_py() for c in columns]) for r in rows]
        entry.add(count, keys)

    def _where(self, batch: pa.RecordBatch, row: int) -> str:
        if not self.key:
            return f"row {row + 1} of its batch (the table has no key)"
        vals = ", ".join(f"{k}={batch.column(batch.schema.get_field_index(k))[row].as_py()!r}" for k in self.key)
        return f"key {vals}"

    def _fail(self, batch: pa.RecordBatch, col: Column, row: int, value: Any, why: str) -> EngineError:
        return EngineError(f"{self.table.qualified}.{col.name} at {self._where(batch, row)}: value {value!r} {why}")

    def _refuse_first(self, batch: pa.RecordBatch, col: Column, mask: pa.Array, values: pa.Array, why: str) -> None:
        """Fail on the first row the mask marks, a value this conversion cannot hold; nothing when none is."""
        if pc.any(mask).as_py():
            row = int(pc.index(mask, True).as_py())
            raise self._fail(batch, col, row, values[row].as_py(), why)

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for i, (col, want) in enumerate(zip(self.cols, self.types, strict=True)):
            arr = batch.column(i)
            arr = self._one(batch, col, want, arr)
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(
            arrays, schema=pa.schema([pa.field(c.name, t) for c, t in zip(self.cols, self.types, strict=True)])
        )

    def _one(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        n = base_name(col.native_type)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if n == "uniqueidentifier":
            return self._uuid(arr)
        if pa.types.is_string(want) or pa.types.is_large_string(want):
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                arr = arr.cast(pa.large_string())
            arr = self._text(batch, col, arr)
            if n == "datetimeoffset":
                arr = self._offset_text(batch, col, arr)
            return arr.cast(want)
        if n in ("datetime2", "time") and (
            pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)
        ):
            return self._seven(batch, col, want, arr)
        if n == "datetime" or n == "smalldatetime":
            return self._ms(batch, col, want, arr)
        if arr.type != want:
            try:
                return arr.cast(want, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise EngineError(
                    f"{self.table.qualified}.{col.name}: driver type {arr.type} does not convert exactly to {want}: "
                    f"{one_line(str(exc))}"
                ) from None
        return arr

    @staticmethod
    def _uuid(arr: pa.Array) -> pa.Array:
        if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary(arr.type):
            storage = arr.cast(pa.binary(16))
        else:  # mssql-python hands uniqueidentifier over as text
            text = arr.cast(pa.string())
            hexed = pc.replace_substring(text, "-", "")
            storage = pa.array([None if h is None else bytes.fromhex(h) for h in hexed.to_pylist()], type=pa.binary(16))
        return pa.ExtensionArray.from_storage(pa.uuid(), storage)

    def _text(self, batch: pa.RecordBatch, col: Column, arr: pa.Array) -> pa.Array:
        if self.u.nul == "keep" or col.logical.kind not in ("string", "xml", "other", "variant") or not has_nul(arr):
            return arr
        has = pc.match_substring(arr, "\x00")
        if self.u.nul in ("strip", "replace"):
            self.count_changed(batch, col, pc.fill_null(has, False), f"nul={self.u.nul}")
        if self.u.nul == "strip":
            return pc.replace_substring(arr, "\x00", "")
        if self.u.nul == "replace":
            return pc.replace_substring(arr, "\x00", "\ufffd")
        row = int(pc.index(has, True).as_py())
        raise self._fail(
            batch,
            col,
            row,
            arr[row].as_py(),
            "contains NUL (U+0000), which PostgreSQL text cannot hold; add nul=keep (SQL Server targets), "
            "nul=strip or nul=replace (U+FFFD) to the source URL, or clean the value at the source",
        )

    def _offset_text(self, batch: pa.RecordBatch, col: Column, arr: pa.Array) -> pa.Array:
        """datetimeoffset text 'YYYY-MM-DD hh:mm:ss[.fffffff] +hh:mm': check the 100 ns digit."""
        if self.hundred_ns != "refuse" or scale_of(col.native_type) < 7:
            return arr
        self._refuse_first(batch, col, pc.match_substring_regex(arr, r"\.\d{6}[1-9] "), arr, _SEVEN_WHY)
        return pc.replace_substring_regex(arr, r"(\.\d{6})0 ", r"\1 ")

    def _seven(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        """datetime2(7)/time(7) as SQL Server's text: exact 100 ns ticks over the whole range (0001..9999), as
        Datetime2Ticks or time64('ns') when kept, else microseconds once the 100 ns digit is known to be 0."""
        text = arr.cast(pa.string())
        is_time = base_name(col.native_type) == "time"
        ticks, units = text_ticks(text, is_time)
        if self.hundred_ns == "refuse":
            self._refuse_first(batch, col, pc.not_equal(floor_mod(units, 10), 0), text, _SEVEN_WHY)
        if is_ticks(want):
            return pa.ExtensionArray.from_storage(TICKS, ticks)
        if _unit(want) == "ns":
            return pc.multiply(ticks, 100).cast(want)
        return pc.divide(ticks, 10).cast(want)  # ticks are whole microseconds here: the division is exact

    def _ms(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        """datetime is shown to the millisecond (1/300 s ticks rounded); anything finer is a driver surprise."""
        try:
            return arr.cast(pa.timestamp("us")).cast(want, safe=True)
        except pa.ArrowInvalid:
            us = arr.cast(pa.timestamp("us")).cast(pa.int64())
            step = 1000 if want == pa.timestamp("ms") else 1_000_000
            bad = pc.not_equal(pc.subtract(us, pc.multiply(pc.divide(us, step), step)), 0)
            row = int(pc.index(bad, True).as_py())
            raise self._fail(batch, col, row, arr[row].as_py(), f"is finer than {col.native_type} allows") from None


_SEVEN_WHY = (
    "has a non-zero 100 ns digit, which the target cannot hold; add hundred_ns=round (round to microseconds) to "
    "the source URL (a SQL Server target keeps the digit unless the URL says hundred_ns=refuse)"
)


def _unit(t: pa.DataType) -> str | None:
    return getattr(t, "unit", None)


def is_uuid(t: pa.DataType) -> bool:
    return getattr(t, "extension_name", None) == "arrow.uuid"


def as_text(arr: pa.Array) -> pa.Array:
    """SQL Server's input form of a value as text (uuid, 100 ns times, timestamps, booleans, binary hex)."""
    t = arr.type
    if is_uuid(t):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], type=pa.string())
    if is_ticks(t):
        return ticks_text(arr)
    if pa.types.is_timestamp(t):
        if t.unit == "ns":
            return ticks_text(pc.divide(pc.subtract(arr.cast(pa.int64()), floor_mod(arr.cast(pa.int64()), 100)), 100))
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")  # %S carries the unit's fractional digits
    if pa.types.is_time64(t) and t.unit == "ns":
        return time_ns_text(arr)
    if pa.types.is_time(t):
        return arr.cast(pa.string())
    if pa.types.is_boolean(t):
        return arr.cast(pa.uint8()).cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else v.hex() for v in arr.to_pylist()], type=pa.large_string())
    if pa.types.is_floating(t):
        return (
            pa.array([None if v is None else repr(float(v)) for v in arr.to_pylist()], type=pa.string())
            if pa.types.is_float64(t)
            else arr.cast(pa.string())
        )
    return arr.cast(pa.large_string()) if not pa.types.is_string(t) else arr


def rounded_by_server(col: Column) -> str | None:
    """A T-SQL condition true where hundred_ns = round changes the column's value (the server rounds it while
    reading, so the converter never sees the 100 ns digit), or None for a column it does not change."""
    n = base_name(col.native_type)
    if n not in ("datetime2", "time", "datetimeoffset") or scale_of(col.native_type) != 7:
        return None
    return f"DATEPART(nanosecond, {quote_ident(col.name)}) % 1000 <> 0"
