"""The one configuration model, with every default in one place.

Values come, lowest priority first, from the defaults here, a TOML file, environment variables
(`RAY_REPLICATOR_<FIELD>`, nested with `__`, e.g. `RAY_REPLICATOR_SOURCE__URL`), then command-line flags.
Passwords may live in the URL, in an environment variable (`password_env`) or a file (`password_file`); they are
kept as SecretStr. A URL that drivers could read more than one way is refused here, before anything connects, and
every URL and message goes through ray_replicator.redact before anyone sees it.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ray_replicator.engines import engine_of
from ray_replicator.engines.base import UsageError
from ray_replicator.redact import SUPPORTED_SCHEMES, ray_token, redact_url, url_problem, url_secrets

ENV_PREFIX = "RAY_REPLICATOR_"
__all__ = ["SUPPORTED_SCHEMES", "Endpoint", "MssqlUrl", "Settings", "known_secrets", "load_settings", "parse_endpoint"]
CONNECT_TIMEOUT_S = 30.0
"""Default seconds a connection attempt may take (engines use it too when a URL names no connect_timeout)."""
STALL_TIMEOUT_S = 300.0
"""Default seconds a copy range may go without reading or writing a batch before it is cut and retried."""
MSSQL_PACKET_SIZE = 16000
"""TDS packet size mssql-python asks for. ODBC Driver 18.6 (mssql-python 1.16) refuses to encrypt a packet above
16,359 bytes ("SSL Provider: Packet size too large for SSL Encrypt/Decrypt operations", measured), and a server may
encrypt the whole session even with encrypt=no; 16,000 stays below that with margin and on plaintext sessions reads
as fast as 32,767. pymssql negotiates FreeTDS's own."""


class MssqlUrl(BaseModel):
    """A parsed mssql:// URL: where to connect and every SQL Server URL option with its default (engines/mssql
    describes each; engines/mssql/url.py parses a URL into this). The password is only ever handed to drivers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = 1433
    user: str = ""
    password: str = Field(default="", repr=False)
    database: str = "master"
    encrypt: Literal["no", "yes", "strict"] = "no"
    trust: bool = True
    """trust_server_certificate: skip verifying the server's certificate. The parser makes it False whenever the
    session is encrypted on our request (encrypt=yes or strict) or a ca_file is given, unless the URL says yes."""
    ca_file: str | None = None
    hostname_in_certificate: str | None = None
    reader: Literal["mssql-python", "pymssql"] = "mssql-python"
    writer: Literal["bulkcopy", "bulk-insert", "insert"] = "bulkcopy"
    bulk_dir: str | None = None
    server_bulk_dir: str | None = None
    isolation: Literal["read-committed", "snapshot", "nolock"] = "read-committed"
    hundred_ns: Literal["auto", "refuse", "round", "keep"] = "auto"
    nul: Literal["refuse", "keep", "strip", "replace"] = "refuse"
    sql_variant: Literal["refuse", "text", "keep"] = "refuse"
    connect_timeout: float = Field(default=CONNECT_TIMEOUT_S, gt=0)
    """Seconds a connection attempt may take (option connect_timeout; the pipeline sets connect_timeout_s)."""

    @property
    def display(self) -> str:
        return f"mssql://{self.user}@{self.host}:{self.port}/{self.database}"


class Endpoint(BaseModel):
    """A database to read from or write to."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    password_env: str | None = None
    password_file: Path | None = None
    _connect_timeout_s: float = PrivateAttr(default=CONNECT_TIMEOUT_S)

    @field_validator("url")
    @classmethod
    def _readable_one_way(cls, value: SecretStr) -> SecretStr:
        """Refuse a URL that the drivers could split differently (the message never quotes the URL)."""
        problem = url_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @property
    def engine(self) -> str:
        return engine_of(self.url.get_secret_value())

    def _given_password(self) -> str | None:
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise UsageError(f"environment variable {self.password_env} (password_env) is not set")
            return password
        if self.password_file:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise UsageError(f"cannot read password_file {self.password_file}: {exc.strerror}") from None
        return None

    def resolved_url(self) -> str:
        """The URL with the password filled in from password_env/password_file; only engines see it."""
        raw = self.url.get_secret_value()
        password = self._given_password()
        if password is None:
            return with_connect_timeout(raw, self._connect_timeout_s)
        parts = urlsplit(raw)  # the validator made sure every driver splits it the same way
        userinfo, _, hosts = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]  # as written: already percent-encoded
        netloc = f"{user}:{quote(password, safe='')}@{hosts}"
        resolved = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return with_connect_timeout(resolved, self._connect_timeout_s)

    def display(self) -> str:
        return redact_url(self.url.get_secret_value())

    def secrets(self) -> list[str]:
        """Every password this endpoint may hand a driver, as written and decoded: scrub() masks them all."""
        found = url_secrets(self.url.get_secret_value())
        try:
            given = self._given_password()
        except UsageError:
            given = None
        if given:
            found.append(given)
        return found


class Settings(BaseModel):
    """Everything a run can be told. Field names are the TOML keys and the env-var suffixes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    source: Endpoint
    target: Endpoint | None = None
    tables: list[str] = Field(default_factory=list, description="glob patterns over schema.table or table")
    exclude: list[str] = Field(default_factory=list)
    schema_map: dict[str, str] = Field(default_factory=dict, description="source schema -> target schema")
    rows_per_range: int = Field(default=2_000_000, ge=1)
    bytes_per_range: int = Field(default=1024 * 1024 * 1024, ge=1024)
    max_ranges_per_table: int = Field(default=64, ge=1)
    batch_rows: int = Field(default=65_536, ge=1)
    batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Arrow batch size cap; a driver holds a few times this while decoding (16 MB: +90 MB per worker)",
    )
    parallelism: int = Field(default=0, ge=0, description="Ray copy tasks in flight; 0 = CPUs in the cluster")
    index_jobs: int = Field(
        default=2, ge=1, description="tables finalized at once (keys, indexes, ANALYZE) while other tables copy"
    )
    existing: Literal["fail", "truncate", "drop"] = "fail"
    keys: Literal["after-load", "before-load"] = "after-load"
    unlogged: bool = False
    large_values: Literal["compress", "as-source"] = Field(
        default="compress",
        description="PostgreSQL target: compress (the default) lets the target compress large values as it does by "
        "default; as-source loads a table whose source stores its large values uncompressed (PostgreSQL: sampled; "
        "SQL Server: no DATA_COMPRESSION) without TOAST compression, faster but larger (see README, Large values)",
    )
    collation: Literal["binary", "ci"] = Field(
        default="binary",
        description="PostgreSQL target from SQL Server: a column with a case-insensitive collation (_CI_) keeps "
        "PostgreSQL's exact comparison (binary; each such column is listed as collation not kept) or gets a "
        "nondeterministic ICU collation that compares without case, and without accents for _AI (ci)",
    )
    copy_method: Literal["auto", "arrow", "raw"] = "auto"
    verify: Literal["none", "counts", "checksums"] = "checksums"
    unsupported_types: Literal["fail", "skip-column", "text"] = Field(
        default="fail",
        description="a column whose type has no mapping to the target: refuse before writing, leave the column out "
        "(reported), or copy PostgreSQL's text form into nvarchar(max)",
    )
    memory_cap_mb: int = Field(default=128, ge=1, description="bytes in flight per copy task (read, not written)")
    worker_max_ranges: int = Field(
        default=0,
        ge=0,
        description="ranges a Ray worker process copies before Ray replaces it (0 = reuse it for the whole run): "
        "bounds the native memory drivers leave behind, at the cost of a process start",
    )
    node_memory_cap_mb: int = Field(default=1024, ge=1, description="bytes in flight of all copy tasks on one node")
    spill_dir: Path | None = Field(default=None, description="spill batches here instead of waiting for the target")
    spill_cap_mb: int = Field(default=4096, ge=1, description="bytes of spill files per node")
    resume: bool = False
    ray_address: str | None = None
    ray_num_cpus: int | None = Field(default=None, ge=1)
    report_path: Path | None = Path("ray-replicator-report.json")
    run_id: str | None = None
    connect_timeout_s: float = Field(
        default=CONNECT_TIMEOUT_S,
        gt=0,
        description="seconds a connection attempt may take, with every driver; a URL's own connect_timeout wins",
    )
    stall_timeout_s: float = Field(
        default=STALL_TIMEOUT_S,
        gt=0,
        description="seconds a copy range may read nothing from the source and write nothing to the target before "
        "its connections are cut and it is retried like a lost connection (a long index build or a huge range's "
        "first row counts as a stall too: raise it for those)",
    )

    @model_validator(mode="after")
    def _timeouts_reach_endpoints(self) -> Settings:
        """Engines are opened from URLs alone (also in Ray workers), so the connect timeout rides in the URL."""
        for ep in (self.source, self.target):
            if ep is not None:
                ep._connect_timeout_s = self.connect_timeout_s
        return self

    @property
    def target_endpoint(self) -> Endpoint:
        if self.target is None:
            raise UsageError("no target given: pass --target URL or set [target] url in the config file")
        return self.target


def with_connect_timeout(url: str, seconds: float) -> str:
    """The URL with a connect_timeout option (whole seconds, as libpq takes it) unless it names one already."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url  # the engine reports the malformed URL
    if any(k.lower() == "connect_timeout" for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url
    option = f"connect_timeout={max(1, math.ceil(seconds))}"
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def known_secrets(settings: Settings | None) -> list[str]:
    """The passwords of both endpoints and the Ray auth token: what scrub() must never let through."""
    found: list[str] = []
    if settings is not None:
        for endpoint in (settings.source, settings.target):
            if endpoint is not None:
                found += endpoint.secrets()
    token = ray_token()
    if token:
        found.append(token)
    return found


def parse_endpoint(url: str, name: str) -> Endpoint:
    """One endpoint from a command-line URL (status, generate), refused with a one-line UsageError like a
    config's own."""
    try:
        return Endpoint(url=url)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise UsageError(_explain(exc, name)) from None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        leaf = path[-1]
        node[leaf] = value.split(",") if leaf in ("tables", "exclude") else value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(exc: ValidationError, endpoint: str | None = None) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "config"
    kind = first["type"]
    if endpoint is not None:
        field = f"{endpoint}.{field}"
    if kind == "extra_forbidden":
        allowed = ", ".join(Settings.model_fields) if "." not in field else ", ".join(Endpoint.model_fields)
        return f"unknown config field {field!r}; allowed fields: {allowed}"
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return f"config field {field!r} has value {first.get('input')!r}; allowed values: {expected}"
    if kind == "missing":
        return f"config field {field!r} is required"
    message = first["msg"].removeprefix("Value error, ")
    if field.endswith(".url") and kind == "value_error":
        return f"{field.removesuffix('.url')} URL ({field}) {message}"
    value = first.get("input")
    if isinstance(value, str | int | float) and "url" not in field:
        return f"config field {field!r} = {value!r}: {message}"
    return f"config field {field!r}: {message}"


def load_settings(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults < TOML < environment < flags; any error is a one-line UsageError."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except FileNotFoundError:
            raise UsageError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"config file {config_file} is not valid TOML: {exc}") from None
    data = _merge(data, _env_overrides(dict(os.environ if environ is None else environ)))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None and v != [] and v != {}}
    for name in ("source", "target"):
        if isinstance(flags.get(name), str):
            flags[name] = {"url": flags[name]}
    data = _merge(data, flags)
    if "source" not in data:
        raise UsageError("no source given: pass --source URL or set [source] url in the config file")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_explain(exc)) from None
