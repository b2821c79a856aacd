"""The synthetic StackOverflow2010 carries the real schema and row-count proportions."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ray_replicator.synth import stackoverflow as so
from tests.synth.generated import SMALL


def test_row_counts_follow_the_real_database() -> None:
    full = so.row_counts(1.0)
    assert sum(full.values()) == 19_310_703
    assert full == so.REAL_ROW_COUNTS | full
    small = so.row_counts(SMALL)
    assert set(small) == {t.name for t in so.TABLES}
    assert all(n >= 1 for n in small.values())
    assert (small["VoteTypes"], small["PostTypes"], small["LinkTypes"]) == (15, 8, 2)
    assert small["Votes"] == 10_143 and small["Posts"] == 3_729
    tiny = so.row_counts(1e-7)
    assert all(n >= 1 for n in tiny.values()) and tiny["VoteTypes"] == 15
    extra = so.row_counts(SMALL, include_extra=True)
    assert extra["PostHistoryTypes"] == 29 and extra["PostHistory"] > extra["Posts"] and extra["Tags"] >= 1
    with pytest.raises(ValueError):
        so.row_counts(0)
    with pytest.raises(ValueError, match="beyond SQL Server's int"):
        next(so.generate_batches("Votes", 500.0, 1))


def test_schema_constants() -> None:
    assert [t.name for t in so.TABLES] == [
        "Badges", "Comments", "LinkTypes", "PostLinks", "Posts", "PostTypes", "Users", "VoteTypes", "Votes",
    ]  # fmt: skip
    pks = {t.name: t.pk_name for t in so.TABLES}
    assert pks["Users"] == "PK_Users_Id" and pks["VoteTypes"] == "PK_VoteType__Id"
    assert pks["Posts"] == "PK_Posts__Id" and pks["Badges"] == "PK_Badges__Id"
    for t in so.TABLES + so.EXTRA_TABLES:
        assert t.columns[0] == so.SynthColumn("Id", "int", nullable=False, identity=True)
        assert t.pk_columns == ("Id",)
    posts = {c.name: c for c in so.table("Posts").columns}
    assert len(posts) == 20
    assert not posts["ViewCount"].nullable and not posts["Body"].nullable and posts["Title"].nullable
    assert posts["Body"].sql_type == "nvarchar(max)" and posts["Tags"].sql_type == "nvarchar(150)"
    assert so.table("LinkTypes").columns[1].sql_type == "varchar(50)"
    assert so.table("PostHistory").columns[3] == so.SynthColumn("RevisionGUID", "uniqueidentifier")
    schema = so.arrow_schema("PostHistory")
    assert schema.field("RevisionGUID").type == pa.binary(16)
    assert schema.field("CreationDate").type == pa.timestamp("ms")
    assert schema.field("Id").type == pa.int32() and not schema.field("Id").nullable
    with pytest.raises(KeyError, match="Nope"):
        so.table("Nope")
