"""Split boundaries: keys that cut a table's (or one key range's) rows into about equal counts, in the database's
own sort order. A small table or any range is cut exactly (row_number over the keys); a large whole table from a
sample of its rows."""

from __future__ import annotations

from typing import Any

from ray_replicator.catalog import Table
from ray_replicator.engines.postgres.predicate import Predicate
from ray_replicator.engines.postgres.sql import qualified, quote_ident

EXACT_SPLIT_ROWS = 500_000
"""A whole table of at most this many rows (estimated) is cut exactly; a larger one from a sample."""
_SYSTEM_SAMPLE_PAGES = 20_000


def _keys(keys: tuple[str, ...]) -> tuple[str, str]:
    """The key columns as a select list and their non-NULL condition."""
    idents = ", ".join(quote_ident(k) for k in keys)
    return idents, " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)


def exact_cuts_sql(table: Table, keys: tuple[str, ...], pred: Predicate) -> str:
    """Every key where the row number crosses the next of $1 equal parts, over the rows of `pred`."""
    idents, not_null = _keys(keys)
    return (
        f"SELECT {idents} FROM (SELECT {idents}, row_number() OVER (ORDER BY {idents}) AS rn__, "
        f"count(*) OVER () AS n__ FROM {qualified(table.schema, table.name)} WHERE {pred.sql} AND {not_null}) s "
        f"WHERE rn__ > 1 AND ((rn__ - 1) * $1::int8) / n__ > ((rn__ - 2) * $1::int8) / n__ ORDER BY {idents}"
    )


def sample_sql(table: Table, keys: tuple[str, ...], parts: int) -> tuple[str, float]:
    """The sampled keys of a whole table in order, and the sample's percentage ($1)."""
    idents, not_null = _keys(keys)
    target = max(parts * 200, 20_000)
    pct = min(100.0, 100.0 * target / max(table.row_estimate, 1))
    method = "BERNOULLI"
    if table.physical_pages > _SYSTEM_SAMPLE_PAGES:
        # BERNOULLI reads every page; SYSTEM reads only the sampled ones. Enough pages (with their rows in
        # key order or not) still give quantiles within a few percent, and any boundaries stay correct.
        method = "SYSTEM"
        pct = min(100.0, 100.0 * max(parts * 50, _SYSTEM_SAMPLE_PAGES // 10) / table.physical_pages)
    sql = (
        f"SELECT {idents} FROM {qualified(table.schema, table.name)} TABLESAMPLE {method} ($1::float8) "
        f"REPEATABLE (42) WHERE {not_null} ORDER BY {idents}"
    )
    return sql, pct


def sample_cuts(sample: list[tuple[Any, ...]], parts: int) -> list[tuple[Any, ...]]:
    """Up to parts-1 distinct keys at equal steps through an ordered sample."""
    cuts: list[tuple[Any, ...]] = []
    for i in range(1, parts):
        pos = i * len(sample) // parts
        if 0 < pos < len(sample) and (not cuts or sample[pos] != cuts[-1]):
            cuts.append(sample[pos])
    return cuts
