"""What a run decides before it copies, without a database: which tables, which copy method."""

from __future__ import annotations

import pytest

from ray_replicator.choices import choose_method, select_tables
from ray_replicator.config import load_settings
from ray_replicator.engines.base import Capabilities, UsageError

NAMES = [("public", "Users"), ("public", "Posts"), ("audit", "log")]
COPY = Capabilities(name="a", title="A", default_port=1, raw_format="copy-binary")
OTHER_COPY = Capabilities(name="b", title="B", default_port=2, raw_format="copy-binary")
ROWS_ONLY = Capabilities(name="c", title="C", default_port=3)


def test_filters_choose_and_name_what_they_leave_out() -> None:
    chosen, excluded = select_tables("db", NAMES, ["public.*"], ["Posts"])
    assert chosen == [("public", "Users")]
    assert excluded == ["public.Posts", "audit.log"]


def test_an_include_pattern_matching_nothing_is_an_error_naming_the_tables() -> None:
    with pytest.raises(UsageError, match=r"no source table matches --tables 'public\.User'.*public\.Users"):
        select_tables("db", NAMES, ["public.User"], [])


def test_filters_leaving_nothing_and_an_empty_source_are_errors() -> None:
    with pytest.raises(UsageError, match="leave no table to copy of the 3"):
        select_tables("db", NAMES, [], ["*"])
    with pytest.raises(UsageError, match="has no tables"):
        select_tables("db", [], [], [])


@pytest.mark.parametrize(
    ("asked", "source", "target", "method"),
    [
        ("auto", COPY, OTHER_COPY, "raw"),
        ("auto", COPY, ROWS_ONLY, "arrow"),
        ("raw", ROWS_ONLY, COPY, "arrow"),
        ("arrow", COPY, OTHER_COPY, "arrow"),
    ],
)
def test_raw_only_between_engines_sharing_a_raw_format(
    asked: str, source: Capabilities, target: Capabilities, method: str
) -> None:
    settings = load_settings(None, {"source": "postgresql://u@h/db", "copy_method": asked})
    assert choose_method(settings, source, target) == method
