"""The benchmarks' SQL Server: a stand-in on 127.0.0.1, in its own process, holding a generated StackOverflow2010.

    with standin(0.1) as src:          # loaded (generation + Engine.load_arrow run inside the child process)
        src.url(reader="pymssql")      # mssql://sa:…@127.0.0.1:<port>/StackOverflow2010?reader=pymssql
    with standin(None, bulk_dir=d):    # empty, a target; BULK INSERT may read files from d

The helpers live in ray_replicator.demo (the demo needs them and the package must not import benchmarks/).
Nothing is cached on disk: the stand-in keeps its DuckDB database in memory and its declared-type catalog in
Python objects, with no way to save or reopen them; loading scale 0.1 takes about ten seconds anyway.

    python benchmarks/standin_so.py --scale 0.01     # start, print the URL and row counts, stop
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

# The repository first: run as a script, only benchmarks/ would be on the path (and mssql_standin must be the
# repository's, whatever an older editable install maps it to).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ray_replicator.demo import STANDIN_DATABASE as DATABASE  # noqa: E402
from ray_replicator.demo import STANDIN_PASSWORD as PASSWORD  # noqa: E402
from ray_replicator.demo import STANDIN_USER as USER  # noqa: E402
from ray_replicator.demo import StandIn  # noqa: E402
from ray_replicator.demo import stackoverflow_standin as standin  # noqa: E402

__all__ = ["DATABASE", "PASSWORD", "USER", "StandIn", "mssql_python_connect", "standin"]


def mssql_python_connect(srv: StandIn) -> Any:
    """An autocommit mssql-python connection to the stand-in (Encrypt=no: the stand-in's certificate is
    self-signed)."""
    import mssql_python

    return mssql_python.connect(
        f"Server={srv.host},{srv.port};Database={DATABASE};UID={USER};PWD={PASSWORD};Encrypt=no;PacketSize=32767",
        autocommit=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    t0 = time.perf_counter()
    with standin(args.scale, args.seed) as srv:
        print(f"started in {time.perf_counter() - t0:.1f} s: {srv.url().replace(PASSWORD, '***')}")
        conn = mssql_python_connect(srv)
        cur = conn.cursor()
        cur.execute(
            "SELECT t.name, SUM(p.rows) FROM sys.tables t JOIN sys.partitions p ON p.object_id = t.object_id "
            "AND p.index_id IN (0, 1) GROUP BY t.name ORDER BY t.name"
        )
        for name, rows in cur.fetchall():
            print(f"  {name:10s} {rows:>10,}")
        conn.close()


if __name__ == "__main__":
    main()
