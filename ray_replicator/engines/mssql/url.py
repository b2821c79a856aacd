"""An mssql:// URL read into config.MssqlUrl, the model that holds every SQL Server URL option and its default.

Unknown options are refused, so a typo is never silently ignored; every refusal is a one-line UsageError naming the
option and the values it takes.
"""

from __future__ import annotations

import os
from typing import get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from ray_replicator.config import MssqlUrl
from ray_replicator.engines.base import UsageError, connect_timeout_of
from ray_replicator.redact import url_problem

__all__ = ["MssqlUrl", "choices", "parse_url"]

_CHOICES = ("reader", "writer", "isolation", "hundred_ns", "nul", "sql_variant")
"""Options that take one of the words their MssqlUrl field's Literal lists."""
_PLAIN = ("bulk_dir", "server_bulk_dir")

_ENCRYPT = {
    "no": "no", "false": "no", "0": "no", "optional": "no",
    "yes": "yes", "true": "yes", "1": "yes", "mandatory": "yes",
    "strict": "strict",
}  # fmt: skip
_YES = ("yes", "true", "1", "strict", "mandatory")
_NO = ("no", "false", "0", "optional")


def choices(option: str) -> tuple[str, ...]:
    """The values an option takes, in the order MssqlUrl declares them."""
    return tuple(str(v) for v in get_args(MssqlUrl.model_fields[option].annotation))


def _choice(opts: dict[str, str], name: str) -> str | None:
    if name not in opts:
        return None
    value = opts.pop(name).lower()
    allowed = choices(name)
    if value not in allowed:
        raise UsageError(f"mssql URL option {name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _yes(opts: dict[str, str], name: str, default: bool) -> bool:
    value = opts.pop(name, "yes" if default else "no").lower()
    if value not in _YES + _NO:
        raise UsageError(f"mssql URL option {name}={value!r}: use yes or no")
    return value in _YES


def _tls_options(opts: dict[str, str]) -> dict[str, object]:
    """encrypt, trust, ca_file, hostname_in_certificate: verification is on whenever the session is encrypted
    on our request, unless trust_server_certificate=yes says otherwise."""
    raw = opts.pop("encrypt", "no").lower()
    if raw not in _ENCRYPT:
        raise UsageError(f"mssql URL option encrypt={raw!r} is not one of {', '.join(choices('encrypt'))}")
    encrypt = _ENCRYPT[raw]
    ca_file = opts.pop("ca_file", None) or None
    hostname = opts.pop("hostname_in_certificate", None) or None
    # A ca_file asks for verification even with encrypt=no (it applies when the server forces encryption).
    trust = _yes(opts, "trust_server_certificate", encrypt == "no" and ca_file is None)
    if ca_file is not None:
        if not os.path.isfile(ca_file):
            raise UsageError(f"mssql URL option ca_file={ca_file!r}: no such file (give the PEM file of the CA)")
        if trust:
            raise UsageError("mssql URL options ca_file= and trust_server_certificate=yes contradict: drop one")
    if encrypt == "strict" and trust:
        raise UsageError(
            "encrypt=strict always verifies the server certificate (TDS 8.0): give ca_file=/path/ca.pem "
            "instead of trust_server_certificate=yes"
        )
    return {"encrypt": encrypt, "trust": trust, "ca_file": ca_file, "hostname_in_certificate": hostname}


def parse_url(url: str) -> MssqlUrl:
    """Parse and validate an mssql:// URL; options it does not name keep MssqlUrl's defaults."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # its text would quote the URL, and a misread port may be a piece of the password
        raise UsageError(f"the SQL Server URL {url_problem(url) or 'cannot be parsed'}") from None
    if parts.scheme.split("+")[0] not in ("mssql", "sqlserver"):
        raise UsageError("not a SQL Server URL (expected mssql://user:password@host:port/database)")
    opts = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    given: dict[str, object] = {
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or "") or opts.pop("password", ""),
    }
    if parts.hostname:
        given["host"] = parts.hostname
    if port:
        given["port"] = port
    if database := unquote(parts.path.lstrip("/")):
        given["database"] = database
    if "connect_timeout" in opts:
        given["connect_timeout"] = connect_timeout_of(f"connect_timeout={opts.pop('connect_timeout')}", 0.0)
    given |= _tls_options(opts)
    given |= {name: value for name in _CHOICES if (value := _choice(opts, name)) is not None}
    given |= {name: opts.pop(name) for name in _PLAIN if name in opts}
    opts.pop("password", None)
    if opts:
        raise UsageError(f"unknown mssql URL option(s) {', '.join(sorted(opts))}")
    out = MssqlUrl.model_validate(given)
    if out.writer == "bulk-insert" and not out.bulk_dir:
        raise UsageError(
            "writer=bulk-insert needs bulk_dir=/local/path (and server_bulk_dir if the server sees it elsewhere)"
        )
    return out
