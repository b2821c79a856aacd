"""A synthetic StackOverflow2010: the schema, row-count proportions and data quirks of the real database.

The real database is 10 GB and cannot ship with tests or benchmarks, yet the quirks it carries (NULL versus
'', the Id -1 Community user, sparse ids, dangling references, CR LF, emoji, 100 KB bodies, the 1/300 s
datetime grid) are exactly what breaks replication tools. This package reproduces them at any scale.

Determinism: every table is generated in fixed chunks of ``CHUNK_ROWS`` rows, each from its own random
stream keyed by (seed, table, chunk), and ids, dates and references are closed-form functions of the row
index. The output therefore depends only on (scale, seed), never on the batch size, and any chunk can be
produced without the others (bounded memory, and later parallel generation).

This module is the generator's public surface; the work is done, by responsibility, in ``schema`` (tables
and row counts), ``values``, ``vocabulary`` and ``text`` (column values), ``tables`` (one generator per
table), ``batches`` (chunks to record batches), ``ddl`` (CREATE TABLE text) and ``load`` (filling a database).
"""

from ray_replicator.synth.batches import CHUNK_ROWS, chunk_count, generate_batches, reader
from ray_replicator.synth.ddl import mssql_ddl, postgres_ddl, postgres_pk_ddl
from ray_replicator.synth.load import generate, write_mssql, write_postgres
from ray_replicator.synth.schema import (
    EXTRA_TABLES,
    REAL_ROW_COUNTS,
    TABLES,
    SynthColumn,
    SynthTable,
    arrow_schema,
    arrow_type,
    row_counts,
    table,
)

__all__ = [
    "CHUNK_ROWS",
    "EXTRA_TABLES",
    "REAL_ROW_COUNTS",
    "TABLES",
    "SynthColumn",
    "SynthTable",
    "arrow_schema",
    "arrow_type",
    "chunk_count",
    "generate",
    "generate_batches",
    "mssql_ddl",
    "postgres_ddl",
    "postgres_pk_ddl",
    "reader",
    "row_counts",
    "table",
    "write_mssql",
    "write_postgres",
]
