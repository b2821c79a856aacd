"""Compare source and target: per-range row counts, or order-independent checksums of every value.

Key ranges are compared with the same predicate on both sides. Physical ranges (ctid pages) mean nothing on the
target, so tables split that way are compared whole.

Checksums are computed in Ray workers from Arrow batches read from both sides. Every column is first brought to a
canonical Arrow form that does not depend on the engine (ints as int64, decimals as canonical strings, timestamps
as UTC microseconds, floats by bit pattern with one NaN and no -0, uuids as 16 bytes, text as UTF-8), so the same
value on SQL Server and PostgreSQL hashes the same. DuckDB then hashes each row and sums/xors the hashes — no
per-row Python. On a mismatch the range's (key, row hash) pairs from both sides are joined to name the keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from ray_replicator.catalog import Column, Table
from ray_replicator.copy import _cached_source, count_range_task, run_bounded
from ray_replicator.engines.base import EngineError, KeyRange

MAX_REPORTED_KEYS = 10
_MASK64 = (1 << 64) - 1
_DECIMAL_KINDS = {"decimal", "money"}


@dataclass
class TableCheck:
    schema: str
    table: str
    source_rows: int = 0
    target_rows: int = 0
    mismatched_ranges: list[str] = field(default_factory=list)
    differing_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched_ranges and self.source_rows == self.target_rows


def comparable_ranges(table: Table, ranges: list[KeyRange]) -> list[KeyRange]:
    if ranges and all(r.kind in ("key", "null") for r in ranges):
        return ranges
    return [KeyRange(schema=table.schema, table=table.name, index=0, kind="full")]


def _on_target(rng: KeyRange, target_table: Table) -> KeyRange:
    return replace(rng, schema=target_table.schema, table=target_table.name)


def verify_counts(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
) -> list[TableCheck]:
    """Count every range on both sides as Ray tasks and report mismatches per table."""
    jobs: list[tuple[TableCheck, KeyRange, ray.ObjectRef, ray.ObjectRef]] = []
    checks: list[TableCheck] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        for rng in comparable_ranges(source_table, ranges):
            jobs.append(
                (
                    check,
                    rng,
                    count_range_task.remote(source_url, True, source_table, rng),
                    count_range_task.remote(target_url, False, target_table, _on_target(rng, target_table)),
                )
            )
    for check, rng, src_ref, dst_ref in jobs:
        src, dst = ray.get(src_ref), ray.get(dst_ref)
        check.source_rows += src
        check.target_rows += dst
        if src != dst:
            check.mismatched_ranges.append(f"{rng.range_id}: source {src} rows, target {dst} rows")
    return checks


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
    """'1.500' → '1.5', '2.000' → '2', '-0.00' → '0', '+3' → '3': one text per numeric value."""
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    text = pc.replace_substring_regex(text, r"^\+", "")
    text = pc.replace_substring_regex(text, r"^(-?)0+(\d)", r"\1\2")
    text = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    return pc.replace_substring_regex(text, r"^-0$", "0")


def canonical_array(arr: pa.Array, column: Column | None = None) -> pa.Array:
    """One column in its engine-independent form (see module doc)."""
    kind = column.logical.kind if column is not None else ""
    typ = arr.type
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
        typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = arr.dictionary_decode()
        typ = arr.type
    if kind in _DECIMAL_KINDS and (
        pa.types.is_decimal(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ)
    ):
        return _canonical_decimal_text(arr)
    if pa.types.is_boolean(typ) or pa.types.is_integer(typ):
        return pc.cast(arr, pa.int64())
    if pa.types.is_floating(typ):
        return _canonical_float(arr)
    if pa.types.is_decimal(typ):
        return _canonical_decimal_text(arr)
    if pa.types.is_timestamp(typ):
        return pc.cast(pc.cast(arr, pa.timestamp("us", typ.tz), safe=False), pa.int64())
    if pa.types.is_date(typ):
        return pc.cast(pc.cast(pc.cast(arr, pa.date32()), pa.int32()), pa.int64())
    if pa.types.is_time(typ):
        return pc.cast(pc.cast(arr, pa.time64("us"), safe=False), pa.int64())
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


def canonical_batch(batch: pa.RecordBatch, columns: list[Column]) -> pa.Table:
    """A batch with positional column names c0..cn in canonical form (sides may name columns differently)."""
    arrays = [
        canonical_array(batch.column(i), columns[i] if i < len(columns) else None) for i in range(batch.num_columns)
    ]
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


# ---------------------------------------------------------------------------------------------------------
# Checksums on a worker
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


def digest_batches(batches: Iterable[pa.RecordBatch], columns: list[Column]) -> Digest:
    """Row count, sum and xor (mod 2^64) of DuckDB row hashes over the canonical batches."""
    con = _duck()
    rows = total = xor = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        canon = canonical_batch(batch, columns)
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


def keyed_hashes(batches: Iterable[pa.RecordBatch], columns: list[Column], key_positions: list[int]) -> pa.Table:
    """(k0.., h) for every row: canonical key columns and the row hash, to find which keys differ."""
    con = _duck()
    parts = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        canon = canonical_batch(batch, columns)
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


@dataclass(frozen=True)
class RangeDigest:
    range_id: str
    source: Digest
    target: Digest
    differing_rows: int = 0
    keys: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.source == self.target


def _read(url: str, table: Table, rng: KeyRange, batch_rows: int, batch_bytes: int) -> Iterable[pa.RecordBatch]:
    return _cached_source(url).read_range(table, rng, batch_rows, batch_bytes)


def checksum_range_local(
    source_url: str,
    target_url: str,
    source_table: Table,
    target_table: Table,
    rng: KeyRange,
    batch_rows: int = 65_536,
    batch_bytes: int = 16 << 20,
) -> RangeDigest:
    """Digest one range on both sides; when they differ, name the keys whose rows differ."""
    try:
        return _checksum_range(source_url, target_url, source_table, target_table, rng, batch_rows, batch_bytes)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"checksumming {rng.range_id}: {type(exc).__name__}: {exc}") from None


def _checksum_range(
    source_url: str,
    target_url: str,
    source_table: Table,
    target_table: Table,
    rng: KeyRange,
    batch_rows: int,
    batch_bytes: int,
) -> RangeDigest:
    columns = source_table.copy_columns
    target_rng = _on_target(rng, target_table)
    src = digest_batches(_read(source_url, source_table, rng, batch_rows, batch_bytes), columns)
    dst = digest_batches(_read(target_url, target_table, target_rng, batch_rows, batch_bytes), columns)
    if src == dst:
        return RangeDigest(rng.range_id, src, dst)
    names = [c.name for c in columns]
    key = [k for k in source_table.split_key if k in names] or [
        k for k in (source_table.primary_key.columns if source_table.primary_key else ()) if k in names
    ]
    positions = [names.index(k) for k in key]
    src_h = keyed_hashes(_read(source_url, source_table, rng, batch_rows, batch_bytes), columns, positions)
    dst_h = keyed_hashes(_read(target_url, target_table, target_rng, batch_rows, batch_bytes), columns, positions)
    count, found = differing_keys(src_h, dst_h, len(positions))
    shown = tuple(", ".join(f"{k}={v!r}" for k, v in zip(key, row, strict=True)) for row in found)
    return RangeDigest(rng.range_id, src, dst, count, shown)


@ray.remote(max_retries=2, retry_exceptions=[ConnectionError, OSError])  # type: ignore[call-overload]
def checksum_range_task(
    source_url: str,
    target_url: str,
    source_table: Table,
    target_table: Table,
    rng: KeyRange,
    batch_rows: int,
    batch_bytes: int,
) -> RangeDigest:
    return checksum_range_local(source_url, target_url, source_table, target_table, rng, batch_rows, batch_bytes)


def target_tables(target_url: str, tables: list[Table]) -> dict[tuple[str, str], Table]:
    """The target's own catalog entries for the mapped tables, restricted to the columns the source copies, so
    range bounds are cast to the target's types and the select lists line up column by column."""
    from ray_replicator.engines import open_source

    reader = open_source(target_url)
    try:
        found = {(t.schema, t.name): t for t in reader.catalog([], []).tables}
    finally:
        with contextlib.suppress(Exception):
            reader.close()
    out: dict[tuple[str, str], Table] = {}
    for wanted in tables:
        have = found.get((wanted.schema, wanted.name))
        if have is None:
            out[(wanted.schema, wanted.name)] = wanted
            continue
        by_name = {c.name: c for c in have.columns}
        cols = [by_name.get(c.name, c) for c in wanted.copy_columns]
        out[(wanted.schema, wanted.name)] = replace(
            have, columns=cols, primary_key=wanted.primary_key, unique_keys=wanted.unique_keys
        )
    return out


def verify_checksums(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
    in_flight: int,
    batch_rows: int = 65_536,
    batch_bytes: int = 16 << 20,
) -> list[TableCheck]:
    """Checksum every range on both sides as Ray tasks (at most in_flight at once); report per table."""
    mapped = target_tables(target_url, [t for _, t, _ in pairs])
    checks: list[TableCheck] = []
    jobs: list[tuple[TableCheck, Table, Table, KeyRange]] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        tgt = mapped[(target_table.schema, target_table.name)]
        for rng in comparable_ranges(source_table, ranges):
            jobs.append((check, source_table, tgt, rng))

    def submit(job: tuple[TableCheck, Table, Table, KeyRange]) -> ray.ObjectRef:
        _, src_table, tgt_table, rng = job
        return checksum_range_task.remote(source_url, target_url, src_table, tgt_table, rng, batch_rows, batch_bytes)

    def done(job: tuple[TableCheck, Table, Table, KeyRange], result: RangeDigest) -> None:
        check = job[0]
        check.source_rows += result.source.rows
        check.target_rows += result.target.rows
        if not result.ok:
            where = f"; keys {', '.join(result.keys)}" if result.keys else ""
            check.mismatched_ranges.append(
                f"{result.range_id}: {result.differing_rows} row(s) differ (source {result.source.rows} rows, "
                f"target {result.target.rows}){where}"
            )
            check.differing_keys.extend(result.keys)

    run_bounded(jobs, submit, max(1, in_flight), done)
    return checks
