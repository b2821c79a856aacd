"""Column values as closed-form functions of the row index: the datetime grid, sparse ids, hashes, Arrow arrays.

Other tables must agree on a post's id or date without generating the post, so these are pure functions of
(seed, row index); the Arrow helpers build columns from numpy without per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]
"""Array aliases: row indexes and ids (I64), positions and probabilities (F64), validity masks (B), UTF-8 bytes (U8)."""

TICKS_PER_SECOND = 300
"""SQL Server's datetime counts 1/300 s; every generated time is on that grid."""
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
_MS_PER_DAY = 86_400_000
_DAY0 = 14_091  # 2008-07-31 in days since 1970-01-01
_DAY_END = 14_974  # 2010-12-31
_SPAN_TICKS = (_DAY_END + 1 - _DAY0) * TICKS_PER_DAY - 1


def _ticks_to_ms(ticks: I64) -> I64:
    """SQL Server datetime ticks (1/300 s) to the milliseconds it displays (.000, .003, .007)."""
    days, rem = np.divmod(ticks, TICKS_PER_DAY)
    ms: I64 = days * _MS_PER_DAY + (rem * 10 + 1) // 3
    return ms


def ticks_at(pos: F64) -> I64:
    """Ticks at a position 0..1 through the 2008-07-31 .. 2010-12-31 history."""
    p = np.clip(pos, 0.0, 1.0)
    return _DAY0 * TICKS_PER_DAY + (p * _SPAN_TICKS).astype(np.int64)


def timestamp_array(ticks: I64, valid: B | None = None) -> pa.Array:
    """A datetime column (NULL where not ``valid``), clipped to the end of the history."""
    ticks = np.minimum(ticks, (_DAY_END + 1) * TICKS_PER_DAY - 1)
    return pa.array(_ticks_to_ms(ticks), type=pa.timestamp("ms"), mask=None if valid is None else ~valid)


@dataclass(frozen=True)
class IdLayout:
    """Sparse, strictly increasing ids as a closed-form function of the row index (no state, no scans).

    id(i) = i + 1 + (a*i + a*tri(i)) // D + (i // jump_every) * jump, where tri is a triangle wave: the gap
    density swings between 0 and 2a/D, and every ``jump_every`` rows a block of ids is missing.
    """

    a: int
    d: int = 1000
    period: int = 5000
    jump_every: int = 50_000
    jump: int = 1000

    def ids(self, idx: I64) -> I64:
        phase = idx % (2 * self.period)
        tri = np.minimum(phase, 2 * self.period - phase)
        gaps = (self.a * idx + self.a * tri) // self.d
        ids: I64 = idx + 1 + gaps + (idx // self.jump_every) * self.jump
        return ids

    def missing(self, idx: I64, n: int) -> I64:
        """Ids that no row has (a gap after row idx, or past the end): references to deleted rows."""
        nxt = self.ids(idx + 1)
        cand = self.ids(idx) + 1
        return np.where((cand < nxt) & (idx + 1 < n), cand, self.ids(np.full_like(idx, n)) + idx % 97)


ID_LAYOUTS: dict[str, IdLayout] = {
    "Posts": IdLayout(a=190),
    "Users": IdLayout(a=90, jump_every=20_000, jump=3000),
    "Votes": IdLayout(a=40, jump_every=400_000, jump=20_000),
    "Comments": IdLayout(a=120),
    "Badges": IdLayout(a=15),
    "PostLinks": IdLayout(a=700),
    "PostHistory": IdLayout(a=60),
    "Tags": IdLayout(a=80_000, period=40, jump_every=1000, jump=200),
}
"""Each table's id gaps, sized after the real database's."""


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a stateless per-row hash, for properties other tables must agree on."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash01(seed: int, salt: int, idx: I64) -> F64:
    """A uniform 0..1 per row, the same whichever chunk or table asks (``salt`` tells properties apart)."""
    key = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64((seed * 1_000_003 + salt) % 2**64)
    return (_mix64(key) >> np.uint64(11)).astype(np.float64) / float(2**53)


def take_strings(values: Sequence[str], idx: I64) -> pa.Array:
    """A string column of ``values[idx]``, built by one Arrow take."""
    return pa.array(values, type=pa.string()).take(pa.array(idx))


def null_unless(arr: pa.Array, valid: B) -> pa.Array:
    """The string column with NULL wherever ``valid`` is False."""
    return pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))


def join_strings(*parts: pa.Array) -> pa.Array:
    """Concatenate string columns element-wise; null parts are skipped (a way to make optional pieces).

    An all-'' first part is added because pyarrow drops rows whose parts are all null under "skip".
    """
    lead = take_strings([""], np.zeros(len(parts[0]), dtype=np.int64))
    return pc.binary_join_element_wise(lead, *parts, "", null_handling="skip")


def int32_array(values: npt.NDArray[Any], valid: B | None = None) -> pa.Array:
    """An int column (NULL where not ``valid``); SQL Server's int is 32 bits."""
    return pa.array(values.astype(np.int32), type=pa.int32(), mask=None if valid is None else ~valid)
