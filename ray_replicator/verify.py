"""Compare source and target: per-range row counts, or order-independent checksums of every value.

Key ranges are compared with the same predicate on both sides. Physical ranges (ctid pages) mean nothing on the
target, and key ranges cut in one engine's order select other rows in another engine whose order differs (GUIDs,
collations), so such tables are compared whole.

Checksums are computed in Ray workers from Arrow batches read from both sides. Every column is first brought to a
canonical Arrow form that does not depend on the engine (ints as int64, decimals as canonical strings, timestamps
and times as 100 ns ticks, floats by bit pattern with one NaN and no -0, uuids as hex, text as UTF-8), so the same
value on SQL Server and PostgreSQL hashes the same while a difference in SQL Server's 100 ns digit still shows.
datetimeoffset text is compared as its instant against an engine that keeps instants (PostgreSQL timestamptz) and
as instant and offset when both sides are datetimeoffset. DuckDB hashes each row and sums/xors the hashes — no
per-row Python.

On a mismatch the range is bisected: it is read as sub-ranges cut by the database in key order, each digested on
both sides, and only sub-ranges whose digests differ are cut again, until one is small enough (LEAF_ROWS) to join
its (key, row hash) pairs from both sides and name the keys. A large range is digested as sub-ranges from the
start, so locating a few differing rows reads a few small sub-ranges again, not the whole range.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from ray_replicator.catalog import Column, Table
from ray_replicator.copy import SYSTEM_RETRIES, _cached_source, _drop_cached, count_range_task, run_bounded
from ray_replicator.engines import capabilities, capabilities_of, engine_of
from ray_replicator.engines.base import EngineError, KeyRange
from ray_replicator.retry import TransientError, is_transient, retrying
from ray_replicator.typemap import datetimeoffset_parts

MAX_REPORTED_KEYS = 10
LEAF_ROWS = 4096
"""A (sub-)range with at most this many rows on either side is diffed key by key instead of cut again."""
FANOUT = 64
"""At most this many sub-ranges per cut."""
_PORTABLE_ORDER_KINDS = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "decimal",
    "money",
    "float32",
    "float64",
    "date",
    "time",
    "timestamp",
    "timestamptz",
}
"""Key kinds that every engine orders alike; text (collations), GUIDs (SQL Server's byte order) and binary do not."""
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
    rows_read: int = 0
    """Rows read from both sides to digest the table."""
    locate_rows_read: int = 0
    """Rows read again from both sides to bisect mismatched ranges down to their keys."""

    @property
    def ok(self) -> bool:
        return not self.mismatched_ranges and self.source_rows == self.target_rows


def portable_order(table: Table, source_url: str, target_url: str) -> bool:
    """Whether a key range cut in the source's order selects the same rows on the target: always within one
    engine, across engines only for keys whose order no collation or byte layout changes."""
    if engine_of(source_url) == engine_of(target_url):
        return True
    return all(table.column(k).logical.kind in _PORTABLE_ORDER_KINDS for k in table.split_key)


def comparable_ranges(table: Table, ranges: list[KeyRange], portable: bool = True) -> list[KeyRange]:
    if ranges and (
        (portable and all(r.kind in ("key", "null") for r in ranges)) or (len(ranges) == 1 and ranges[0].kind == "full")
    ):
        return ranges
    return [
        KeyRange(
            schema=table.schema,
            table=table.name,
            index=0,
            kind="full",
            estimated_rows=sum(r.estimated_rows for r in ranges),
            estimated_bytes=sum(r.estimated_bytes for r in ranges),
        )
    ]


def target_read_url(source_url: str, target_url: str) -> str:
    """The URL verify reads a SQL Server target with: the source's value policies (hundred_ns, nul, sql_variant),
    so values the copy kept (100 ns digits, NUL) are read back as kept, not refused or rounded."""
    engine = engine_of(source_url)
    policies = capabilities(engine).read_policies
    if not policies or engine_of(target_url) != engine:
        return target_url
    wanted = {k: v for k, v in parse_qsl(urlsplit(source_url).query) if k.lower() in policies}
    if not wanted:
        return target_url
    parts = urlsplit(target_url)
    query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in policies}
    query.update(wanted)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _on_target(rng: KeyRange, target_table: Table) -> KeyRange:
    return replace(rng, schema=target_table.schema, table=target_table.name)


COUNTS_IN_FLIGHT = 64
"""Count tasks take no CPU slot (the database counts), but each holds a connection on a server."""


@dataclass(frozen=True)
class _Count:
    """One side's count of one range; `pair` indexes the range in verify_counts."""

    pair: int
    side: str
    table: Table
    rng: KeyRange

    def name(self) -> str:
        return f"counting {self.rng.range_id} on the {self.side} (verify counts)"


def verify_counts(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
) -> list[TableCheck]:
    """Count every range on both sides as Ray tasks and report mismatches per table; a count that lost its
    connection is tried again (run_bounded), one that fails otherwise ends verify with its cause in one line."""
    ranges_counted: list[tuple[TableCheck, KeyRange]] = []
    jobs: list[_Count] = []
    checks: list[TableCheck] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        for rng in comparable_ranges(source_table, ranges, portable_order(source_table, source_url, target_url)):
            jobs.append(_Count(len(ranges_counted), "source", source_table, rng))
            jobs.append(_Count(len(ranges_counted), "target", target_table, _on_target(rng, target_table)))
            ranges_counted.append((check, rng))
    rows: list[dict[str, int]] = [{} for _ in ranges_counted]

    def submit(job: _Count) -> ray.ObjectRef:
        url = source_url if job.side == "source" else target_url
        return count_range_task.remote(url, job.side == "source", job.table, job.rng)

    def done(job: _Count, counted: int) -> None:
        rows[job.pair][job.side] = counted

    run_bounded(jobs, submit, COUNTS_IN_FLIGHT, done, name=_Count.name)
    for (check, rng), both in zip(ranges_counted, rows, strict=True):
        src, dst = both["source"], both["target"]
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


def canonical_array(arr: pa.Array, column: Column | None = None, mode: str = "") -> pa.Array:
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
# Checksums on a worker
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    rows: int
    total: int
    xor: int


_DUCK: list[Any] = []
_SAME_HASH: dict[tuple[str, str], bool] = {}


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


@dataclass(frozen=True)
class RangeDigest:
    range_id: str
    source: Digest
    target: Digest
    differing_rows: int = 0
    keys: tuple[str, ...] = ()
    rows_read: int = 0
    """Rows read from both sides to digest the range."""
    locate_rows_read: int = 0
    """Rows read again from both sides to bisect a mismatch down to its keys."""

    @property
    def ok(self) -> bool:
        return self.source == self.target


def _combine(digests: Iterable[Digest]) -> Digest:
    rows = total = xor = 0
    for d in digests:
        rows += d.rows
        total = (total + d.total) & _MASK64
        xor ^= d.xor
    return Digest(rows, total, xor)


def _parts_for(rows: int) -> int:
    return min(FANOUT, math.ceil(max(rows, 0) / LEAF_ROWS))


def _servers_can_hash(source_url: str, target_url: str, columns: list[Column], target_columns: list[Column]) -> bool:
    """Both sides of one digest family (PostgreSQL's) with the same column types: each server's text of a value is
    then the same canonical form (whether both servers also hash alike is the probe's job)."""
    family = capabilities(engine_of(source_url)).digest_family
    if family is None or capabilities(engine_of(target_url)).digest_family != family:
        return False
    return [c.native_type for c in columns] == [c.native_type for c in target_columns]


@dataclass
class _Pair:
    """One table on both sides, as a worker reads it: digests, key diffs and cuts of its key ranges."""

    source_url: str
    target_url: str
    source_table: Table
    target_table: Table
    batch_rows: int
    batch_bytes: int
    rows_read: int = 0

    def __post_init__(self) -> None:
        self.columns = self.source_table.copy_columns
        self.modes = column_modes(self.columns, self.target_table.copy_columns)
        names = [c.name for c in self.columns]
        self.key = [k for k in self.source_table.split_key if k in names] or [
            k for k in (self.source_table.primary_key.columns if self.source_table.primary_key else ()) if k in names
        ]
        self.positions = [names.index(k) for k in self.key]
        self.cuttable = bool(self.source_table.split_key) and portable_order(
            self.source_table, self.source_url, self.target_url
        )

    def in_database(self) -> bool:
        """Both sides are PostgreSQL with the same column types and the same row hash: then each side hashes its
        rows' text itself and only three numbers per range travel."""
        if not _servers_can_hash(self.source_url, self.target_url, self.columns, self.target_table.copy_columns):
            return False
        key = (self.source_url, self.target_url)
        if key not in _SAME_HASH:
            _SAME_HASH[key] = (
                _cached_source(self.source_url).hash_probe() == _cached_source(self.target_url).hash_probe()
            )
        return _SAME_HASH[key]

    def database_digests(self, rng: KeyRange) -> tuple[Digest, Digest]:
        """Both sides' in-database digests of a range, computed at the same time."""
        names = [c.name for c in self.columns]
        target_rng = _on_target(rng, self.target_table)
        with ThreadPoolExecutor(max_workers=1) as other:
            target = _cached_source(self.target_url)
            source = _cached_source(self.source_url)
            dst = other.submit(target.range_digest, self.target_table, target_rng, names)
            src = source.range_digest(self.source_table, rng, names)
            return Digest(*src), Digest(*dst.result())

    def _read(self, side: str, rng: KeyRange) -> Iterable[pa.RecordBatch]:
        url, table = (self.source_url, self.source_table) if side == "source" else (self.target_url, self.target_table)
        rng = _on_target(rng, table)
        for batch in _cached_source(url).read_range(table, rng, self.batch_rows, self.batch_bytes):
            self.rows_read += batch.num_rows
            yield batch

    def digest(self, rng: KeyRange) -> tuple[Digest, Digest]:
        return (
            digest_batches(self._read("source", rng), self.columns, self.modes),
            digest_batches(self._read("target", rng), self.columns, self.modes),
        )

    def cut(self, rng: KeyRange, parts: int, side: str) -> list[KeyRange]:
        """Sub-ranges covering `rng`, cut in key order by `side`'s database; [rng] when it cannot be cut."""
        if parts < 2 or not self.cuttable or rng.kind not in ("key", "full"):
            return [rng]
        url, table = (self.source_url, self.source_table) if side == "source" else (self.target_url, self.target_table)
        split = _cached_source(url).range_boundaries
        key = tuple(self.source_table.split_key)
        keyed = rng if rng.kind == "key" else replace(rng, kind="key", columns=key, lower=None, upper=None)
        bounds = [tuple(b) for b in split(table, _on_target(keyed, table), parts)]
        if not bounds:
            return [rng]
        edges: list[tuple[Any, ...] | None] = [keyed.lower, *bounds, keyed.upper]
        out = [replace(keyed, lower=lo, upper=hi) for lo, hi in zip(edges, edges[1:], strict=False)]
        if rng.kind == "full" and any(self.source_table.column(k).nullable for k in key):
            out.append(replace(rng, kind="null", columns=key, lower=None, upper=None))
        return out

    def diff_keys(self, rng: KeyRange, limit: int) -> tuple[int, list[str]]:
        src = keyed_hashes(self._read("source", rng), self.columns, self.positions, self.modes)
        dst = keyed_hashes(self._read("target", rng), self.columns, self.positions, self.modes)
        count, found = differing_keys(src, dst, len(self.positions), limit)
        return count, [", ".join(f"{k}={v!r}" for k, v in zip(self.key, row, strict=True)) for row in found]

    def locate(self, rng: KeyRange, src: Digest, dst: Digest, limit: int) -> tuple[int, list[str]]:
        """Bisect a range whose digests differ: cut it, digest the pieces, go on only into pieces that differ;
        a piece of at most LEAF_ROWS rows is diffed key by key."""
        rows = max(src.rows, dst.rows)
        pieces = [rng] if rows <= LEAF_ROWS else self.cut(rng, max(2, _parts_for(rows)), _larger(src, dst))
        if len(pieces) < 2:
            return self.diff_keys(rng, limit)
        count = 0
        keys: list[str] = []
        for piece in pieces:
            s, d = self.digest(piece)
            if s != d:
                n, found = self.locate(piece, s, d, max(0, limit - len(keys)))
                count += n
                keys.extend(found)
        return count, keys


def _larger(src: Digest, dst: Digest) -> str:
    """The side to cut by: the one with more rows, so rows only the target holds are cut small too."""
    return "source" if src.rows >= dst.rows else "target"


def checksum_range_local(
    source_url: str,
    target_url: str,
    source_table: Table,
    target_table: Table,
    rng: KeyRange,
    batch_rows: int = 65_536,
    batch_bytes: int = 16 << 20,
) -> RangeDigest:
    """Digest one range on both sides; when they differ, bisect it to the keys whose rows differ."""
    try:
        return _checksum_range(source_url, target_url, source_table, target_table, rng, batch_rows, batch_bytes)
    except Exception as exc:
        if is_transient(exc, capabilities_of(source_url, target_url)):
            _drop_cached(source_url)  # a dead connection is not reused by the next try on this worker
            _drop_cached(target_url)
            raise TransientError(str(exc)) from None
        if isinstance(exc, EngineError):
            raise
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
    pair = _Pair(source_url, target_url, source_table, target_table, batch_rows, batch_bytes)
    if pair.in_database():
        src, dst = pair.database_digests(rng)
        if src == dst:
            return RangeDigest(rng.range_id, src, dst)
        # A difference: digest and bisect in the worker, which names the differing keys.
    pieces = pair.cut(rng, _parts_for(rng.estimated_rows), "source") if rng.estimated_rows > LEAF_ROWS else [rng]
    digests = [(piece, *pair.digest(piece)) for piece in pieces]
    src = _combine(d[1] for d in digests)
    dst = _combine(d[2] for d in digests)
    read = pair.rows_read
    if src == dst:
        return RangeDigest(rng.range_id, src, dst, rows_read=read)
    count = 0
    keys: list[str] = []
    for piece, s, d in digests:
        if s != d:
            n, found = pair.locate(piece, s, d, max(0, MAX_REPORTED_KEYS - len(keys)))
            count += n
            keys.extend(found)
    return RangeDigest(rng.range_id, src, dst, count, tuple(keys), read, pair.rows_read - read)


@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
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


def database_check(
    source_url: str, target_url: str, source_table: Table, target_table: Table, ranges: list[KeyRange]
) -> TableCheck | None:
    """Every range of one table digested by both PostgreSQL servers, on connections of its own (it runs on a
    driver thread while other tables copy). None when the servers cannot hash this table alike or a range
    differs: the worker path then verifies the table and bisects to the keys."""
    if not _servers_can_hash(source_url, target_url, [], []):
        return None
    target = target_tables(target_url, [target_table])[(target_table.schema, target_table.name)]
    columns = source_table.copy_columns
    if not _servers_can_hash(source_url, target_url, columns, target.copy_columns):
        return None
    from ray_replicator.engines import open_source

    source_side = open_source(source_url)
    target_side = open_source(target_url)
    try:
        if source_side.hash_probe() != target_side.hash_probe():
            return None
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        names = [c.name for c in columns]
        for rng in comparable_ranges(source_table, ranges):
            src = source_side.range_digest(source_table, rng, names)
            dst = target_side.range_digest(target, _on_target(rng, target), names)
            if src != dst:
                return None
            check.source_rows += src[0]
            check.target_rows += dst[0]
        return check
    finally:
        source_side.close()
        target_side.close()


def verify_checksums(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
    in_flight: int,
    batch_rows: int = 65_536,
    batch_bytes: int = 16 << 20,
) -> list[TableCheck]:
    """Checksum every range on both sides as Ray tasks (at most in_flight at once); report per table."""
    target_url = target_read_url(source_url, target_url)
    mapped = retrying(
        "reading the target's tables (verify checksums)",
        lambda: target_tables(target_url, [t for _, t, _ in pairs]),
        capabilities_of(target_url),
    )
    checks: list[TableCheck] = []
    jobs: list[tuple[TableCheck, Table, Table, KeyRange]] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        tgt = mapped[(target_table.schema, target_table.name)]
        for rng in comparable_ranges(source_table, ranges, portable_order(source_table, source_url, target_url)):
            jobs.append((check, source_table, tgt, rng))

    def submit(job: tuple[TableCheck, Table, Table, KeyRange]) -> ray.ObjectRef:
        _, src_table, tgt_table, rng = job
        return checksum_range_task.remote(source_url, target_url, src_table, tgt_table, rng, batch_rows, batch_bytes)

    def done(job: tuple[TableCheck, Table, Table, KeyRange], result: RangeDigest) -> None:
        check = job[0]
        check.source_rows += result.source.rows
        check.target_rows += result.target.rows
        check.rows_read += result.rows_read
        check.locate_rows_read += result.locate_rows_read
        if not result.ok:
            where = f"; keys {', '.join(result.keys)}" if result.keys else ""
            more = result.differing_rows - len(result.keys)
            if result.keys and more > 0:
                where += f" and {more} more"
            check.mismatched_ranges.append(
                f"{result.range_id}: {result.differing_rows} row(s) differ (source {result.source.rows} rows, "
                f"target {result.target.rows}){where}"
            )
            check.differing_keys.extend(result.keys)

    run_bounded(
        jobs, submit, max(1, in_flight), done, name=lambda job: f"checksumming {job[3].range_id} (verify checksums)"
    )
    return checks
