"""The connections a Ray worker keeps between tasks: the latest few sources and targets, by URL.

Copy, count and checksum tasks open their own source and target from the resolved URLs (nothing but the plan item
crosses the wire), and a worker runs many of them: each opens its endpoints once and reuses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ray_replicator.engines import open_source, open_target
from ray_replicator.engines.base import Source, Target

_SOURCES: dict[str, Source] = {}
_TARGETS: dict[str, Target] = {}
CACHED_ENDPOINTS = 2
"""Connections a worker keeps per side. A run uses one source and one target, but a worker outlives runs (a Ray
cluster serving many jobs, a benchmark making a database per run): without a bound, every earlier run's
connections stayed open and each worker's memory grew run after run."""


def cached(cache: dict[str, Any], url: str, open_endpoint: Callable[[str], Any]) -> Any:
    """The endpoint for `url` from `cache`, opened when missing; the least recently used one is closed to make
    room."""
    if url in cache:
        cache[url] = cache.pop(url)  # most recently used last
        return cache[url]
    while len(cache) >= CACHED_ENDPOINTS:
        idle = cache.pop(next(iter(cache)))  # least recently used; no task is using it between tasks
        with contextlib.suppress(Exception):
            idle.close()
    cache[url] = open_endpoint(url)
    return cache[url]


def cached_source(url: str) -> Source:
    return cached(_SOURCES, url, open_source)


def cached_target(url: str) -> Target:
    return cached(_TARGETS, url, open_target)


def drop_cached(url: str) -> None:
    """A failed connection is not reused: a retry opens a fresh one."""
    for cache in (_SOURCES, _TARGETS):
        conn = cache.pop(url, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.abort()
