"""A worker keeps its connections between ranges, but not every run's: the cache holds the latest few per side
and closes what it lets go, so long-lived workers serving many runs neither pile up connections nor memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ray_replicator.endpoints import CACHED_ENDPOINTS, cached


class FakeEndpoint:
    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def empty_cache() -> Iterator[dict[str, FakeEndpoint]]:
    cache: dict[str, FakeEndpoint] = {}
    yield cache


def test_cache_reuses_and_evicts_the_least_recently_used(empty_cache: dict[str, FakeEndpoint]) -> None:
    opened: list[FakeEndpoint] = []

    def open_endpoint(url: str) -> FakeEndpoint:
        opened.append(FakeEndpoint(url))
        return opened[-1]

    a = cached(empty_cache, "pg://a", open_endpoint)
    b = cached(empty_cache, "pg://b", open_endpoint)
    assert cached(empty_cache, "pg://a", open_endpoint) is a  # reused, and now the most recent
    c = cached(empty_cache, "pg://c", open_endpoint)
    assert [e.url for e in opened] == ["pg://a", "pg://b", "pg://c"]
    assert b.closed and not a.closed and not c.closed
    assert list(empty_cache) == ["pg://a", "pg://c"]
    assert len(empty_cache) == CACHED_ENDPOINTS
