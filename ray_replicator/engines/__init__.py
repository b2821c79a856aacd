"""Engine plugins, chosen by the endpoint URL's scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from ray_replicator.engines.base import Source, Target, UsageError


def engine_of(url: str) -> str:
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("mssql", "sqlserver"):
        return "mssql"
    raise UsageError(f"unsupported URL scheme {scheme or '(none)'!r}; use postgresql:// or mssql://")


def open_source(url: str) -> Source:
    """Open a source for a resolved URL (password included); imports the engine lazily."""
    engine = engine_of(url)
    if engine == "postgres":
        from ray_replicator.engines.postgres import PostgresSource

        return PostgresSource(url)
    from ray_replicator.engines.mssql import MssqlSource  # type: ignore[import-not-found,unused-ignore]

    return MssqlSource(url)  # type: ignore[no-any-return,unused-ignore]


def open_target(url: str) -> Target:
    engine = engine_of(url)
    if engine == "postgres":
        from ray_replicator.engines.postgres import PostgresTarget

        return PostgresTarget(url)
    from ray_replicator.engines.mssql import MssqlTarget  # type: ignore[import-not-found,unused-ignore]

    return MssqlTarget(url)  # type: ignore[no-any-return,unused-ignore]
