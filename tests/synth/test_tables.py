"""Each generated table carries the quirks of the real one that break replication tools."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tests.synth.generated import SMALL, TWO_CHUNKS, column, generated_table


def _frac(values: list[object], pred: Callable[[object], bool]) -> float:
    return sum(1 for v in values if pred(v)) / len(values)


def test_users_quirks() -> None:
    users = generated_table("Users", 0.02)
    ids = column(users, "Id")
    assert ids[0] == -1 and column(users, "DisplayName")[0] == "Community"
    web = column(users, "WebsiteUrl")
    assert 0.58 < _frac(web, lambda v: v is None) < 0.68
    assert 0.05 < _frac(web, lambda v: v == "") < 0.11
    loc = column(users, "Location")
    assert None in loc and "" in loc
    about = column(users, "AboutMe")
    assert None in about and "" in about
    names = [str(v) for v in column(users, "DisplayName")]
    assert any(n != n.rstrip(" ") for n in names), "trailing spaces"
    assert any("\u00a0" in n for n in names) and any("\u200b" in n for n in names)
    assert any(any(ord(ch) > 0xFFFF for ch in n) for n in names), "characters outside the BMP"
    distinct = set(names)
    assert any(n.lower() in distinct and n.lower() != n for n in distinct), "case-only twins"
    assert {"José", "Jose"} <= {n.split()[0] for n in names if n.split()}, "accent-only twins"
    assert all(len(n.encode("utf-16-le")) // 2 <= 40 for n in names)


def test_posts_quirks() -> None:
    posts = generated_table("Posts", TWO_CHUNKS)
    ids = np.array(column(posts, "Id"))
    assert (np.diff(ids) > 0).all() and (np.diff(ids) > 1).any(), "increasing ids with gaps"
    types = np.array(column(posts, "PostTypeId"))
    title, tags, views = column(posts, "Title"), column(posts, "Tags"), column(posts, "ViewCount")
    answers = np.flatnonzero(types == 2)
    questions = np.flatnonzero(types == 1)
    assert len(answers) > len(questions) > 0
    assert all(title[i] is None and tags[i] is None and views[i] == 0 for i in answers)
    assert all(title[i] and tags[i] and str(tags[i]).startswith("<") for i in questions)
    assert None not in views
    parents = column(posts, "ParentId")
    qids = set(ids[questions].tolist())
    assert _frac([parents[i] for i in answers], lambda v: v in qids) > 0.9
    owners = column(posts, "OwnerUserId")
    assert -1 in owners and None in owners

    body = posts.column("Body")
    lengths = pc.utf8_length(body).to_numpy()
    assert (lengths == 0).sum() >= 1, "a few empty bodies"
    assert 600 < np.median(lengths) < 1600
    assert (lengths >= 20_000).sum() >= 2 and lengths.max() >= 100_000
    texts = body.to_pylist()
    assert any("\r\n" in t for t in texts)
    assert any(any(ord(ch) > 0xFFFF for ch in t) for t in texts[:2000])
    for col, limit in (("Title", 250), ("Tags", 150), ("LastEditorDisplayName", 40)):
        values = [str(v) for v in column(posts, col) if v is not None]
        assert all(len(v.encode("utf-16-le")) // 2 <= limit for v in values), col


def test_small_scale_keeps_long_bodies() -> None:
    lengths = pc.utf8_length(generated_table("Posts", SMALL).column("Body")).to_numpy()
    assert (lengths >= 20_000).sum() >= 2 and (lengths == 0).any()


def test_references_to_deleted_rows() -> None:
    post_ids = set(column(generated_table("Posts", TWO_CHUNKS), "Id"))
    user_ids = set(column(generated_table("Users", TWO_CHUNKS), "Id"))
    votes = generated_table("Votes", TWO_CHUNKS)
    dangling = _frac(column(votes, "PostId"), lambda v: v not in post_ids)
    assert 0.005 < dangling < 0.1
    comments = generated_table("Comments", TWO_CHUNKS)
    users = [u for u in column(comments, "UserId") if u is not None]
    assert -1 in users and any(u not in user_ids for u in users)
    texts = [str(t) for t in column(comments, "Text")]
    assert all(len(t.encode("utf-16-le")) // 2 <= 700 for t in texts)
    assert any("\r\n" in t for t in texts)


def test_lookup_tables_in_full_with_sparse_ids() -> None:
    assert column(generated_table("LinkTypes"), "Id") == [1, 3]
    assert (
        column(generated_table("VoteTypes"), "Id")[-1] == 16 and len(column(generated_table("VoteTypes"), "Id")) == 15
    )
    assert column(generated_table("PostTypes"), "Type")[:2] == ["Question", "Answer"]
    assert column(generated_table("PostHistoryTypes"), "Id")[-1] == 38


def test_datetime_grid() -> None:
    for name, col in (("Posts", "CreationDate"), ("Comments", "CreationDate"), ("Users", "LastAccessDate")):
        ms = generated_table(name).column(col).cast(pa.int64()).to_numpy()
        assert set(np.unique(ms % 10).tolist()) == {0, 3, 7}, (name, col)
        assert ms.min() >= 1_217_462_400_000 and ms.max() < 1_293_840_000_000  # 2008-07-31 .. 2010-12-31
    votes = generated_table("Votes").column("CreationDate").cast(pa.int64()).to_numpy()
    assert (votes % 86_400_000 == 0).all(), "Votes.CreationDate is whole days"
    badges = generated_table("Badges", 0.01).column("Date").cast(pa.int64()).to_numpy()
    assert 0 < (badges % 86_400_000 == 0).mean() < 0.2


def test_posthistory_guids() -> None:
    ph = generated_table("PostHistory")
    guids = column(ph, "RevisionGUID")
    assert len(set(guids)) == len(guids) and all(len(g) == 16 for g in guids)  # type: ignore[arg-type]
