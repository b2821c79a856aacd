"""The name a PostgreSQL target gives an identifier PostgreSQL would otherwise cut.

PostgreSQL keeps at most 63 bytes of a name and cuts longer ones silently, so two long names sharing their first
63 bytes would become one. The rule: a name of at most 63 bytes of UTF-8 stays as it is; a longer one becomes its
first 54 bytes (cut on a character boundary) + "_" + the first 8 hex digits of the SHA-256 of the whole name. Every
SQL text the PostgreSQL engine writes names things through quote_ident, which applies the rule, so DDL, COPY
column lists, range predicates, verify and finalize all name the same object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ray_replicator.engines.base import UsageError

MAX_NAME_BYTES = 63
_HASH_HEX = 8
_KEPT_BYTES = MAX_NAME_BYTES - _HASH_HEX - 1


def pg_name(name: str) -> str:
    """The name PostgreSQL gets for `name` (see the module's rule)."""
    raw = name.encode()
    if len(raw) <= MAX_NAME_BYTES:
        return name
    head = raw[:_KEPT_BYTES].decode(errors="ignore")
    return f"{head}_{hashlib.sha256(raw).hexdigest()[:_HASH_HEX]}"


def is_mapped(name: str) -> bool:
    return pg_name(name) != name


def check_unique(namespace: str, names: Iterable[str]) -> None:
    """Refuse two source names of one namespace that get one PostgreSQL name (a hash collision, or a short name
    spelled like another's mapped form)."""
    seen: dict[str, str] = {}
    for name in names:
        short = pg_name(name)
        if short in seen and seen[short] != name:
            raise UsageError(
                f"{namespace}: {seen[short]!r} and {name!r} both become {short!r} in PostgreSQL (names longer than "
                f"{MAX_NAME_BYTES} bytes are shortened); rename one at the source"
            )
        seen[short] = name
