"""Rows as Arrow record batches: fixed, independently seeded chunks re-cut to the batch size asked for.

Each chunk of ``CHUNK_ROWS`` rows has its own random stream keyed by (seed, table, chunk), so the output
depends only on (scale, seed), never on the batch size, and a table splits into parts loaded side by side.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from ray_replicator.synth.schema import EXTRA_TABLES, TABLES, arrow_schema, row_counts, table
from ray_replicator.synth.tables import GENERATORS, ScaleContext

CHUNK_ROWS = 16384
"""Rows per independently seeded chunk; part of the output's definition (changing it changes the data)."""

_MAX_BATCH_BYTES = 512 * 1024 * 1024
"""A batch is cut early past this many bytes so int32 string offsets can never overflow."""

_TABLE_CODES = {t.name: i for i, t in enumerate(TABLES + EXTRA_TABLES)}
"""Each table's key in its chunks' random streams; part of the output's definition, like ``CHUNK_ROWS``."""


@functools.lru_cache(maxsize=8)
def _context(scale: float, seed: int) -> ScaleContext:
    """One context per (scale, seed), shared by every chunk of every table."""
    return ScaleContext(scale, seed)


def _chunk(table_name: str, scale: float, seed: int, chunk: int) -> pa.RecordBatch:
    """Chunk ``chunk`` of the table, from its own random stream: the same rows whoever asks for it."""
    ctx = _context(scale, seed)
    n = ctx.counts[table_name]
    idx = np.arange(chunk * CHUNK_ROWS, min(n, (chunk + 1) * CHUNK_ROWS), dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed % 2**64, _TABLE_CODES[table_name], chunk]))
    cols = GENERATORS[table_name](ctx, rng, idx)
    schema = arrow_schema(table_name)
    return pa.RecordBatch.from_arrays([cols[f.name] for f in schema], schema=schema)


def generate_batches(table_name: str, scale: float, seed: int, batch_rows: int = 65536) -> Iterator[pa.RecordBatch]:
    """Yield the table's rows in order, ``batch_rows`` at a time (fewer past 512 MB), one chunk in memory."""
    return _batches(table_name, scale, seed, batch_rows, 0, 1)


def chunk_count(table_name: str, scale: float) -> int:
    """How many independently generated chunks the table has at ``scale`` (the unit of parallel work)."""
    n = row_counts(scale, include_extra=True)[table(table_name).name]
    return (n + CHUNK_ROWS - 1) // CHUNK_ROWS


def _batches(
    table_name: str, scale: float, seed: int, batch_rows: int, part: int, parts: int
) -> Iterator[pa.RecordBatch]:
    """Batches of part ``part`` of ``parts`` contiguous chunk ranges; the parts together are the table."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be >= 1")
    chunks = chunk_count(table_name, scale)
    pending: list[pa.RecordBatch] = []
    rows = 0
    size = 0
    for chunk in range(chunks * part // parts, chunks * (part + 1) // parts):
        rb = _chunk(table_name, scale, seed, chunk)
        start = 0
        while start < rb.num_rows:
            piece = rb.slice(start, batch_rows - rows)
            start += piece.num_rows
            pending.append(piece)
            rows += piece.num_rows
            size += piece.nbytes
            if rows == batch_rows or size >= _MAX_BATCH_BYTES:
                yield _combine(pending)
                pending, rows, size = [], 0, 0
    if pending:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """Slices of consecutive chunks as one batch (a single slice is passed through, not copied)."""
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def reader(
    table_name: str, scale: float, seed: int, batch_rows: int = 65536, part: int = 0, parts: int = 1
) -> pa.RecordBatchReader:
    """The table (or one of ``parts`` parts of it) as a RecordBatchReader, the form bulk loaders stream."""
    return pa.RecordBatchReader.from_batches(
        arrow_schema(table_name), _batches(table_name, scale, seed, batch_rows, part, parts)
    )
