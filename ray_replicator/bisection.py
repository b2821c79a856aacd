"""Check one range on a worker: digest it on both sides and, when the digests differ, bisect it to the keys.

A mismatched range is read as sub-ranges cut by the database in key order, each digested on both sides, and only
sub-ranges whose digests differ are cut again, until one is small enough (LEAF_ROWS) to join its (key, row hash)
pairs from both sides and name the keys. A large range is digested as sub-ranges from the start, so locating a few
differing rows reads a few small sub-ranges again, not the whole range. Two PostgreSQL servers that hash alike
digest a range themselves, and only three numbers per side travel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from ray_replicator.catalog import Column, Table
from ray_replicator.digest import (
    MAX_REPORTED_KEYS,
    Digest,
    column_modes,
    combine,
    differing_keys,
    digest_batches,
    keyed_hashes,
)
from ray_replicator.endpoints import cached_source, drop_cached
from ray_replicator.engines import capabilities, capabilities_of, engine_of
from ray_replicator.engines.base import EngineError, KeyRange
from ray_replicator.retry import TransientError, is_transient

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


def portable_order(table: Table, source_url: str, target_url: str) -> bool:
    """Whether a key range cut in the source's order selects the same rows on the target: always within one
    engine, across engines only for keys whose order no collation or byte layout changes."""
    if engine_of(source_url) == engine_of(target_url):
        return True
    return all(table.column(k).logical.kind in _PORTABLE_ORDER_KINDS for k in table.split_key)


def on_target(rng: KeyRange, target_table: Table) -> KeyRange:
    return replace(rng, schema=target_table.schema, table=target_table.name)


_SAME_HASH: dict[tuple[str, str], bool] = {}


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


def _parts_for(rows: int) -> int:
    return min(FANOUT, math.ceil(max(rows, 0) / LEAF_ROWS))


def servers_can_hash(source_url: str, target_url: str, columns: list[Column], target_columns: list[Column]) -> bool:
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
        if not servers_can_hash(self.source_url, self.target_url, self.columns, self.target_table.copy_columns):
            return False
        key = (self.source_url, self.target_url)
        if key not in _SAME_HASH:
            _SAME_HASH[key] = cached_source(self.source_url).hash_probe() == cached_source(self.target_url).hash_probe()
        return _SAME_HASH[key]

    def database_digests(self, rng: KeyRange) -> tuple[Digest, Digest]:
        """Both sides' in-database digests of a range, computed at the same time."""
        names = [c.name for c in self.columns]
        target_rng = on_target(rng, self.target_table)
        with ThreadPoolExecutor(max_workers=1) as other:
            target = cached_source(self.target_url)
            source = cached_source(self.source_url)
            dst = other.submit(target.range_digest, self.target_table, target_rng, names)
            src = source.range_digest(self.source_table, rng, names)
            return Digest(*src), Digest(*dst.result())

    def _read(self, side: str, rng: KeyRange) -> Iterable[pa.RecordBatch]:
        url, table = (self.source_url, self.source_table) if side == "source" else (self.target_url, self.target_table)
        rng = on_target(rng, table)
        for batch in cached_source(url).read_range(table, rng, self.batch_rows, self.batch_bytes):
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
        split = cached_source(url).range_boundaries
        key = tuple(self.source_table.split_key)
        keyed = rng if rng.kind == "key" else replace(rng, kind="key", columns=key, lower=None, upper=None)
        bounds = [tuple(b) for b in split(table, on_target(keyed, table), parts)]
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
        return _checksum_range(_Pair(source_url, target_url, source_table, target_table, batch_rows, batch_bytes), rng)
    except Exception as exc:
        if is_transient(exc, capabilities_of(source_url, target_url)):
            drop_cached(source_url)  # a dead connection is not reused by the next try on this worker
            drop_cached(target_url)
            raise TransientError(str(exc)) from None
        if isinstance(exc, EngineError):
            raise
        raise EngineError(f"checksumming {rng.range_id}: {type(exc).__name__}: {exc}") from None


def _checksum_range(pair: _Pair, rng: KeyRange) -> RangeDigest:
    if pair.in_database():
        src, dst = pair.database_digests(rng)
        if src == dst:
            return RangeDigest(rng.range_id, src, dst)
        # A difference: digest and bisect in the worker, which names the differing keys.
    pieces = pair.cut(rng, _parts_for(rng.estimated_rows), "source") if rng.estimated_rows > LEAF_ROWS else [rng]
    digests = [(piece, *pair.digest(piece)) for piece in pieces]
    src = combine(d[1] for d in digests)
    dst = combine(d[2] for d in digests)
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
