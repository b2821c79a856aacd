"""The engine registry: which engine a URL's scheme chooses, what it can do, how to open it.

Each engine is a module (or package) here that exports CAPABILITIES, SOURCE and TARGET; this list is the only
place that names them. Engine modules are imported on first use, so a run touches only the drivers it needs.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from urllib.parse import urlsplit

from ray_replicator.engines.base import Capabilities, Source, Target, UsageError

ENGINE_MODULES = {
    "postgres": ("ray_replicator.engines.postgres", ("postgresql", "postgres")),
    "mssql": ("ray_replicator.engines.mssql", ("mssql", "sqlserver")),
}
"""engine name -> (module, URL schemes). The schemes are here too so that naming an engine needs no import."""

SCHEMES = tuple(scheme for _, schemes in ENGINE_MODULES.values() for scheme in schemes)


def engine_of(url: str) -> str:
    """The engine a URL chooses, by its scheme (a "+driver" suffix is ignored)."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    for name, (_, schemes) in ENGINE_MODULES.items():
        if scheme in schemes:
            return name
    shown = " or ".join(f"{schemes[0]}://" for _, schemes in ENGINE_MODULES.values())
    raise UsageError(f"unsupported URL scheme {scheme or '(none)'!r}; use {shown}")


@cache
def _module(name: str) -> ModuleType:
    return importlib.import_module(ENGINE_MODULES[name][0])


def capabilities(engine: str) -> Capabilities:
    """What an engine (a name engine_of gives) can do, without connecting."""
    caps = _module(engine).CAPABILITIES
    assert isinstance(caps, Capabilities)
    return caps


def capabilities_of(*urls: str) -> tuple[Capabilities, ...]:
    """The capabilities of each URL's engine (to classify a failure that involved those endpoints)."""
    return tuple(capabilities(engine_of(url)) for url in urls)


def open_source(url: str) -> Source:
    """Open a source for a resolved URL (password included)."""
    source = _module(engine_of(url)).SOURCE(url)
    assert isinstance(source, Source)
    return source


def open_target(url: str) -> Target:
    """Open a target for a resolved URL (password included)."""
    target = _module(engine_of(url)).TARGET(url)
    assert isinstance(target, Target)
    return target


def source_url_for(source_url: str, target_url: str) -> str:
    """The source URL copy tasks and verify read with: the read policies it leaves to the target resolved by the
    target's capabilities (SQL Server's hundred_ns=auto keeps 100 ns only for a target that holds them)."""
    source = _module(engine_of(source_url)).SOURCE
    assert issubclass(source, Source)
    return source.url_for_target(source_url, capabilities(engine_of(target_url)))
