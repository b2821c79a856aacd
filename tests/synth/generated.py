"""Generated tables as the synth tests read them, at the scales they share."""

from __future__ import annotations

import pyarrow as pa

from ray_replicator.synth import stackoverflow as so

SMALL = 0.001
TWO_CHUNKS = 0.005  # Posts has 18,646 rows: more than one chunk, so chunk seams are exercised


def generated_table(name: str, scale: float = SMALL, seed: int = 42, batch_rows: int = 65536) -> pa.Table:
    """The whole table at (scale, seed), read through ``generate_batches`` at ``batch_rows``."""
    return pa.Table.from_batches(list(so.generate_batches(name, scale, seed, batch_rows)), so.arrow_schema(name))


def column(t: pa.Table, name: str) -> list[object]:
    """A column as Python values."""
    return list(t.column(name).to_pylist())
