"""Text columns: zero-copy windows of a prebuilt UTF-8 corpus, and seed-independent pools of short values.

A text value is a window of the corpus, so the Arrow data buffer is a slice of it and only the offsets are
computed: that is what makes multi-hundred-MB Body columns cheap. Titles, tags and names only need to be
plausible, so they are taken from pools built once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.synth.values import I64, U8, B, join_strings, null_unless, take_strings
from ray_replicator.synth.vocabulary import (
    FIRST_NAMES,
    HTML_BREAKS,
    LAST_NAMES,
    PLAIN_BREAKS,
    SPECIALS,
    TAG_NAMES,
    WORDS,
)


def _corpus_text(rng: np.random.Generator, target_bytes: int, html: bool) -> str:
    """Words with sprinkled specials (CR LF, NBSP, ZWSP, emoji, accents) and paragraph or sentence breaks."""
    n = target_bytes // 6
    tokens = np.array(WORDS, dtype=object)[rng.integers(0, len(WORDS), n)]
    special = rng.random(n) < 0.03
    tokens[special] = np.array(SPECIALS, dtype=object)[rng.integers(0, len(SPECIALS), int(special.sum()))]
    breaks = HTML_BREAKS if html else PLAIN_BREAKS
    brk = rng.random(n) < (1 / 60 if html else 1 / 12)
    tokens[brk] = np.array(breaks, dtype=object)[rng.integers(0, len(breaks), int(brk.sum()))]
    text = " ".join(tokens.tolist())
    return f"<p>{text}</p>\r\n" if html else text + ". "


@functools.cache
def _corpus(html: bool) -> U8:
    """A fixed corpus (independent of the seed) whose windows become text values.

    A 2 MB text is tiled to 32 MB: building it is then cheap, and a whole chunk's Body column (about
    25 MB) is usually a zero-copy window; the 2 MB period is beyond the window of fast compressors.
    """
    rng = np.random.default_rng(20100101 if html else 20081231)
    base = np.frombuffer(_corpus_text(rng, (2 if html else 1) * 1024 * 1024, html).encode("utf-8"), dtype=np.uint8)
    return np.tile(base, (32 if html else 4) * 1024 * 1024 // len(base) + 1)


def _snap(buf: U8, offs: I64) -> I64:
    """Move byte offsets forward onto UTF-8 character starts (a character is at most 4 bytes)."""
    for _ in range(3):
        offs = offs + ((buf[offs] & 0xC0) == 0x80)
    return offs


def text_windows(rng: np.random.Generator, lengths: I64, valid: B | None, html: bool) -> pa.Array:
    """A string array whose values are consecutive corpus windows of about ``lengths`` bytes.

    Lengths may grow by up to 3 bytes when snapped to character boundaries: callers with a length limit
    pass limit - 3. UTF-8 bytes >= UTF-16 code units, so a byte limit is also an nvarchar(n) limit.
    """
    corpus = _corpus(html)
    n = len(lengths)
    lengths = lengths.astype(np.int64)
    if valid is not None:
        lengths = np.where(valid, lengths, 0)
    total = int(lengths.sum())
    need = total + 4
    start = int(rng.integers(0, max(1, len(corpus) - need)))
    if start + need <= len(corpus):
        buf = corpus[start : start + need]
    else:
        pieces = [corpus[start:]]
        have = len(corpus) - start
        while have < need:
            take = min(len(corpus), need - have)
            pieces.append(corpus[:take])
            have += take
        buf = np.concatenate(pieces)
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offs[1:])
    offs = _snap(buf, offs)
    offs -= offs[0]
    buf = buf[int(_snap(buf, np.zeros(1, dtype=np.int64))[0]) :]
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = 0 if valid is None else int(n - valid.sum())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offs.astype(np.int32)), pa.py_buffer(buf), bitmap, nulls)


def display_names(rng: np.random.Generator, n: int) -> pa.Array:
    """Names with the collation traps: case/accent twins, NBSP/ZWSP separators, trailing spaces, emoji."""
    first = take_strings(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n))
    last = take_strings(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n))
    sep = take_strings([" ", " ", " ", " ", "\u00a0", "\u200b", ""], rng.integers(0, 7, n))
    r = rng.random(n)
    has_last = r < 0.6
    numbered = r > 0.85
    number = pc.cast(pa.array(rng.integers(1, 99_999, n)), pa.string())
    suffix = take_strings(["", "", "", "", "", "", "", "", " ", "  ", " 🚀", "\u200b"], rng.integers(0, 12, n))
    base = join_strings(first, null_unless(sep, has_last), null_unless(last, has_last))
    user_n = join_strings(take_strings(["user"], np.zeros(n, np.int64)), number)
    return join_strings(pc.if_else(pa.array(numbered), user_n, base), suffix)


def _titles(rng: np.random.Generator, n: int) -> pa.Array:
    nwords = rng.integers(3, 15, n)
    words = [null_unless(take_strings(WORDS, rng.integers(0, len(WORDS), n)), nwords > k) for k in range(15)]
    title = pc.binary_join_element_wise(*words, " ", null_handling="skip")
    return join_strings(title, null_unless(take_strings(["?"], np.zeros(n, np.int64)), rng.random(n) < 0.4))


def _tags(rng: np.random.Generator, n: int) -> pa.Array:
    ntags = rng.integers(1, 6, n)
    tag_vocab = [f"<{t}>" for t in TAG_NAMES]
    popular = (rng.random((5, n)) ** 2 * len(TAG_NAMES)).astype(np.int64)
    return join_strings(*[null_unless(take_strings(tag_vocab, popular[k]), ntags > k) for k in range(5)])


_POOLS: dict[str, tuple[int, Callable[[np.random.Generator, int], pa.Array]]] = {
    "titles": (16384, _titles),
    "tags": (8192, _tags),
    "names": (8192, display_names),
}


@functools.cache
def _pool(kind: str) -> pa.Array:
    """Seed-independent pools for columns that only need plausible values: one take per chunk is cheap."""
    size, make = _POOLS[kind]
    return make(np.random.default_rng(len(kind) * 7919), size)


def from_pool(kind: str, rng: np.random.Generator, n: int, valid: B) -> pa.Array:
    """``n`` values drawn from the ``kind`` pool (titles, tags, names), NULL where not ``valid``."""
    pool = _pool(kind)
    return pool.take(pa.array(rng.integers(0, len(pool), n), mask=~valid))
