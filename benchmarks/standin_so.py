"""The benchmarks' SQL Server: a stand-in on 127.0.0.1, in its own process, holding a generated StackOverflow2010.

    with standin(0.1) as src:          # loaded (generation + Engine.load_arrow run inside the child process)
        src.url(reader="pymssql")      # mssql://sa:…@127.0.0.1:<port>/StackOverflow2010?reader=pymssql
    with standin(None, bulk_dir=d):    # empty, a target; BULK INSERT may read files from d

The stand-in side lives in mssql_standin.preloaded; the data comes from ray_replicator.synth. Nothing is cached on
disk unless `data_dir=DIR` is given (the next start with the same DIR and scale reopens the load instead of generating
it again); loading scale 0.1 takes about ten seconds anyway.

    python benchmarks/standin_so.py --scale 0.01     # start, print the URL and row counts, stop
    python benchmarks/standin_so.py --scale 1.0 --data-dir /var/tmp/so-1.0   # twice: generate, then reopen
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

# The repository first: run as a script, only benchmarks/ would be on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser  # noqa: E402
from mssql_standin.preloaded import DATABASE, PASSWORD, USER, Preload, StandIn, mssql_python_connect, preloaded_standin  # noqa: E402  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

__all__ = ["DATABASE", "PASSWORD", "USER", "StandIn", "mssql_python_connect", "standin"]


@contextlib.contextmanager
def standin(scale: float | None, seed: int = 42, **options: Any) -> Iterator[StandIn]:
    """A stand-in holding StackOverflow2010 at `scale` (None: empty, a target); options are preloaded_standin's
    (bulk_dir, encryption, ...)."""
    preload = None
    if scale is not None:
        batches = functools.partial(so.generate_batches, scale=scale, seed=seed, batch_rows=so.CHUNK_ROWS)
        preload = Preload(so.TABLES, batches, f"StackOverflow2010 scale {scale} seed {seed}")
    with preloaded_standin(preload, **options) as srv:
        yield srv


def main() -> None:
    parser = scale_parser(__doc__, 0.01)
    parser.add_argument("--data-dir", help="keep the load there; the next start with the same one reopens it")
    args = parser.parse_args()
    t0 = time.perf_counter()
    options = {"data_dir": args.data_dir} if args.data_dir else {}
    with standin(args.scale, args.seed, **options) as srv:
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
