"""One generator per table: a chunk of row indexes and its random stream in, that table's columns out.

Cross-table references (a comment's post, a vote's user) go through ``ScaleContext``, whose id and date
functions are closed-form, so any chunk of any table is generated without the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.synth.schema import LOOKUPS, row_counts, table
from ray_replicator.synth.text import display_names, from_pool, text_windows
from ray_replicator.synth.values import (
    F64,
    I64,
    ID_LAYOUTS,
    TICKS_PER_DAY,
    TICKS_PER_SECOND,
    hash01,
    int32_array,
    join_strings,
    null_unless,
    take_strings,
    ticks_at,
    timestamp_array,
)
from ray_replicator.synth.vocabulary import BADGE_NAMES, DOMAINS, FIRST_NAMES, LOCATIONS, TAG_NAMES


class ScaleContext:
    """Row counts and closed-form id/date functions shared by all tables at one (scale, seed)."""

    def __init__(self, scale: float, seed: int) -> None:
        self.seed = seed
        self.counts = row_counts(scale, include_extra=True)
        self.n_posts = self.counts["Posts"]
        self.n_users = self.counts["Users"]
        for name, layout in ID_LAYOUTS.items():
            top = int(layout.ids(np.array([self.counts[name]], dtype=np.int64))[0])
            if top > 2**31 - 1:
                raise ValueError(f"scale {scale} gives {name} ids up to {top:,}, beyond SQL Server's int")

    def ids(self, table_name: str, idx: I64) -> I64:
        if table_name == "Users":  # row 0 is the Community user, Id -1
            return np.where(idx == 0, -1, ID_LAYOUTS["Users"].ids(np.maximum(idx - 1, 0)))
        return ID_LAYOUTS[table_name].ids(idx)

    def post_ids(self, pidx: I64) -> I64:
        return ID_LAYOUTS["Posts"].ids(np.clip(pidx, 0, self.n_posts - 1))

    def user_ids(self, uidx: I64) -> I64:
        return self.ids("Users", np.clip(uidx, 0, self.n_users - 1))

    def post_ticks(self, pidx: I64) -> I64:
        """Posts' CreationDate grows with Id, so other tables can date themselves after their post."""
        jitter = (hash01(self.seed, 7, pidx) * 300 * 60).astype(np.int64)
        return ticks_at(pidx / max(self.n_posts, 1)) + jitter

    def user_refs(self, rng: np.random.Generator, pos: F64, n: int, p_null: float, p_community: float) -> I64:
        """Skewed references to users that existed at ``pos``; some -1, some deleted; -2 marks NULL."""
        uidx = 1 + (np.maximum(pos * (self.n_users - 1), 1) * rng.random(n) ** 2).astype(np.int64)
        ids = self.user_ids(uidx)
        r = rng.random(n)
        ids = np.where(r < p_community, -1, ids)
        deleted = (r >= p_community) & (r < p_community + 0.01)
        ids = np.where(deleted, ID_LAYOUTS["Users"].missing(uidx, self.n_users - 1), ids)
        return np.where(rng.random(n) < p_null, -2, ids)

    def post_refs(self, rng: np.random.Generator, pos: F64, n: int, p_deleted: float) -> I64:
        """References to posts older than ``pos``, recent ones favoured; some point at deleted posts."""
        top = np.maximum(pos * self.n_posts, 1.0)
        pidx = (top * (1.0 - rng.random(n) ** 3)).astype(np.int64)
        pidx = np.clip(pidx, 0, self.n_posts - 1)
        ids = self.post_ids(pidx)
        return np.where(rng.random(n) < p_deleted, ID_LAYOUTS["Posts"].missing(pidx, self.n_posts), ids)


def _nullable_ids(ids: I64) -> pa.Array:
    return int32_array(ids, ids != -2)


_QUESTION_SLOTS = np.array([True, False, False, True, False, False, False, True, False, False])
_PREV_QUESTION = np.array([0, 0, 0, 3, 3, 3, 3, 7, 7, 7])


def _post_types(ctx: ScaleContext, idx: I64) -> I64:
    """Questions sit at fixed slots (so answers can find an earlier question arithmetically); rare others."""
    types = np.where(_QUESTION_SLOTS[idx % 10], 1, 2)
    h = hash01(ctx.seed, 11, idx)
    other = h < 0.003
    return np.where(other, np.array([3, 4, 4, 5, 5, 6, 7, 8])[(h * 1e6).astype(np.int64) % 8], types)


def _gen_posts(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
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
    body = text_windows(rng, lengths, None, html=True)

    title_valid = q | ((ptype > 2) & (rng.random(n) < 0.5))
    title = from_pool("titles", rng, n, title_valid)
    tags = from_pool("tags", rng, n, q)

    accepted = ctx.post_ids(idx + 1 + (rng.random(n) < 0.3))
    accepted_valid = q & (rng.random(n) < 0.55) & (idx + 2 < ctx.n_posts)
    back = idx - 1 - (rng.exponential(20, n)).astype(np.int64)
    back = np.maximum(back, 0)
    parent_idx = back - (back % 10 - _PREV_QUESTION[back % 10])
    parent = np.where(
        rng.random(n) < 0.01, ID_LAYOUTS["Posts"].missing(parent_idx, ctx.n_posts), ctx.post_ids(parent_idx)
    )

    activity = created + (rng.exponential(30 * 86_400, n) * TICKS_PER_SECOND).astype(np.int64)
    edited = rng.random(n) < 0.45
    edit = created + ((activity - created) * rng.random(n)).astype(np.int64)
    owner = ctx.user_refs(rng, pos, n, p_null=0.02, p_community=0.005)
    owner = np.where(ptype > 2, -1, owner)
    editor = np.where(rng.random(n) < 0.85, owner, ctx.user_refs(rng, pos, n, 0.05, 0.05))
    editor_valid = edited & (editor != -2)
    editor_name_valid = edited & (rng.random(n) < 0.03)
    editor_name = from_pool("names", rng, n, editor_name_valid)

    views = (np.exp(rng.normal(math.log(400), 1.4, n))).astype(np.int64)
    score = np.round(rng.standard_t(3, n) * 3 + np.where(q, 1.5, 1.0)).astype(np.int64)
    closed = q & (rng.random(n) < 0.03)
    wiki = rng.random(n) < 0.01
    return {
        "Id": int32_array(ctx.ids("Posts", idx)),
        "AcceptedAnswerId": int32_array(accepted, accepted_valid),
        "AnswerCount": int32_array(rng.poisson(2.3, n), q),
        "Body": body,
        "ClosedDate": timestamp_array(
            np.maximum(created, activity - (rng.random(n) * 86_400 * 300).astype(np.int64)), closed
        ),
        "CommentCount": int32_array(rng.poisson(1.5, n), rng.random(n) > 0.01),
        "CommunityOwnedDate": timestamp_array(np.maximum(edit, created), wiki),
        "CreationDate": timestamp_array(created),
        "FavoriteCount": int32_array(rng.poisson(3, n), q & (rng.random(n) < 0.3)),
        "LastActivityDate": timestamp_array(activity),
        "LastEditDate": timestamp_array(edit, edited),
        "LastEditorDisplayName": editor_name,
        "LastEditorUserId": int32_array(editor, editor_valid),
        "OwnerUserId": _nullable_ids(owner),
        "ParentId": int32_array(parent, a),
        "PostTypeId": int32_array(ptype),
        "Score": int32_array(score),
        "Tags": tags,
        "Title": title,
        "ViewCount": int32_array(np.where(q, views, 0)),
    }


def _gen_users(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos = idx / ctx.n_users
    created = ticks_at(pos) + (rng.random(n) * 3600 * TICKS_PER_SECOND).astype(np.int64)
    last_access = created + (rng.random(n) * (1.0 - pos) * 800 * 86_400 * TICKS_PER_SECOND).astype(np.int64)

    about_r = rng.random(n)
    about_valid = about_r > 0.6
    about_len = np.where(about_r < 0.7, 0, np.exp(rng.normal(math.log(250), 1.0, n))).astype(np.int64)
    about = text_windows(rng, about_len, about_valid, html=True)

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
    location = take_strings(
        LOCATIONS + [""], np.where(loc_r < 0.05, len(LOCATIONS), rng.integers(0, len(LOCATIONS), n))
    )
    location = null_unless(location, loc_r < 0.5)

    web_r = rng.random(n)
    names = pc.utf8_lower(take_strings(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n)))
    url = join_strings(
        take_strings(["http://", "https://", "http://www."], rng.integers(0, 3, n)),
        names,
        take_strings(["."], np.zeros(n, np.int64)),
        take_strings(DOMAINS, rng.integers(0, len(DOMAINS), n)),
        take_strings(["", "/", "/blog", "/~me "], rng.integers(0, 4, n)),
    )
    website = null_unless(pc.if_else(pa.array(web_r < 0.08), pa.scalar("", pa.string()), url), web_r < 0.37)

    # Clip before exp: an unclipped lognormal tail overflows to inf, which casts to a negative int64.
    rep = np.where(rng.random(n) < 0.4, 1, np.exp(np.minimum(rng.lognormal(1.5, 0.6, n), 13.0))).astype(np.int64)
    rep = np.minimum(rep, 500_000)
    cols: dict[str, pa.Array] = {
        "Id": int32_array(ctx.ids("Users", idx)),
        "AboutMe": about,
        "Age": int32_array(rng.integers(13, 80, n), rng.random(n) < 0.25),
        "CreationDate": timestamp_array(created),
        "DisplayName": display_names(rng, n),
        "DownVotes": int32_array(rng.poisson(0.8, n) * (rng.random(n) < 0.3)),
        "EmailHash": email,
        "LastAccessDate": timestamp_array(last_access),
        "Location": location,
        "Reputation": int32_array(rep),
        "UpVotes": int32_array((rng.exponential(15, n) * (rng.random(n) < 0.5)).astype(np.int64)),
        "Views": int32_array(rng.poisson(np.sqrt(rep) * 2)),
        "WebsiteUrl": website,
        "AccountId": int32_array(idx * 3 + 100 + rng.integers(0, 3, n), rng.random(n) < 0.9),
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
    return pos, ticks_at(pos) + (rng.random(len(idx)) * 600 * TICKS_PER_SECOND).astype(np.int64)


def _gen_comments(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["Comments"], rng)
    lengths = np.clip(np.exp(rng.normal(math.log(150), 0.7, n)), 15, 697).astype(np.int64)
    lengths[rng.random(n) < 0.002] = 697
    return {
        "Id": int32_array(ctx.ids("Comments", idx)),
        "CreationDate": timestamp_array(ticks),
        "PostId": int32_array(ctx.post_refs(rng, pos, n, p_deleted=0.02)),
        "Score": int32_array(rng.poisson(0.4, n), rng.random(n) > 0.02),
        "Text": text_windows(rng, lengths, None, html=False),
        "UserId": _nullable_ids(ctx.user_refs(rng, pos, n, p_null=0.02, p_community=0.001)),
    }


_VOTE_TYPE_P = np.array([0.08, 0.74, 0.06, 0.003, 0.09, 0.012, 0.001, 0.002, 0.002, 0.006, 0.001, 0.001])
_VOTE_TYPE_IDS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])


def _gen_votes(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, _ = _time_positions(idx, ctx.counts["Votes"], rng)
    vtype = rng.choice(_VOTE_TYPE_IDS, n, p=_VOTE_TYPE_P / _VOTE_TYPE_P.sum())
    ticks = ticks_at(pos)
    day = (ticks // TICKS_PER_DAY) * TICKS_PER_DAY  # Votes.CreationDate is whole days in the dumps
    users = ctx.user_refs(rng, pos, n, p_null=0.0, p_community=0.01)
    bounty = rng.choice(np.array([50, 100, 150, 200, 250, 300, 500]), n)
    return {
        "Id": int32_array(ctx.ids("Votes", idx)),
        "PostId": int32_array(ctx.post_refs(rng, pos, n, p_deleted=0.03)),
        "UserId": int32_array(users, (vtype == 5) | (vtype == 8)),
        "BountyAmount": int32_array(bounty, (vtype == 8) | (vtype == 9)),
        "VoteTypeId": int32_array(vtype),
        "CreationDate": timestamp_array(day),
    }


def _gen_badges(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["Badges"], rng)
    users = ctx.user_refs(rng, pos, n, p_null=0.0, p_community=0.0005)
    names = take_strings(BADGE_NAMES, (rng.random(n) ** 2.5 * len(BADGE_NAMES)).astype(np.int64))
    whole_day = rng.random(n) < 0.05
    ticks = np.where(whole_day, (ticks // TICKS_PER_DAY) * TICKS_PER_DAY, ticks)
    return {
        "Id": int32_array(ctx.ids("Badges", idx)),
        "Name": names,
        "UserId": int32_array(users),
        "Date": timestamp_array(ticks),
    }


def _gen_postlinks(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos, ticks = _time_positions(idx, ctx.counts["PostLinks"], rng)
    return {
        "Id": int32_array(ctx.ids("PostLinks", idx)),
        "CreationDate": timestamp_array(ticks),
        "PostId": int32_array(ctx.post_refs(rng, pos, n, p_deleted=0.01)),
        "RelatedPostId": int32_array(ctx.post_refs(rng, pos, n, p_deleted=0.05)),
        "LinkTypeId": int32_array(np.where(rng.random(n) < 0.85, 1, 3)),
    }


def _gen_posthistory(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    pos = idx / ctx.counts["PostHistory"]
    pidx = np.minimum((pos * ctx.n_posts).astype(np.int64), ctx.n_posts - 1)
    ticks = ctx.post_ticks(pidx) + (rng.random(n) * 86_400 * TICKS_PER_SECOND).astype(np.int64)
    htype = rng.choice(
        np.array([2, 1, 3, 5, 4, 6, 10, 16, 24, 33]),
        n,
        p=[0.35, 0.12, 0.12, 0.25, 0.04, 0.06, 0.02, 0.01, 0.02, 0.01],
    )
    text_len = np.where(np.isin(htype, [2, 5]), np.exp(rng.normal(math.log(900), 0.8, n)), rng.integers(5, 120, n))
    text = text_windows(rng, text_len.astype(np.int64), rng.random(n) > 0.03, html=True)
    comment_valid = rng.random(n) < 0.3
    comment = text_windows(rng, rng.integers(0, 80, n), comment_valid, html=False)
    users = ctx.user_refs(rng, pos, n, p_null=0.03, p_community=0.02)
    guid = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    guid[:, 6] = (guid[:, 6] & 0x0F) | 0x40
    guid[:, 8] = (guid[:, 8] & 0x3F) | 0x80
    return {
        "Id": int32_array(ctx.ids("PostHistory", idx)),
        "PostHistoryTypeId": int32_array(htype),
        "PostId": int32_array(ctx.post_ids(pidx)),
        "RevisionGUID": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(guid)]),
        "CreationDate": timestamp_array(ticks),
        "UserId": _nullable_ids(users),
        "UserDisplayName": from_pool("names", rng, n, users == -2),
        "Comment": comment,
        "Text": text,
    }


def _gen_tags(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
    n = len(idx)
    v = len(TAG_NAMES)
    base = take_strings(TAG_NAMES, idx % v)
    gen = idx // v
    suffix = null_unless(
        join_strings(take_strings(["-"], np.zeros(n, np.int64)), pc.cast(pa.array(gen), pa.string())), gen > 0
    )
    counts = (np.exp(rng.normal(3, 2, n)) + 1).astype(np.int64)
    has_wiki = rng.random(n) < 0.3
    return {
        "Id": int32_array(ctx.ids("Tags", idx)),
        "TagName": join_strings(base, suffix),
        "Count": int32_array(np.minimum(counts, 2_000_000)),
        "ExcerptPostId": int32_array(ctx.post_ids(rng.integers(0, ctx.n_posts, n)), has_wiki),
        "WikiPostId": int32_array(ctx.post_ids(rng.integers(0, ctx.n_posts, n)), has_wiki),
    }


def _gen_lookup(name: str) -> Callable[[ScaleContext, np.random.Generator, I64], dict[str, pa.Array]]:
    """A generator for a lookup table: its fixed rows, no randomness."""

    def gen(ctx: ScaleContext, rng: np.random.Generator, idx: I64) -> dict[str, pa.Array]:
        rows = LOOKUPS[name]
        col = table(name).columns[1].name
        return {"Id": int32_array(np.array([rows[i][0] for i in idx])), col: pa.array([rows[i][1] for i in idx])}

    return gen


GENERATORS: dict[str, Callable[[ScaleContext, np.random.Generator, I64], dict[str, pa.Array]]] = {
    "Posts": _gen_posts,
    "Users": _gen_users,
    "Comments": _gen_comments,
    "Votes": _gen_votes,
    "Badges": _gen_badges,
    "PostLinks": _gen_postlinks,
    "PostHistory": _gen_posthistory,
    "Tags": _gen_tags,
    **{name: _gen_lookup(name) for name in LOOKUPS},
}
"""Each table's generator: (context, chunk's random stream, row indexes) to columns by name."""
