"""TLS settings the drivers take only from files: a CA bundle for mssql-python, freetds.conf sections for pymssql.

Both are per process (environment variables name them), built once and appended to as endpoints need them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
from typing import Any

from ray_replicator.config import MssqlUrl

_BUNDLE_LOCK = threading.Lock()
_bundle: dict[str, Any] = {"path": None, "cas": []}


def trust_ca_file(ca_file: str) -> None:
    """Make `ca_file` trusted by mssql-python's TLS (ODBC Driver 18 and, for bulk copy, mssql-py-core).

    Neither takes a CA file per connection; both verify against OpenSSL's default trust file, which
    SSL_CERT_FILE names. One bundle per process holds that file's former content (the system store) plus every
    ca_file given, so a source and a target with different CAs both verify."""
    path = os.path.abspath(ca_file)
    with _BUNDLE_LOCK:
        if path in _bundle["cas"]:
            return
        if _bundle["path"] is None:
            base = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
            fd, bundle = tempfile.mkstemp(prefix="ray-replicator-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                if base and os.path.isfile(base):
                    with open(base, "rb") as f:
                        out.write(f.read().rstrip(b"\n") + b"\n")
            atexit.register(_remove_quietly, bundle)
            _bundle["path"] = bundle
        with open(path, "rb") as f, open(_bundle["path"], "ab") as out:
            out.write(f.read().rstrip(b"\n") + b"\n")
        _bundle["cas"].append(path)
        os.environ["SSL_CERT_FILE"] = _bundle["path"]


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


_FREETDS_LOCK = threading.Lock()
_freetds: dict[str, Any] = {"path": None, "sections": set()}


def freetds_section(u: MssqlUrl) -> str:
    """A freetds.conf section for a verifying TLS connection: pymssql passes no CA file, certificate name or
    TDS 8.0 to FreeTDS, but FreeTDS reads them from the file FREETDSCONF names. One file per process, a section
    per endpoint, starting with the user's own file so its [global] settings still apply."""
    key = "|".join([u.host, str(u.port), u.encrypt, u.ca_file or "system", u.hostname_in_certificate or ""])
    name = "rr_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    with _FREETDS_LOCK:
        if name in _freetds["sections"]:
            return name
        if _freetds["path"] is None:
            user_conf = os.environ.get("FREETDSCONF")
            fd, path = tempfile.mkstemp(prefix="ray-replicator-freetds-", suffix=".conf")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                if user_conf and os.path.isfile(user_conf):
                    with open(user_conf, encoding="utf-8") as f:
                        out.write(f.read() + "\n")
            atexit.register(_remove_quietly, path)
            _freetds["path"] = path
        lines = [
            f"[{name}]",
            f"\thost = {u.host}",
            f"\tport = {u.port}",
            f"\tencryption = {'strict' if u.encrypt == 'strict' else 'require'}",
            f"\tca file = {os.path.abspath(u.ca_file) if u.ca_file else 'system'}",
            "\tcheck certificate hostname = yes",
        ]
        if u.hostname_in_certificate:
            lines.append(f"\tcertificate hostname = {u.hostname_in_certificate}")
        with open(_freetds["path"], "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        _freetds["sections"].add(name)
        os.environ["FREETDSCONF"] = _freetds["path"]
        return name
