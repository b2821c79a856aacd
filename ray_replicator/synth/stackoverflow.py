"""A synthetic StackOverflow2010: the schema, row-count proportions and data quirks of the real database.

The real database is 10 GB and cannot ship with tests or benchmarks, yet the quirks it carries (NULL versus
'', the Id -1 Community user, sparse ids, dangling references, CR LF, emoji, 100 KB bodies, the 1/300 s
datetime grid) are exactly what breaks replication tools. This module reproduces them at any scale.

Determinism: every table is generated in fixed chunks of ``CHUNK_ROWS`` rows, each from its own random
stream keyed by (seed, table, chunk), and ids, dates and references are closed-form functions of the row
index. The output therefore depends only on (scale, seed), never on the batch size, and any chunk can be
produced without the others (bounded memory, and later parallel generation).

Text columns are windows of a prebuilt UTF-8 corpus: the Arrow data buffer is a zero-copy slice of the
corpus and only the offsets are computed, which is what makes multi-hundred-MB Body columns cheap.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]

CHUNK_ROWS = 16384
"""Rows per independently seeded chunk; part of the output's definition (changing it changes the data)."""

_MAX_BATCH_BYTES = 512 * 1024 * 1024
"""A batch is cut early past this many bytes so int32 string offsets can never overflow."""


# --------------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class SynthColumn:
    """A column as SQL Server declares it; engines map ``sql_type`` to their own types."""

    name: str
    sql_type: str
    nullable: bool = False
    identity: bool = False


@dataclass(frozen=True)
class SynthTable:
    """A table with its clustered primary key, engine-neutral."""

    name: str
    columns: tuple[SynthColumn, ...]
    pk_name: str
    pk_columns: tuple[str, ...] = ("Id",)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, sql_type: str, null: bool = False) -> SynthColumn:
    return SynthColumn(name, sql_type, nullable=null)


_ID = SynthColumn("Id", "int", nullable=False, identity=True)


def _t(name: str, *cols: SynthColumn, pk: str | None = None) -> SynthTable:
    return SynthTable(name, (_ID, *cols), pk or f"PK_{name}__Id")


TABLES: list[SynthTable] = [
    _t("Badges", _c("Name", "nvarchar(40)"), _c("UserId", "int"), _c("Date", "datetime")),
    _t(
        "Comments",
        _c("CreationDate", "datetime"),
        _c("PostId", "int"),
        _c("Score", "int", True),
        _c("Text", "nvarchar(700)"),
        _c("UserId", "int", True),
    ),
    _t("LinkTypes", _c("Type", "varchar(50)")),
    _t(
        "PostLinks",
        _c("CreationDate", "datetime"),
        _c("PostId", "int"),
        _c("RelatedPostId", "int"),
        _c("LinkTypeId", "int"),
    ),
    _t(
        "Posts",
        _c("AcceptedAnswerId", "int", True),
        _c("AnswerCount", "int", True),
        _c("Body", "nvarchar(max)"),
        _c("ClosedDate", "datetime", True),
        _c("CommentCount", "int", True),
        _c("CommunityOwnedDate", "datetime", True),
        _c("CreationDate", "datetime"),
        _c("FavoriteCount", "int", True),
        _c("LastActivityDate", "datetime"),
        _c("LastEditDate", "datetime", True),
        _c("LastEditorDisplayName", "nvarchar(40)", True),
        _c("LastEditorUserId", "int", True),
        _c("OwnerUserId", "int", True),
        _c("ParentId", "int", True),
        _c("PostTypeId", "int"),
        _c("Score", "int"),
        _c("Tags", "nvarchar(150)", True),
        _c("Title", "nvarchar(250)", True),
        _c("ViewCount", "int"),
    ),
    _t("PostTypes", _c("Type", "nvarchar(50)")),
    _t(
        "Users",
        _c("AboutMe", "nvarchar(max)", True),
        _c("Age", "int", True),
        _c("CreationDate", "datetime"),
        _c("DisplayName", "nvarchar(40)"),
        _c("DownVotes", "int"),
        _c("EmailHash", "nvarchar(40)", True),
        _c("LastAccessDate", "datetime"),
        _c("Location", "nvarchar(100)", True),
        _c("Reputation", "int"),
        _c("UpVotes", "int"),
        _c("Views", "int"),
        _c("WebsiteUrl", "nvarchar(200)", True),
        _c("AccountId", "int", True),
        pk="PK_Users_Id",
    ),
    _t("VoteTypes", _c("Name", "varchar(50)"), pk="PK_VoteType__Id"),
    _t(
        "Votes",
        _c("PostId", "int"),
        _c("UserId", "int", True),
        _c("BountyAmount", "int", True),
        _c("VoteTypeId", "int"),
        _c("CreationDate", "datetime"),
    ),
]
"""The nine tables of StackOverflow2010, columns in the shipped order."""

EXTRA_TABLES: list[SynthTable] = [
    _t(
        "PostHistory",
        _c("PostHistoryTypeId", "int"),
        _c("PostId", "int"),
        _c("RevisionGUID", "uniqueidentifier"),
        _c("CreationDate", "datetime"),
        _c("UserId", "int", True),
        _c("UserDisplayName", "nvarchar(40)", True),
        _c("Comment", "nvarchar(max)", True),
        _c("Text", "nvarchar(max)", True),
    ),
    _t("PostHistoryTypes", _c("Type", "nvarchar(50)")),
    _t(
        "Tags",
        _c("TagName", "nvarchar(150)"),
        _c("Count", "int"),
        _c("ExcerptPostId", "int", True),
        _c("WikiPostId", "int", True),
    ),
]
"""Tables of the larger StackOverflow copies; generated only when asked for."""

_BY_NAME: dict[str, SynthTable] = {t.name: t for t in TABLES + EXTRA_TABLES}

REAL_ROW_COUNTS: dict[str, int] = {
    "Votes": 10_143_364,
    "Comments": 3_875_183,
    "Posts": 3_729_195,
    "Badges": 1_102_019,
    "Users": 299_398,
    "PostLinks": 161_519,
    "VoteTypes": 15,
    "PostTypes": 8,
    "LinkTypes": 2,
}
"""StackOverflow2010 as shipped (19,310,703 rows); scale 1.0 reproduces these counts."""

_EXTRA_RATIOS = {"PostHistory": 2.0, "Tags": 27_000 / 3_729_195}

_VOTE_TYPES = [
    (1, "AcceptedByOriginator"),
    (2, "UpMod"),
    (3, "DownMod"),
    (4, "Offensive"),
    (5, "Favorite"),
    (6, "Close"),
    (7, "Reopen"),
    (8, "BountyStart"),
    (9, "BountyClose"),
    (10, "Deletion"),
    (11, "Undeletion"),
    (12, "Spam"),
    (13, "InformModerator"),
    (15, "ModeratorReview"),
    (16, "ApproveEditSuggestion"),
]
_POST_TYPES = [
    (1, "Question"),
    (2, "Answer"),
    (3, "Wiki"),
    (4, "TagWikiExcerpt"),
    (5, "TagWiki"),
    (6, "ModeratorNomination"),
    (7, "WikiPlaceholder"),
    (8, "PrivilegeWiki"),
]
_LINK_TYPES = [(1, "Linked"), (3, "Duplicate")]
_POST_HISTORY_TYPES = [
    (1, "Initial Title"),
    (2, "Initial Body"),
    (3, "Initial Tags"),
    (4, "Edit Title"),
    (5, "Edit Body"),
    (6, "Edit Tags"),
    (7, "Rollback Title"),
    (8, "Rollback Body"),
    (9, "Rollback Tags"),
    (10, "Post Closed"),
    (11, "Post Reopened"),
    (12, "Post Deleted"),
    (13, "Post Undeleted"),
    (14, "Post Locked"),
    (15, "Post Unlocked"),
    (16, "Community Owned"),
    (17, "Post Migrated"),
    (18, "Question Merged"),
    (19, "Question Protected"),
    (20, "Question Unprotected"),
    (22, "Question Unmerged"),
    (24, "Suggested Edit Applied"),
    (25, "Post Tweeted"),
    (33, "Post Notice Added"),
    (34, "Post Notice Removed"),
    (35, "Post Migrated Away"),
    (36, "Post Migrated Here"),
    (37, "Post Merge Source"),
    (38, "Post Merge Destination"),
]
_LOOKUPS: dict[str, list[tuple[int, str]]] = {
    "VoteTypes": _VOTE_TYPES,
    "PostTypes": _POST_TYPES,
    "LinkTypes": _LINK_TYPES,
    "PostHistoryTypes": _POST_HISTORY_TYPES,
}


def table(name: str) -> SynthTable:
    """Look a table (core or extra) up by name; a clear KeyError beats a silent empty result."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown StackOverflow table {name!r}; known: {sorted(_BY_NAME)}") from None


def row_counts(scale: float, include_extra: bool = False) -> dict[str, int]:
    """Rows per table at ``scale``: real proportions, at least one row each, lookup tables always in full."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    counts = {name: max(1, round(n * scale)) for name, n in REAL_ROW_COUNTS.items()}
    for name, rows in _LOOKUPS.items():
        if name in counts:
            counts[name] = len(rows)
    if include_extra:
        counts["PostHistory"] = max(1, round(counts["Posts"] * _EXTRA_RATIOS["PostHistory"]))
        counts["PostHistoryTypes"] = len(_POST_HISTORY_TYPES)
        counts["Tags"] = max(1, round(REAL_ROW_COUNTS["Posts"] * scale * _EXTRA_RATIOS["Tags"]))
    return {t.name: counts[t.name] for t in TABLES + EXTRA_TABLES if t.name in counts}


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type a generated column carries for a SQL Server type of this schema."""
    base = sql_type.split("(")[0].lower()
    if base == "int":
        return pa.int32()
    if base in ("nvarchar", "varchar"):
        return pa.string()
    if base == "datetime":
        return pa.timestamp("ms")
    if base == "uniqueidentifier":
        return pa.binary(16)
    raise ValueError(f"no Arrow mapping for {sql_type!r}")


def arrow_schema(table_name: str) -> pa.Schema:
    """The schema of every batch ``generate_batches`` yields for this table."""
    t = table(table_name)
    return pa.schema([pa.field(c.name, arrow_type(c.sql_type), nullable=c.nullable) for c in t.columns])


# ------------------------------------------------------------------------------------------ dates and ids

_TICKS_PER_SECOND = 300
_TICKS_PER_DAY = 86_400 * _TICKS_PER_SECOND
_MS_PER_DAY = 86_400_000
_DAY0 = 14_091  # 2008-07-31 in days since 1970-01-01
_DAY_END = 14_974  # 2010-12-31
_SPAN_TICKS = (_DAY_END + 1 - _DAY0) * _TICKS_PER_DAY - 1


def _ticks_to_ms(ticks: I64) -> I64:
    """SQL Server datetime ticks (1/300 s) to the milliseconds it displays (.000, .003, .007)."""
    days, rem = np.divmod(ticks, _TICKS_PER_DAY)
    ms: I64 = days * _MS_PER_DAY + (rem * 10 + 1) // 3
    return ms


def _ticks_at(pos: F64) -> I64:
    """Ticks at a position 0..1 through the 2008-07-31 .. 2010-12-31 history."""
    p = np.clip(pos, 0.0, 1.0)
    return _DAY0 * _TICKS_PER_DAY + (p * _SPAN_TICKS).astype(np.int64)


def _ts(ticks: I64, valid: B | None = None) -> pa.Array:
    ticks = np.minimum(ticks, (_DAY_END + 1) * _TICKS_PER_DAY - 1)
    return pa.array(_ticks_to_ms(ticks), type=pa.timestamp("ms"), mask=None if valid is None else ~valid)


@dataclass(frozen=True)
class _IdLayout:
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


_LAYOUTS: dict[str, _IdLayout] = {
    "Posts": _IdLayout(a=190),
    "Users": _IdLayout(a=90, jump_every=20_000, jump=3000),
    "Votes": _IdLayout(a=40, jump_every=400_000, jump=20_000),
    "Comments": _IdLayout(a=120),
    "Badges": _IdLayout(a=15),
    "PostLinks": _IdLayout(a=700),
    "PostHistory": _IdLayout(a=60),
    "Tags": _IdLayout(a=80_000, period=40, jump_every=1000, jump=200),
}


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a stateless per-row hash, for properties other tables must agree on."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash01(seed: int, salt: int, idx: I64) -> F64:
    key = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64((seed * 1_000_003 + salt) % 2**64)
    return (_mix64(key) >> np.uint64(11)).astype(np.float64) / float(2**53)


# ------------------------------------------------------------------------------------------------- text

_WORDS = (  # noqa: SIM905 (word lists read better as text)
    "the a an of to in is it that for on with as this be are you can I not have but or if by from how "
    "what when use using code value function class method object string list array file data table query "
    "server database column row index key error exception null return type int long double var public "
    "static void new private get set loop thread memory performance test example question answer problem "
    "solution javascript jquery python java c# .net asp.net sql linq regex xml json html css ajax iphone "
    "android windows linux git svn visual-studio eclipse compile runtime debug release build deploy "
    "version library framework api request response session cookie cache user password form button event "
    "handler callback simply just also however because therefore maybe probably actually really here "
    "there works doesn't can't won't I'm it's you're naïve café résumé façade Zürich São Paulo Ångström "
    "Łódź Ελληνικά Москва 日本語 中文 한국어 עברית العربية"
).split()
_SPECIALS = ["\r\n", "\r\n\r\n", "\n", "\t", "\u00a0", "\u200b", "😀", "🚀", "👍", "𝔘𝔫𝔦", "🤔", "™", "…", "—"]


_HTML_BREAKS = [
    "</p>\r\n\r\n<p>",
    "</p>\r\n\r\n<p>",
    "</p>\n\n<p>",
    "</p>\r\n\r\n<pre><code>for (int i = 0; i &lt; n; i++)\r\n{\r\n    total += values[i];\r\n}\r\n"
    "</code></pre>\r\n\r\n<p>",
    "</p>\r\n\r\n<blockquote>\r\n  <p>quoted</p>\r\n</blockquote>\r\n\r\n<p>",
]
_PLAIN_BREAKS = [". ", ". ", ". ", ".\r\n", "? "]


def _corpus_text(rng: np.random.Generator, target_bytes: int, html: bool) -> str:
    """Words with sprinkled specials (CR LF, NBSP, ZWSP, emoji, accents) and paragraph or sentence breaks."""
    n = target_bytes // 6
    tokens = np.array(_WORDS, dtype=object)[rng.integers(0, len(_WORDS), n)]
    special = rng.random(n) < 0.03
    tokens[special] = np.array(_SPECIALS, dtype=object)[rng.integers(0, len(_SPECIALS), int(special.sum()))]
    breaks = _HTML_BREAKS if html else _PLAIN_BREAKS
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


def _windows(rng: np.random.Generator, lengths: I64, valid: B | None, html: bool) -> pa.Array:
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


def _vocab(values: Sequence[str], idx: I64) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(idx))


def _str_null(arr: pa.Array, valid: B) -> pa.Array:
    return pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))


def _join(*parts: pa.Array) -> pa.Array:
    """Concatenate string columns element-wise; null parts are skipped (a way to make optional pieces).

    An all-'' first part is added because pyarrow drops rows whose parts are all null under "skip".
    """
    lead = _vocab([""], np.zeros(len(parts[0]), dtype=np.int64))
    return pc.binary_join_element_wise(lead, *parts, "", null_handling="skip")


def _int(values: npt.NDArray[Any], valid: B | None = None) -> pa.Array:
    return pa.array(values.astype(np.int32), type=pa.int32(), mask=None if valid is None else ~valid)


_FIRST = (  # noqa: SIM905 (word lists read better as text)
    "José Jose jose JOSE Zoë Zoe Jürgen Jurgen André Andre Ana Anna anna Björn Bjorn François Francois "
    "Łukasz Lukasz John Jon Mark Marc Sarah Sara Mike Michael Chris Dave David Peter Paul Tom Tim Jeff "
    "Joel Kevin Brian Brent Erin Rachel Nick Ivan Иван Олег 太郎 Hiro Wei Mohammed محمد Priya Aarav Søren "
    "Ines Inês"
).split()
_LAST = (  # noqa: SIM905 (word lists read better as text)
    "Smith smith Müller Muller Mueller Núñez Nunez García Garcia Skeet Atwood Spolsky Ozar Gravell "
    "Lippert Nguyen Kim Lee O'Brien Dupont Rossi Kowalski Ivanov Иванов Tanaka 山田 Chen Patel Hansen "
    "Larsen Berg"
).split()
_BADGES = (  # noqa: SIM905 (word lists read better as text)
    "Teacher|Student|Editor|Supporter|Critic|Autobiographer|Scholar|Commentator|Nice Answer|"
    "Popular Question|Notable Question|Famous Question|Good Answer|Great Answer|Yearling|Enlightened|"
    "Necromancer|Nice Question|Good Question|Great Question|Citizen Patrol|Organizer|Tumbleweed|"
    "Self-Learner|Revival|Guru|Favorite Question|Stellar Question|Pundit|Civic Duty|Cleanup|Disciplined|"
    "Peer Pressure|Mortarboard|Epic|Legendary|Fanatic|Enthusiast|Populist|Taxonomist|Beta|Strunk & White|"
    "Copy Editor|Sportsmanship|c#|java|.net|python|c++|sql-server|javascript|jquery|asp.net|iphone|"
    "android|regex|linq|wpf"
).split("|")
_TAGS = (  # noqa: SIM905 (word lists read better as text)
    "c# java .net php javascript jquery python c++ iphone asp.net sql mysql android html css "
    "ruby-on-rails objective-c sql-server ruby c windows wpf linq xml ajax regex database asp.net-mvc "
    "django silverlight visual-studio linux flex performance git multithreading arrays string winforms "
    "wcf tsql unit-testing oracle vb.net cocoa api algorithm web-services hibernate spring json security "
    "forms c#-4.0 .net-3.5"
).split()
_LOCATIONS = [
    "Seattle, WA",
    "London, United Kingdom",
    "London",
    "london",
    "São Paulo, Brazil",
    "Sao Paulo, Brazil",
    "Zürich, Switzerland",
    "Zurich, Switzerland",
    "München, Germany",
    "Montréal, QC",
    "Kraków, Poland",
    "Москва",
    "北京",
    "Bangalore, India",
    "New York, NY",
    "Reading, United Kingdom ",
    "Earth",
    "Sydney,\u00a0Australia",
    "Tel Aviv 🇮🇱",
    "Paris, France",
]
_DOMAINS = ["example.com", "blog.example.org", "github.com", "stackoverflow.com", "my-site.net", "bücher.de"]


# ------------------------------------------------------------------------------------------ the tables


class _Ctx:
    """Row counts and closed-form id/date functions shared by all tables at one (scale, seed)."""

    def __init__(self, scale: float, seed: int) -> None:
        self.seed = seed
        self.counts = row_counts(scale, include_extra=True)
        self.n_posts = self.counts["Posts"]
        self.n_users = self.counts["Users"]
        for name, layout in _LAYOUTS.items():
            top = int(layout.ids(np.array([self.counts[name]], dtype=np.int64))[0])
            if top > 2**31 - 1:
                raise ValueError(f"scale {scale} gives {name} ids up to {top:,}, beyond SQL Server's int")

    def ids(self, table_name: str, idx: I64) -> I64:
        if table_name == "Users":  # row 0 is the Community user, Id -1
            return np.where(idx == 0, -1, _LAYOUTS["Users"].ids(np.maximum(idx - 1, 0)))
        return _LAYOUTS[table_name].ids(idx)

    def post_ids(self, pidx: I64) -> I64:
        return _LAYOUTS["Posts"].ids(np.clip(pidx, 0, self.n_posts - 1))

    def user_ids(self, uidx: I64) -> I64:
        return self.ids("Users", np.clip(uidx, 0, self.n_users - 1))

    def post_ticks(self, pidx: I64) -> I64:
        """Posts' CreationDate grows with Id, so other tables can date themselves after their post."""
        jitter = (_hash01(self.seed, 7, pidx) * 300 * 60).astype(np.int64)
        return _ticks_at(pidx / max(self.n_posts, 1)) + jitter

    def user_refs(self, rng: np.random.Generator, pos: F64, n: int, p_null: float, p_community: float) -> I64:
        """Skewed references to users that existed at ``pos``; some -1, some deleted; -2 marks NULL."""
        uidx = 1 + (np.maximum(pos * (self.n_users - 1), 1) * rng.random(n) ** 2).astype(np.int64)
        ids = self.user_ids(uidx)
        r = rng.random(n)
        ids = np.where(r < p_community, -1, ids)
        deleted = (r >= p_community) & (r < p_community + 0.01)
        ids = np.where(deleted, _LAYOUTS["Users"].missing(uidx, self.n_users - 1), ids)
        return np.where(rng.random(n) < p_null, -2, ids)

    def post_refs(self, rng: np.random.Generator, pos: F64, n: int, p_deleted: float) -> I64:
        """References to posts older than ``pos``, recent ones favoured; some point at deleted posts."""
        top = np.maximum(pos * self.n_posts, 1.0)
        pidx = (top * (1.0 - rng.random(n) ** 3)).astype(np.int64)
        pidx = np.clip(pidx, 0, self.n_posts - 1)
        ids = self.post_ids(pidx)
        return np.where(rng.random(n) < p_deleted, _LAYOUTS["Posts"].missing(pidx, self.n_posts), ids)


def _nullable_ids(ids: I64) -> pa.Array:
    return _int(ids, ids != -2)


_QUESTION_SLOTS = np.array([True, False, False, True, False, False, False, True, False, False])
_PREV_QUESTION = np.array([0, 0, 0, 3, 3, 3, 3, 7, 7, 7])


def _post_types(ctx: _Ctx, idx: I64) -> I64:
    """Questions sit at fixed slots (so answers can find an earlier question arithmetically); rare others."""
    types = np.where(_QUESTION_SLOTS[idx % 10], 1, 2)
    h = _hash01(ctx.seed, 11, idx)
    other = h < 0.003
    return np.where(other, np.array([3, 4, 4, 5, 5, 6, 7, 8])[(h * 1e6).astype(np.int64) % 8], types)


def _gen_posts(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    ptype = _post_types(ctx, idx)
    q = ptype == 1
    a = ptype == 2
    created = ctx.post_ticks(idx)
    pos = idx / ctx.n_posts

    # Body: lognormal around 1 KB with a heavy tail; a few empty; fixed giants so small scales have them.
    lengths = np.exp(rng.normal(math.log(1000), 0.7, n))
    tail = rng.random(n)
    lengths = np.where(tail < 0.0005, rng.uniform(20_000, 60_000, n), lengths)
    lengths = np.where(tail < 0.00005, rng.uniform(100_000, 400_000, n), lengths)
    lengths = np.where(tail > 0.9995, 0, lengths).astype(np.int64)
    for row, size in ((3, 120_000), (7, 25_000), (12, 0)):
        lengths[idx == row] = size
    body = _windows(rng, lengths, None, html=True)

    title_valid = q | ((ptype > 2) & (rng.random(n) < 0.5))
    title = _from_pool("titles", rng, n, title_valid)
    tags = _from_pool("tags", rng, n, q)

    accepted = ctx.post_ids(idx + 1 + (rng.random(n) < 0.3))
    accepted_valid = q & (rng.random(n) < 0.55) & (idx + 2 < ctx.n_posts)
    back = idx - 1 - (rng.exponential(20, n)).astype(np.int64)
    back = np.maximum(back, 0)
    parent_idx = back - (back % 10 - _PREV_QUESTION[back % 10])
    parent = np.where(
        rng.random(n) < 0.01, _LAYOUTS["Posts"].missing(parent_idx, ctx.n_posts), ctx.post_ids(parent_idx)
    )

    activity = created + (rng.exponential(30 * 86_400, n) * _TICKS_PER_SECOND).astype(np.int64)
    edited = rng.random(n) < 0.45
    edit = created + ((activity - created) * rng.random(n)).astype(np.int64)
    owner = ctx.user_refs(rng, pos, n, p_null=0.02, p_community=0.005)
    owner = np.where(ptype > 2, -1, owner)
    editor = np.where(rng.random(n) < 0.85, owner, ctx.user_refs(rng, pos, n, 0.05, 0.05))
    editor_valid = edited & (editor != -2)
    editor_name_valid = edited & (rng.random(n) < 0.03)
    editor_name = _from_pool("names", rng, n, editor_name_valid)

    views = (np.exp(rng.normal(math.log(400), 1.4, n))).astype(np.int64)
    score = np.round(rng.standard_t(3, n) * 3 + np.where(q, 1.5, 1.0)).astype(np.int64)
    closed = q & (rng.random(n) < 0.03)
    wiki = rng.random(n) < 0.01
    return {
        "Id": _int(ctx.ids("Posts", idx)),
        "AcceptedAnswerId": _int(accepted, accepted_valid),
        "AnswerCount": _int(rng.poisson(2.3, n), q),
        "Body": body,
        "ClosedDate": _ts(np.maximum(created, activity - (rng.random(n) * 86_400 * 300).astype(np.int64)), closed),
        "CommentCount": _int(rng.poisson(1.5, n), rng.random(n) > 0.01),
        "CommunityOwnedDate": _ts(np.maximum(edit, created), wiki),
        "CreationDate": _ts(created),
        "FavoriteCount": _int(rng.poisson(3, n), q & (rng.random(n) < 0.3)),
        "LastActivityDate": _ts(activity),
        "LastEditDate": _ts(edit, edited),
        "LastEditorDisplayName": editor_name,
        "LastEditorUserId": _int(editor, editor_valid),
        "OwnerUserId": _nullable_ids(owner),
        "ParentId": _int(parent, a),
        "PostTypeId": _int(ptype),
        "Score": _int(score),
        "Tags": tags,
        "Title": title,
        "ViewCount": _int(np.where(q, views, 0)),
    }


def _display_names(rng: np.random.Generator, n: int) -> pa.Array:
    """Names with the collation traps: case/accent twins, NBSP/ZWSP separators, trailing spaces, emoji."""
    first = _vocab(_FIRST, rng.integers(0, len(_FIRST), n))
    last = _vocab(_LAST, rng.integers(0, len(_LAST), n))
    sep = _vocab([" ", " ", " ", " ", "\u00a0", "\u200b", ""], rng.integers(0, 7, n))
    r = rng.random(n)
    has_last = r < 0.6
    numbered = r > 0.85
    number = pc.cast(pa.array(rng.integers(1, 99_999, n)), pa.string())
    suffix = _vocab(["", "", "", "", "", "", "", "", " ", "  ", " 🚀", "\u200b"], rng.integers(0, 12, n))
    base = _join(first, _str_null(sep, has_last), _str_null(last, has_last))
    user_n = _join(_vocab(["user"], np.zeros(n, np.int64)), number)
    return _join(pc.if_else(pa.array(numbered), user_n, base), suffix)


def _titles(rng: np.random.Generator, n: int) -> pa.Array:
    nwords = rng.integers(3, 15, n)
    words = [_str_null(_vocab(_WORDS, rng.integers(0, len(_WORDS), n)), nwords > k) for k in range(15)]
    title = pc.binary_join_element_wise(*words, " ", null_handling="skip")
    return _join(title, _str_null(_vocab(["?"], np.zeros(n, np.int64)), rng.random(n) < 0.4))


def _tags(rng: np.random.Generator, n: int) -> pa.Array:
    ntags = rng.integers(1, 6, n)
    tag_vocab = [f"<{t}>" for t in _TAGS]
    popular = (rng.random((5, n)) ** 2 * len(_TAGS)).astype(np.int64)
    return _join(*[_str_null(_vocab(tag_vocab, popular[k]), ntags > k) for k in range(5)])


_POOLS: dict[str, tuple[int, Callable[[np.random.Generator, int], pa.Array]]] = {
    "titles": (16384, _titles),
    "tags": (8192, _tags),
    "names": (8192, _display_names),
}


@functools.cache
def _pool(kind: str) -> pa.Array:
    """Seed-independent pools for columns that only need plausible values: one take per chunk is cheap."""
    size, make = _POOLS[kind]
    return make(np.random.default_rng(len(kind) * 7919), size)


def _from_pool(kind: str, rng: np.random.Generator, n: int, valid: B) -> pa.Array:
    pool = _pool(kind)
    return pool.take(pa.array(rng.integers(0, len(pool), n), mask=~valid))


def _gen_users(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos = idx / ctx.n_users
    created = _ticks_at(pos) + (rng.random(n) * 3600 * _TICKS_PER_SECOND).astype(np.int64)
    last_access = created + (rng.random(n) * (1.0 - pos) * 800 * 86_400 * _TICKS_PER_SECOND).astype(np.int64)

    about_r = rng.random(n)
    about_valid = about_r > 0.6
    about_len = np.where(about_r < 0.7, 0, np.exp(rng.normal(math.log(250), 1.0, n))).astype(np.int64)
    about = _windows(rng, about_len, about_valid, html=True)

    nib = rng.integers(0, 16, (n, 32), dtype=np.uint8)
    hexbuf = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nib].reshape(-1)
    email_valid = rng.random(n) < 0.4
    email = pa.StringArray.from_buffers(
        n,
        pa.py_buffer(np.arange(n + 1, dtype=np.int32) * 32),
        pa.py_buffer(hexbuf),
        pa.py_buffer(np.packbits(email_valid, bitorder="little")),
        int(n - email_valid.sum()),
    )

    loc_r = rng.random(n)
    location = _vocab(_LOCATIONS + [""], np.where(loc_r < 0.05, len(_LOCATIONS), rng.integers(0, len(_LOCATIONS), n)))
    location = _str_null(location, loc_r < 0.5)

    web_r = rng.random(n)
    names = pc.utf8_lower(_vocab(_FIRST, rng.integers(0, len(_FIRST), n)))
    url = _join(
        _vocab(["http://", "https://", "http://www."], rng.integers(0, 3, n)),
        names,
        _vocab(["."], np.zeros(n, np.int64)),
        _vocab(_DOMAINS, rng.integers(0, len(_DOMAINS), n)),
        _vocab(["", "/", "/blog", "/~me "], rng.integers(0, 4, n)),
    )
    website = _str_null(pc.if_else(pa.array(web_r < 0.08), pa.scalar("", pa.string()), url), web_r < 0.37)

    # Clip before exp: an unclipped lognormal tail overflows to inf, which casts to a negative int64.
    rep = np.where(rng.random(n) < 0.4, 1, np.exp(np.minimum(rng.lognormal(1.5, 0.6, n), 13.0))).astype(np.int64)
    rep = np.minimum(rep, 500_000)
    cols: dict[str, pa.Array] = {
        "Id": _int(ctx.ids("Users", idx)),
        "AboutMe": about,
        "Age": _int(rng.integers(13, 80, n), rng.random(n) < 0.25),
        "CreationDate": _ts(created),
        "DisplayName": _display_names(rng, n),
        "DownVotes": _int(rng.poisson(0.8, n) * (rng.random(n) < 0.3)),
        "EmailHash": email,
        "LastAccessDate": _ts(last_access),
        "Location": location,
        "Reputation": _int(rep),
        "UpVotes": _int((rng.exponential(15, n) * (rng.random(n) < 0.5)).astype(np.int64)),
        "Views": _int(rng.poisson(np.sqrt(rep) * 2)),
        "WebsiteUrl": website,
        "AccountId": _int(idx * 3 + 100 + rng.integers(0, 3, n), rng.random(n) < 0.9),
    }
    if idx[0] == 0:
        cols = _community_user(cols)
    return cols


def _community_user(cols: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Row 0 is the real database's Community user (Id -1), the owner of wikis and the bot of many votes."""
    first = {
        "AboutMe": "<p>Hi, I'm not really a person.</p>\r\n\r\n<p>I'm a background process that helps keep "
        "this site clean!</p>\r\n",
        "Age": None,
        "DisplayName": "Community",
        "EmailHash": None,
        "Location": "on the server farm",
        "Reputation": 1,
        "UpVotes": 5007,
        "DownVotes": 1920,
        "Views": 649,
        "WebsiteUrl": "http://meta.stackexchange.com/",
        "AccountId": -1,
    }
    out = dict(cols)
    for name, value in first.items():
        arr = cols[name]
        out[name] = pa.concat_arrays([pa.array([value], type=arr.type), arr.slice(1)])
    return out


def _time_positions(idx: I64, n: int, rng: np.random.Generator) -> tuple[F64, I64]:
    pos = idx / max(n, 1)
    return pos, _ticks_at(pos) + (rng.random(len(idx)) * 600 * _TICKS_PER_SECOND).astype(np.int64)


def _gen_comments(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["Comments"], rng)
    lengths = np.clip(np.exp(rng.normal(math.log(150), 0.7, n)), 15, 697).astype(np.int64)
    lengths[rng.random(n) < 0.002] = 697
    return {
        "Id": _int(ctx.ids("Comments", idx)),
        "CreationDate": _ts(ticks),
        "PostId": _int(ctx.post_refs(rng, pos, n, p_deleted=0.02)),
        "Score": _int(rng.poisson(0.4, n), rng.random(n) > 0.02),
        "Text": _windows(rng, lengths, None, html=False),
        "UserId": _nullable_ids(ctx.user_refs(rng, pos, n, p_null=0.02, p_community=0.001)),
    }


_VOTE_TYPE_P = np.array([0.08, 0.74, 0.06, 0.003, 0.09, 0.012, 0.001, 0.002, 0.002, 0.006, 0.001, 0.001])
_VOTE_TYPE_IDS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])


def _gen_votes(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, _ = _time_positions(idx, ctx.counts["Votes"], rng)
    vtype = rng.choice(_VOTE_TYPE_IDS, n, p=_VOTE_TYPE_P / _VOTE_TYPE_P.sum())
    ticks = _ticks_at(pos)
    day = (ticks // _TICKS_PER_DAY) * _TICKS_PER_DAY  # Votes.CreationDate is whole days in the dumps
    users = ctx.user_refs(rng, pos, n, p_null=0.0, p_community=0.01)
    bounty = rng.choice(np.array([50, 100, 150, 200, 250, 300, 500]), n)
    return {
        "Id": _int(ctx.ids("Votes", idx)),
        "PostId": _int(ctx.post_refs(rng, pos, n, p_deleted=0.03)),
        "UserId": _int(users, (vtype == 5) | (vtype == 8)),
        "BountyAmount": _int(bounty, (vtype == 8) | (vtype == 9)),
        "VoteTypeId": _int(vtype),
        "CreationDate": _ts(day),
    }


def _gen_badges(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["Badges"], rng)
    users = ctx.user_refs(rng, pos, n, p_null=0.0, p_community=0.0005)
    names = _vocab(_BADGES, (rng.random(n) ** 2.5 * len(_BADGES)).astype(np.int64))
    whole_day = rng.random(n) < 0.05
    ticks = np.where(whole_day, (ticks // _TICKS_PER_DAY) * _TICKS_PER_DAY, ticks)
    return {"Id": _int(ctx.ids("Badges", idx)), "Name": names, "UserId": _int(users), "Date": _ts(ticks)}


def _gen_postlinks(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["PostLinks"], rng)
    return {
        "Id": _int(ctx.ids("PostLinks", idx)),
        "CreationDate": _ts(ticks),
        "PostId": _int(ctx.post_refs(rng, pos, n, p_deleted=0.01)),
        "RelatedPostId": _int(ctx.post_refs(rng, pos, n, p_deleted=0.05)),
        "LinkTypeId": _int(np.where(rng.random(n) < 0.85, 1, 3)),
    }


def _gen_posthistory(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos = idx / ctx.counts["PostHistory"]
    pidx = np.minimum((pos * ctx.n_posts).astype(np.int64), ctx.n_posts - 1)
    ticks = ctx.post_ticks(pidx) + (rng.random(n) * 86_400 * _TICKS_PER_SECOND).astype(np.int64)
    htype = rng.choice(
        np.array([2, 1, 3, 5, 4, 6, 10, 16, 24, 33]),
        n,
        p=[0.35, 0.12, 0.12, 0.25, 0.04, 0.06, 0.02, 0.01, 0.02, 0.01],
    )
    text_len = np.where(np.isin(htype, [2, 5]), np.exp(rng.normal(math.log(900), 0.8, n)), rng.integers(5, 120, n))
    text = _windows(rng, text_len.astype(np.int64), rng.random(n) > 0.03, html=True)
    comment_valid = rng.random(n) < 0.3
    comment = _windows(rng, rng.integers(0, 80, n), comment_valid, html=False)
    users = ctx.user_refs(rng, pos, n, p_null=0.03, p_community=0.02)
    guid = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    guid[:, 6] = (guid[:, 6] & 0x0F) | 0x40
    guid[:, 8] = (guid[:, 8] & 0x3F) | 0x80
    return {
        "Id": _int(ctx.ids("PostHistory", idx)),
        "PostHistoryTypeId": _int(htype),
        "PostId": _int(ctx.post_ids(pidx)),
        "RevisionGUID": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(guid)]),
        "CreationDate": _ts(ticks),
        "UserId": _nullable_ids(users),
        "UserDisplayName": _from_pool("names", rng, n, users == -2),
        "Comment": comment,
        "Text": text,
    }


def _gen_tags(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    v = len(_TAGS)
    base = _vocab(_TAGS, idx % v)
    gen = idx // v
    suffix = _str_null(_join(_vocab(["-"], np.zeros(n, np.int64)), pc.cast(pa.array(gen), pa.string())), gen > 0)
    counts = (np.exp(rng.normal(3, 2, n)) + 1).astype(np.int64)
    has_wiki = rng.random(n) < 0.3
    return {
        "Id": _int(ctx.ids("Tags", idx)),
        "TagName": _join(base, suffix),
        "Count": _int(np.minimum(counts, 2_000_000)),
        "ExcerptPostId": _int(ctx.post_ids(rng.integers(0, ctx.n_posts, n)), has_wiki),
        "WikiPostId": _int(ctx.post_ids(rng.integers(0, ctx.n_posts, n)), has_wiki),
    }


def _gen_lookup(name: str) -> Callable[[_Ctx, np.random.Generator, I64], dict[str, pa.Array]]:
    def gen(ctx: _Ctx, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
        rows = _LOOKUPS[name]
        col = table(name).columns[1].name
        return {"Id": _int(np.array([rows[i][0] for i in idx])), col: pa.array([rows[i][1] for i in idx])}

    return gen


_GENERATORS: dict[str, Callable[[_Ctx, np.random.Generator, I64], dict[str, pa.Array]]] = {
    "Posts": _gen_posts,
    "Users": _gen_users,
    "Comments": _gen_comments,
    "Votes": _gen_votes,
    "Badges": _gen_badges,
    "PostLinks": _gen_postlinks,
    "PostHistory": _gen_posthistory,
    "Tags": _gen_tags,
    **{name: _gen_lookup(name) for name in _LOOKUPS},
}
_TABLE_CODES = {t.name: i for i, t in enumerate(TABLES + EXTRA_TABLES)}


@functools.lru_cache(maxsize=8)
def _ctx(scale: float, seed: int) -> _Ctx:
    return _Ctx(scale, seed)


def _chunk(table_name: str, scale: float, seed: int, chunk: int) -> pa.RecordBatch:
    ctx = _ctx(scale, seed)
    n = ctx.counts[table_name]
    idx = np.arange(chunk * CHUNK_ROWS, min(n, (chunk + 1) * CHUNK_ROWS), dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed % 2**64, _TABLE_CODES[table_name], chunk]))
    cols = _GENERATORS[table_name](ctx, rng, idx)
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


# --------------------------------------------------------------------------------------------------- DDL


def _select(tables: Sequence[str] | None, include_extra: bool = False) -> list[SynthTable]:
    if tables is None:
        return TABLES + (EXTRA_TABLES if include_extra else [])
    return [table(t) for t in tables]


def _pg_type(sql_type: str) -> str:
    base, _, arg = sql_type.partition("(")
    base = base.lower()
    if base == "int":
        return "integer"
    if base in ("nvarchar", "varchar"):
        return "text" if arg.rstrip(")").lower() == "max" else f"varchar({arg}"
    if base == "datetime":
        return "timestamp(3)"
    if base == "uniqueidentifier":
        return "uuid"
    raise ValueError(f"no PostgreSQL mapping for {sql_type!r}")


def _pq(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _mq(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def postgres_ddl(schema: str = "public", tables: Sequence[str] | None = None, include_extra: bool = False) -> list[str]:
    """CREATE TABLE statements as a PostgreSQL user would hold the DB; primary keys come after the load."""
    out = []
    for t in _select(tables, include_extra):
        cols = []
        for c in t.columns:
            if c.identity:
                cols.append(f"{_pq(c.name)} integer GENERATED BY DEFAULT AS IDENTITY NOT NULL")
            else:
                cols.append(f"{_pq(c.name)} {_pg_type(c.sql_type)}{'' if c.nullable else ' NOT NULL'}")
        out.append(f"CREATE TABLE {_pq(schema)}.{_pq(t.name)} (\n    " + ",\n    ".join(cols) + "\n)")
    return out


def postgres_pk_ddl(
    schema: str = "public", tables: Sequence[str] | None = None, include_extra: bool = False
) -> list[str]:
    """The primary keys, with SQL Server's constraint names, added once the data is in."""
    return [
        f"ALTER TABLE {_pq(schema)}.{_pq(t.name)} ADD CONSTRAINT {_pq(t.pk_name)} "
        f"PRIMARY KEY ({', '.join(_pq(c) for c in t.pk_columns)})"
        for t in _select(tables, include_extra)
    ]


def mssql_ddl(schema: str = "dbo", tables: Sequence[str] | None = None, include_extra: bool = False) -> list[str]:
    """The SQL Server CREATE TABLE statements of the shipped database."""
    out = []
    for t in _select(tables, include_extra):
        cols = []
        for c in t.columns:
            ident = " IDENTITY(1,1)" if c.identity else ""
            cols.append(f"{_mq(c.name)} {c.sql_type}{ident} {'NULL' if c.nullable else 'NOT NULL'}")
        pk = ", ".join(f"{_mq(c)} ASC" for c in t.pk_columns)
        cols.append(f"CONSTRAINT {_mq(t.pk_name)} PRIMARY KEY CLUSTERED ({pk})")
        out.append(f"CREATE TABLE {_mq(schema)}.{_mq(t.name)} (\n    " + ",\n    ".join(cols) + "\n)")
    return out


# ---------------------------------------------------------------------------------------------- loading


def _adbc_uri(url: str) -> str:
    """libpq understands postgres:// and postgresql:// but not SQLAlchemy-style driver suffixes."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else url


def _toast_settings(schema: str, tables: Sequence[SynthTable], load: bool) -> list[str]:
    """Storage settings for the bulk load (load=True) and the defaults restored after it."""
    out = []
    for t in tables:
        fq = f"{_pq(schema)}.{_pq(t.name)}"
        big = [c for c in t.columns if c.sql_type.lower().endswith("(max)")]
        if not big:
            continue
        out.append(
            f"ALTER TABLE {fq} SET (toast_tuple_target = 8160)"
            if load
            else f"ALTER TABLE {fq} RESET (toast_tuple_target)"
        )
        storage = "EXTERNAL" if load else "EXTENDED"
        out += [f"ALTER TABLE {fq} ALTER COLUMN {_pq(c.name)} SET STORAGE {storage}" for c in big]
    return out


def write_postgres(
    url: str,
    scale: float,
    seed: int = 42,
    schema: str = "public",
    tables: Sequence[str] | None = None,
    include_extra: bool = False,
    workers: int = 2,
    compress_text: bool = False,
    split: dict[str, int] | None = None,
    replace: bool = False,
    verbose: bool = True,
) -> dict[str, int]:
    """Create, bulk-load (ADBC ingest = binary COPY from Arrow), key, sequence and ANALYZE the tables.

    ``workers`` threads each take the largest table left, load it, then key and analyze it while the
    others still load; keys come after the data because one B-tree build is much cheaper than row-by-row
    maintenance. Unless ``compress_text``, (max) columns are loaded uncompressed and inline up to 8 KB
    (pglz is most of Posts' load time), then the default storage is restored for later writes.
    ``split`` maps a table to a number of parts loaded concurrently. Existing tables of the same names
    are an error unless ``replace`` (then they are dropped). Returns rows loaded per table.
    """
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    selected = _select(tables, include_extra)
    counts = row_counts(scale, include_extra=True)
    names = [t.name for t in selected]
    split = split or {}
    uri = _adbc_uri(url)
    t0 = time.perf_counter()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_pq(schema)}")
        existing = [
            name
            for name in names
            if conn.execute("SELECT to_regclass(%s)", (f"{_pq(schema)}.{_pq(name)}",)).fetchone() != (None,)
        ]
        if existing and not replace:
            raise ValueError(f"tables already exist in schema {schema!r}: {existing}; pass replace=True")
        for name in existing:
            conn.execute(f"DROP TABLE {_pq(schema)}.{_pq(name)}")
        for stmt in postgres_ddl(schema, names):
            conn.execute(stmt)
        if not compress_text:
            for stmt in _toast_settings(schema, selected, load=True):
                conn.execute(stmt)

    pk_stmts = dict(zip(names, postgres_pk_ddl(schema, names), strict=True))
    # A table can be split in contiguous parts loaded side by side; with 2 cores already saturated by
    # generation plus two backends this measured slower, so it is only done when asked for.
    n_parts = {n: max(1, min(split.get(n, 1), chunk_count(n, scale))) for n in names}
    left = dict(n_parts)
    jobs = [(n, p, _load_cost(n, counts[n]) / n_parts[n]) for n in names for p in range(n_parts[n])]
    queue = [(n, p) for n, p, _ in sorted(jobs, key=lambda j: -j[2])]
    started_at: dict[str, float] = {}
    loaded: dict[str, int] = {}
    timings: dict[str, tuple[float, float, float]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def load_and_finalize(aconn: Any, pconn: Any, name: str, part: int) -> None:
        fq = f"{_pq(schema)}.{_pq(name)}"
        with lock:
            started_at.setdefault(name, time.perf_counter())
        chunks = chunk_count(name, scale)
        first, end = chunks * part // n_parts[name], chunks * (part + 1) // n_parts[name]
        expected = min(counts[name], end * CHUNK_ROWS) - first * CHUNK_ROWS
        with aconn.cursor() as cur:
            # Batches of whole chunks: re-batching would copy every Body once more.
            data = reader(name, scale, seed, CHUNK_ROWS, part=part, parts=n_parts[name])
            rows = cur.adbc_ingest(name, data, mode="append", db_schema_name=schema)
        aconn.commit()
        if rows is not None and rows >= 0 and rows != expected:
            raise RuntimeError(f"{fq}: loaded {rows} rows, expected {expected}")
        with lock:
            loaded[name] = loaded.get(name, 0) + expected
            left[name] -= 1
            if left[name]:
                return
        keyed = time.perf_counter()
        pconn.execute(pk_stmts[name])
        if not compress_text:
            for stmt in _toast_settings(schema, [table(name)], load=False):
                pconn.execute(stmt)
        max_id = 'GREATEST(COALESCE(MAX("Id"), 0), 1)'
        pconn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'Id'), {max_id}) FROM {fq}", (fq,))
        pconn.execute(f"ANALYZE {fq}")
        with lock:
            timings[name] = (started_at[name] - t0, keyed - t0, time.perf_counter() - t0)

    def work() -> None:
        try:
            with adbc.connect(uri) as aconn, psycopg.connect(uri, autocommit=True) as pconn:
                # Generated data can be regenerated: commits need not wait for the WAL flush.
                with aconn.cursor() as cur:
                    cur.execute("SET synchronous_commit = off")
                pconn.execute("SET synchronous_commit = off")
                while True:
                    with lock:
                        if not queue or errors:
                            return
                        name, part = queue.pop(0)
                    load_and_finalize(aconn, pconn, name, part)
        except BaseException as exc:  # re-raised in the caller's thread below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, name=f"synth-load-{i}") for i in range(max(1, workers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - t0
    total = sum(loaded.values())
    if verbose:
        print(
            f"synth stackoverflow scale={scale} seed={seed}: {total:,} rows in {elapsed:.2f}s "
            f"({total / elapsed:,.0f} rows/s end to end: create, load, keys, sequences, analyze)"
        )
        for name in names:
            a, b, c = timings[name]
            print(f"  {name:18s} {loaded[name]:>11,} rows  load {a:6.2f}..{b:6.2f}s  keys+analyze ..{c:6.2f}s")
    return {name: loaded[name] for name in names}


def _load_cost(name: str, rows: int) -> float:
    """Rough relative load time, so the slowest tables start first."""
    per_row = {"Posts": 12.0, "PostHistory": 8.0, "Comments": 2.0, "Users": 2.0}
    return rows * per_row.get(name, 1.0)


def generate(
    target_url: str, scale: float, seed: int = 42, include_extra: bool = False, replace: bool = False
) -> dict[str, int]:
    """Fill the database at ``target_url`` with the synthetic StackOverflow2010; dispatches on the scheme.

    New targets add a branch here (and a ``write_<engine>`` beside ``write_postgres``).
    """
    scheme = urlsplit(target_url).scheme.lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return write_postgres(target_url, scale, seed, include_extra=include_extra, replace=replace)
    if scheme in ("mssql", "sqlserver"):
        return write_mssql(target_url, scale, seed, include_extra=include_extra, replace=replace)
    raise ValueError(
        f"cannot generate StackOverflow2010 into a {scheme or '(no scheme)'!r} target; "
        "supported: postgresql://, mssql://"
    )


def write_mssql(
    url: str,
    scale: float,
    seed: int = 42,
    schema: str = "dbo",
    tables: Sequence[str] | None = None,
    include_extra: bool = False,
    replace: bool = False,
) -> dict[str, int]:
    """Create the shipped SQL Server schema and fill it over TDS bulk load (mssql-python), keeping the Ids.

    Works against real SQL Server and the stand-in alike, so `ray-replicator generate --target mssql://…` gives
    either one the reference workload.
    """
    from ray_replicator.engines.mssql import connect_mssql_python, parse_url

    chosen = _select(tables, include_extra)
    conn = connect_mssql_python(parse_url(url), autocommit=True)
    try:
        cur = conn.cursor()
        for t in chosen:
            qualified_name = f"{_mq(schema)}.{_mq(t.name)}"
            cur.execute(f"SELECT OBJECT_ID(N'{qualified_name.replace(chr(39), chr(39) * 2)}')")
            exists = cur.fetchone()[0] is not None
            if exists and not replace:
                raise ValueError(f"table {schema}.{t.name} already exists in the target; drop it or pass replace")
            if exists:
                cur.execute(f"DROP TABLE {qualified_name}")
        for ddl in mssql_ddl(schema, [t.name for t in chosen]):
            cur.execute(ddl)
        counts: dict[str, int] = {}
        for t in chosen:
            arrow = arrow_schema(t.name)
            reader = pa.RecordBatchReader.from_batches(arrow, generate_batches(t.name, scale, seed))
            cur.bulkcopy_arrow(
                f"{_mq(schema)}.{_mq(t.name)}",
                reader,
                column_mappings=list(arrow.names),
                keep_identity=True,
                keep_nulls=True,
                table_lock=True,
                timeout=0,
            )
            cur.execute(f"SELECT COUNT_BIG(*) FROM {_mq(schema)}.{_mq(t.name)}")
            counts[t.name] = int(cur.fetchone()[0])
        return counts
    finally:
        conn.close()
