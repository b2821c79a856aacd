"""Order-independent checksums of rows read as Arrow batches, the same for the same values on any engine.

Every column is first brought to a canonical Arrow form that does not depend on the engine (ints as int64,
decimals as canonical strings, timestamps and times as 100 ns ticks, floats by bit pattern with one NaN and no -0,
uuids as hex, text as UTF-8), so the same value on SQL Server and PostgreSQL hashes the same while a difference in
SQL Server's 100 ns digit still shows. datetimeoffset text is compared as its instant against an engine that keeps
instants (PostgreSQL timestamptz) and as instant and offset when both sides are datetimeoffset. DuckDB hashes each
row and sums/xors the hashes — no per-row Python.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Column
from ray_replicator.typemap import datetimeoffset_parts

MAX_REPORTED_KEYS = 10
_MASK64 = (1 << 64) - 1
_DECIMAL_KINDS = {"decimal", "money"}

# ---------------------------------------------------------------------------------------------------------
# Canonical values
# ---------------------------------------------------------------------------------------------------------


def _canonical_float(arr: pa.Array) -> pa.Array:
    """IEEE bits of the float64 value: -0 becomes 0 and every NaN the same NaN, so equal values hash equally."""
    as64 = pc.cast(arr, pa.float64())
    values = np.asarray(as64.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64) + 0.0
    values[np.isnan(values)] = np.nan
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(values.view(np.int64), type=pa.int64(), mask=mask if mask.any() else None)


def _canonical_decimal_text(arr: pa.Array) -> pa.Array:
    """'1.500' → '1.5', '2.000' → '2', '-0.00' → '0', '+3' → '3': one text per numeric value. Arrow prints
    some decimals in exponent form ('0E-10', '-1E-10'): those few are written out positionally first."""
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    exponent = pc.fill_null(pc.match_substring(text, "E"), False)
    if pc.any(exponent).as_py():
        plain = [None if v is None else format(decimal.Decimal(v), "f") for v in text.to_pylist()]
        text = pc.if_else(exponent, pa.array(plain, pa.string()), text)
    text = pc.replace_substring_regex(text, r"^\+", "")
    text = pc.replace_substring_regex(text, r"^(-?)0+(\d)", r"\1\2")
    text = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    return pc.replace_substring_regex(text, r"^-0$", "0")


_TICKS_PER_UNIT = {"s": 10_000_000, "ms": 10_000, "us": 10}


def _floor_div(ints: pa.Array, by: int) -> pa.Array:
    truncated = pc.divide(ints, by)
    return pc.if_else(pc.less(ints, pc.multiply(truncated, by)), pc.subtract(truncated, 1), truncated)


def _ticks(ints: pa.Array, unit: str) -> pa.Array:
    """A count of `unit` as 100 ns ticks: the finest any engine holds (SQL Server's datetime2(7)/time(7))."""
    if unit == "ns":
        return _floor_div(ints, 100)
    return pc.multiply(ints, _TICKS_PER_UNIT[unit])


def _offset_value(text: pa.Array, with_offset: bool) -> pa.Array:
    """datetimeoffset text as its UTC instant in ticks, or as (instant, offset) when the offset is compared too."""
    ticks, offset = datetimeoffset_parts(text)
    if not with_offset:
        return ticks
    mask = pc.is_null(ticks)
    return pa.StructArray.from_arrays([ticks, offset], names=["t", "o"], mask=mask if pc.any(mask).as_py() else None)


def column_modes(source_columns: list[Column], target_columns: list[Column]) -> list[str]:
    """Per column, what both sides must agree on beyond the value's type: 'offset' where both sides are
    datetimeoffset (the offset is part of the value), else '' (an instant is an instant)."""

    def base(col: Column) -> str:
        return col.native_type.split("(", 1)[0].strip().lower()

    modes = []
    for i, src in enumerate(source_columns):
        dst = target_columns[i] if i < len(target_columns) else src
        modes.append("offset" if base(src) == base(dst) == "datetimeoffset" else "")
    return modes


def _plain_values(arr: pa.Array) -> pa.Array:
    """An extension array's storage, a dictionary array's values."""
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def canonical_array(arr: pa.Array, column: Column | None = None, mode: str = "") -> pa.Array:
    """One column in its engine-independent form (see module doc)."""
    kind = column.logical.kind if column is not None else ""
    arr = _plain_values(arr)
    typ = arr.type
    if kind in _DECIMAL_KINDS and (
        pa.types.is_decimal(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ)
    ):
        return _canonical_decimal_text(arr)
    if kind == "timestamptz" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return _offset_value(arr, mode == "offset")
    if pa.types.is_boolean(typ) or pa.types.is_integer(typ):
        return pc.cast(arr, pa.int64())
    if pa.types.is_floating(typ):
        return _canonical_float(arr)
    if pa.types.is_decimal(typ):
        return _canonical_decimal_text(arr)
    if pa.types.is_timestamp(typ):
        return _ticks(pc.cast(arr, pa.int64()), typ.unit)
    if pa.types.is_date(typ):
        return pc.cast(pc.cast(pc.cast(arr, pa.date32()), pa.int32()), pa.int64())
    if pa.types.is_time(typ):
        raw = pc.cast(arr, pa.int32() if pa.types.is_time32(typ) else pa.int64())
        return _ticks(pc.cast(raw, pa.int64()), typ.unit)
    if pa.types.is_duration(typ):
        return pc.cast(pc.cast(arr, pa.duration("us"), safe=False), pa.int64())
    if kind == "uuid" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return pc.utf8_lower(pc.replace_substring(pc.cast(arr, pa.string()), "-", ""))
    if kind == "uuid" and (pa.types.is_fixed_size_binary(typ) or pa.types.is_binary(typ)):
        return _hex16(arr)
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pc.cast(arr, pa.string())
    if pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ) or pa.types.is_binary_view(typ):
        return pc.cast(arr, pa.binary())
    return arr


def _hex16(arr: pa.Array) -> pa.Array:
    """A uuid held as 16 big-endian bytes as 32 lowercase hex digits (the form uuid text reduces to)."""
    fixed = pc.cast(arr, pa.binary(16))
    raw = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)[fixed.offset * 16 : (fixed.offset + len(fixed)) * 16]
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    pairs = np.empty((len(fixed), 32), dtype=np.uint8)
    grid = raw.reshape(len(fixed), 16)
    pairs[:, 0::2] = digits[grid >> 4]
    pairs[:, 1::2] = digits[grid & 15]
    text = pa.array(pairs.view("S32").ravel(), type=pa.binary(32))
    mask = arr.is_null()
    return pc.if_else(mask, pa.scalar(None, pa.string()), pc.cast(pc.cast(text, pa.binary()), pa.string()))


def canonical_batch(batch: pa.RecordBatch, columns: list[Column], modes: list[str] | None = None) -> pa.Table:
    """A batch with positional column names c0..cn in canonical form (sides may name columns differently)."""
    arrays = [
        canonical_array(
            batch.column(i),
            columns[i] if i < len(columns) else None,
            modes[i] if modes is not None and i < len(modes) else "",
        )
        for i in range(batch.num_columns)
    ]
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


# ---------------------------------------------------------------------------------------------------------
# Digests and key differences (DuckDB)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    rows: int
    total: int
    xor: int


_DUCK: list[Any] = []


def _duck() -> Any:
    if not _DUCK:
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads TO 1")
        _DUCK.append(con)
    return _DUCK[0]


def _row_hash_sql(ncols: int) -> str:
    return "hash(" + ", ".join(f"c{i}" for i in range(ncols)) + ")" if ncols else "hash(1)"


def digest_batches(batches: Iterable[pa.RecordBatch], columns: list[Column], modes: list[str] | None = None) -> Digest:
    """Row count, sum and xor (mod 2^64) of DuckDB row hashes over the canonical batches."""
    con = _duck()
    rows = total = xor = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        canon = canonical_batch(batch, columns, modes)
        h = _row_hash_sql(canon.num_columns)
        con.register("canon", canon)
        try:
            n, s, x = con.execute(
                f"SELECT count(*), sum({h}::HUGEINT) % 18446744073709551616, bit_xor({h}) FROM canon"
            ).fetchall()[0]
        finally:
            con.unregister("canon")
        rows += int(n)
        total = (total + int(s or 0)) & _MASK64
        xor ^= int(x or 0)
    return Digest(rows, total, xor)


def keyed_hashes(
    batches: Iterable[pa.RecordBatch],
    columns: list[Column],
    key_positions: list[int],
    modes: list[str] | None = None,
) -> pa.Table:
    """(k0.., h) for every row: canonical key columns and the row hash, to find which keys differ."""
    con = _duck()
    parts = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        canon = canonical_batch(batch, columns, modes)
        keys = ", ".join(f"c{p} AS k{j}" for j, p in enumerate(key_positions))
        sql = f"SELECT {keys + ', ' if keys else ''}{_row_hash_sql(canon.num_columns)} AS h FROM canon"
        con.register("canon", canon)
        try:
            parts.append(con.sql(sql).to_arrow_table())
        finally:
            con.unregister("canon")
    if not parts:
        names = [f"k{j}" for j in range(len(key_positions))] + ["h"]
        return pa.table({n: pa.array([], pa.uint64() if n == "h" else pa.null()) for n in names})
    return pa.concat_tables(parts, promote_options="permissive")


def differing_keys(source: pa.Table, target: pa.Table, nkeys: int, limit: int = MAX_REPORTED_KEYS) -> tuple[int, list]:
    """How many keys (or, without a key, rows) differ between two (keys, hash) tables, and up to `limit` of the
    keys: a multiset difference, so duplicated and missing rows count too."""
    con = _duck()
    keys = [f"k{j}" for j in range(nkeys)]
    cols = ", ".join([*keys, "h"])
    con.register("src_h", source)
    con.register("dst_h", target)
    try:
        diff = (
            f"(SELECT {cols} FROM src_h EXCEPT ALL SELECT {cols} FROM dst_h) UNION ALL "
            f"(SELECT {cols} FROM dst_h EXCEPT ALL SELECT {cols} FROM src_h)"
        )
        distinct = f"DISTINCT {', '.join(keys)}" if keys else "*"
        count = con.execute(f"SELECT count(*) FROM (SELECT {distinct} FROM ({diff}))").fetchall()[0][0]
        found: list[tuple[Any, ...]] = []
        if keys:
            key_list = ", ".join(keys)
            found = con.execute(
                f"SELECT DISTINCT {key_list} FROM ({diff}) ORDER BY {key_list} LIMIT {int(limit)}"
            ).fetchall()
    finally:
        con.unregister("src_h")
        con.unregister("dst_h")
    return int(count), found


def combine(digests: Iterable[Digest]) -> Digest:
    rows = total = xor = 0
    for d in digests:
        rows += d.rows
        total = (total + d.total) & _MASK64
        xor ^= d.xor
    return Digest(rows, total, xor)
