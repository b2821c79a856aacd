"""Synthetic source databases for tests and benchmarks (StackOverflow2010 today)."""

from ray_replicator.synth.stackoverflow import (
    EXTRA_TABLES,
    TABLES,
    SynthColumn,
    SynthTable,
    arrow_schema,
    generate,
    generate_batches,
    mssql_ddl,
    postgres_ddl,
    row_counts,
    write_postgres,
)

__all__ = [
    "EXTRA_TABLES",
    "TABLES",
    "SynthColumn",
    "SynthTable",
    "arrow_schema",
    "generate",
    "generate_batches",
    "mssql_ddl",
    "postgres_ddl",
    "row_counts",
    "write_postgres",
]
