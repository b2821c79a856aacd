"""`python -m mssql_standin --port 14330`: run the stand-in in the foreground until interrupted.

`python -m mssql_standin run-script -S host,port -U user -P password -d db -i FILE`: run a GO-separated
script against a running stand-in (see `run-script --help`).

Exit codes: 0 stopped normally (SIGTERM, Ctrl-C); 1 an --init script failed (one line naming the file, the
batch, its lines and SQL Server's error; the batches before it stay applied); 2 a wrong command line, unusable
TLS files or an unusable --data-dir."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import signal
import ssl
import sys
import threading

from . import persist, scripts, serve, tls


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["run-script"]:
        return scripts.run_script_main(args_in[1:])
    ap = argparse.ArgumentParser(prog="python -m mssql_standin", description=__doc__)
    ap.add_argument("--port", type=int, default=14330)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--database", default="master")
    ap.add_argument(
        "--encryption",
        choices=["off", "on", "notsup", "strict"],
        default="off",
        help="off: only LOGIN7 is encrypted unless the client asks for more (SQL Server's default); on: forced; "
        "notsup: no TLS; strict: TDS 8.0 only (TLS before the first packet)",
    )
    ap.add_argument("--tls-cert", help="PEM certificate (chain) to serve; default a self-signed one made at start")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument(
        "--init",
        type=pathlib.Path,
        action="append",
        default=[],
        help="GO-separated T-SQL script run before accepting clients (repeatable, run in order; also at every "
        "start on a --data-dir)",
    )
    ap.add_argument(
        "--data-dir",
        type=pathlib.Path,
        help="keep the database in DIR/<database>.duckdb (with its catalog) and reopen it at the next start; "
        "default: in memory",
    )
    ap.add_argument("--bulk-dir", help="directory BULK INSERT ... FROM may read")
    ap.add_argument("--packet-size", type=int, default=4096, help="used when the client lets the server decide")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(args_in)
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    if args.tls_cert is not None:
        try:
            tls.server_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"error: cannot use --tls-cert {args.tls_cert} / --tls-key {args.tls_key}: {exc}", file=sys.stderr)
            return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serve(
            args.database,
            user=args.user,
            password=args.password,
            encryption=args.encryption,
            host=args.host,
            port=args.port,
            packet_size=args.packet_size,
            bulk_dir=args.bulk_dir,
            init_files=args.init,
            data_dir=args.data_dir,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        ) as srv:
            print(f"mssql_standin listening on {srv.host}:{srv.port} (database {args.database})", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except scripts.ScriptFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except persist.StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def console() -> None:
    """The `mssql-standin` command."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every session is closed by now; skipping interpreter teardown avoids an intermittent abort
    # ("terminate called ... exception not rethrown") while DuckDB/Arrow objects are destroyed at exit.
    os._exit(code)


if __name__ == "__main__":
    console()
