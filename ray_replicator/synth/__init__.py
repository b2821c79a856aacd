"""Synthetic source databases for tests and benchmarks (StackOverflow2010 today)."""

from ray_replicator.synth.stackoverflow import (
    EXTRA_TABLES,
    REAL_ROW_COUNTS,
    TABLES,
    SynthColumn,
    SynthTable,
    arrow_schema,
    arrow_type,
    generate,
    generate_batches,
    mssql_ddl,
    postgres_ddl,
    postgres_pk_ddl,
    reader,
    row_counts,
    table,
    write_postgres,
)

__all__ = [
    "EXTRA_TABLES",
    "REAL_ROW_COUNTS",
    "TABLES",
    "SynthColumn",
    "SynthTable",
    "arrow_schema",
    "arrow_type",
    "generate",
    "generate_batches",
    "mssql_ddl",
    "postgres_ddl",
    "postgres_pk_ddl",
    "reader",
    "row_counts",
    "table",
    "write_postgres",
]
