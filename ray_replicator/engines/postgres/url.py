"""A PostgreSQL URL as each driver takes it: libpq (ADBC) with connect_timeout, asyncpg with a timeout argument."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ray_replicator.engines.base import UsageError, connect_timeout_of
from ray_replicator.redact import redact_url, url_secrets


@dataclass(frozen=True)
class PostgresUrl:
    """What an endpoint needs of its URL: one form per driver, the shown form and the secrets to scrub."""

    libpq: str
    asyncpg: str
    display: str
    secrets: tuple[str, ...]
    connect_timeout: float


def connect_target(url: str) -> tuple[str, str]:
    """Host (or unix socket directory) and port a URL connects to, for messages."""
    try:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        host = query.get("host") or parts.hostname or "localhost"
        return host, query.get("port") or str(parts.port or 5432)
    except ValueError:
        return "the server", "?"


def url_with_connect_timeout(url: str, seconds: float) -> tuple[str, str]:
    """(URL for libpq with connect_timeout, URL for asyncpg without it): libpq takes the option (whole seconds, at
    least 2), asyncpg would send it to the server as a setting and takes a timeout argument instead."""
    parts = urlsplit(url)
    # the other options stay exactly as written (decoding and re-encoding them could change what they say)
    plain = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0].lower() != "connect_timeout")
    libpq = "&".join(filter(None, [plain, f"connect_timeout={max(2, math.ceil(seconds))}"]))
    rebuilt = (parts.scheme, parts.netloc, parts.path)
    return urlunsplit((*rebuilt, libpq, parts.fragment)), urlunsplit((*rebuilt, plain, parts.fragment))


def parse_url(url: str) -> PostgresUrl:
    """Check that `url` is a PostgreSQL URL and resolve its connect_timeout (the URL's, else the config default)."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"not a PostgreSQL URL: {redact_url(url)} (expected postgresql://user@host/db)")
    try:
        query = urlsplit(url).query
    except ValueError as exc:
        raise UsageError(f"cannot parse the PostgreSQL URL {redact_url(url)}: {exc}") from None
    if "connect_timeout" in query.lower():
        seconds = connect_timeout_of(query, 0.0)
    else:
        from ray_replicator.config import CONNECT_TIMEOUT_S  # a pipeline URL names it: workers skip pydantic

        seconds = CONNECT_TIMEOUT_S
    libpq, asyncpg = url_with_connect_timeout(url, seconds)
    return PostgresUrl(libpq, asyncpg, redact_url(url), tuple(url_secrets(url)), seconds)
