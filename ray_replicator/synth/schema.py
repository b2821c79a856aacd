"""The StackOverflow2010 schema: tables and columns as SQL Server declares them, row counts, Arrow types.

Everything else in the generator (values, batches, DDL, loading) is derived from these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


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
LOOKUPS: dict[str, list[tuple[int, str]]] = {
    "VoteTypes": _VOTE_TYPES,
    "PostTypes": _POST_TYPES,
    "LinkTypes": _LINK_TYPES,
    "PostHistoryTypes": _POST_HISTORY_TYPES,
}
"""The lookup tables' (Id, name) rows, always generated in full whatever the scale."""


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
    for name, rows in LOOKUPS.items():
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
