"""A range's rows hashed by the server: verify moves three numbers per range instead of the rows."""

from __future__ import annotations

from typing import Any

from ray_replicator.catalog import Table
from ray_replicator.engines.postgres.predicate import Predicate
from ray_replicator.engines.postgres.sql import qualified, quote_ident

HASH_PROBE_SQL = "SELECT current_setting('server_encoding') AS enc, hashtextextended('ray-replicator ✓ 0', 42) AS h"
"""The server encoding and the hash of a fixed text: two servers that agree on both hash row text alike (the hash
function's bytes depend on the platform)."""

_MASK = (1 << 64) - 1


def digest_sql(table: Table, pred: Predicate, columns: list[str]) -> str:
    """Rows, sum and xor (mod 2^64) of a 64-bit hash of each row's values as text: between two PostgreSQL
    databases with the same column types a value's text is a canonical form of it (the session fixes DateStyle,
    TimeZone, IntervalStyle and extra_float_digits)."""
    # Each column's text hashed with its own seed (NULL gets a constant of its own, so '' and NULL differ),
    # combined by xor: no ROW()::text, whose quoting pass over every character costs 3x the hashing. COLLATE "C":
    # under a nondeterministic collation (case-insensitive ICU) the hash is of the sort key, 'a' and 'A' alike.
    row = " # ".join(
        f'coalesce(hashtextextended({quote_ident(c)}::text COLLATE "C", {i + 1}), {-7919 * (i + 1)})'
        for i, c in enumerate(columns)
    )
    return (
        "SELECT count(*), coalesce(sum(h::numeric) % 18446744073709551616, 0)::text, coalesce(bit_xor(h), 0) "
        f"FROM (SELECT {row or '0'} AS h FROM {qualified(table.schema, table.name)} WHERE {pred.sql}) s"
    )


def digest_of(row: Any) -> tuple[int, int, int]:
    """(rows, sum, xor) of digest_sql's row, the sums as unsigned 64-bit numbers."""
    return int(row[0]), int(row[1]) & _MASK, int(row[2]) & _MASK
