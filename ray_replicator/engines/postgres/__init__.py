"""The PostgreSQL engine: source and target over asyncpg (control work, raw binary COPY) and ADBC (Arrow).

url (URLs per driver), connect (connections, errors, counts), types (the type table), predicate (ranges as SQL),
split (boundaries), catalog, read (PostgresSource), arrow (batches made engine-neutral), write (PostgresTarget),
ddl (tables, keys, indexes, finalization), ledger (the run's state in the target), digest (hashing in the server).
"""

from __future__ import annotations

from ray_replicator.engines.postgres.catalog import large_values_compressed
from ray_replicator.engines.postgres.connect import CAPABILITIES, PostgresEndpoint
from ray_replicator.engines.postgres.ddl import retarget_index
from ray_replicator.engines.postgres.ledger import LEDGER_SCHEMA, PostgresLedger
from ray_replicator.engines.postgres.names import pg_name
from ray_replicator.engines.postgres.predicate import Predicate, range_predicate
from ray_replicator.engines.postgres.read import PostgresSource
from ray_replicator.engines.postgres.sql import qualified, quote_ident
from ray_replicator.engines.postgres.write import PostgresTarget

SOURCE = PostgresSource
TARGET = PostgresTarget

__all__ = [
    "CAPABILITIES",
    "LEDGER_SCHEMA",
    "SOURCE",
    "TARGET",
    "PostgresEndpoint",
    "PostgresLedger",
    "PostgresSource",
    "PostgresTarget",
    "Predicate",
    "large_values_compressed",
    "pg_name",
    "qualified",
    "quote_ident",
    "range_predicate",
    "retarget_index",
]
