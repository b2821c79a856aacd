"""The one redaction: every message, log line and report goes through here before anyone sees it.

A password can reach text in many spellings: in a URL's user part (well-formed or not: no ``//``, an unescaped
``@``, ``/``, ``?``, ``#`` or ``:``), as a ``password=`` query parameter, in an ODBC connection string
(``PWD={...}``, ``Password=...;``), in a libpq key=value DSN (``password='...' host=...``), or echoed by a driver
percent-encoded or escaped. Two defences work together: `scrub` masks everything that looks like one of those
shapes (erring on hiding too much when a shape is malformed), and it replaces the secrets we know (the resolved
passwords, a Ray auth token) in every spelling we can produce. `url_problem` says why a URL cannot be read one
way only, without quoting any part of it, so configuration can refuse it before anything connects.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_to_bytes, urlsplit

from ray_replicator.engines import SCHEMES

MASK = "***"
MIN_SECRET_LEN = 3
"""Known secrets shorter than this are only masked where they stand as a password: replacing a one- or two-letter
password everywhere would garble every message (the shapes still hide it)."""

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
_DB_SCHEMES = r"(?:postgres(?:ql)?|mssql|sqlserver|jdbc:sqlserver|jdbc:postgresql)(?:\+[A-Za-z0-9_.\-]+)?"
# A URL starts at "scheme://", or at a database scheme with a bare ":" (the malformed "postgresql:u:pw@h").
_URL_START = re.compile(rf"(?P<s>{_SCHEME})://|(?<![A-Za-z0-9+.\-])(?P<b>{_DB_SCHEMES}):(?!//)")
# Where another URL begins on the same line: a password in free text never runs into it.
_NEXT_URL = re.compile(rf"(?:(?<=[\s\"'(<\[,;=])|^){_SCHEME}://", re.MULTILINE)
_PASSWORD_KEY = re.compile(r"(?i)(?<![\w.\-])(?:ssl)?(?:password|passwd|pwd)\s*=")
# Connection-string keywords (libpq, ODBC / ADO.NET, our mssql:// options): a password value that is not quoted
# ends only where one of these follows, so a ';', '&' or space inside a password does not end it early.
_KEYWORDS = (
    r"host|hostaddr|port|dbname|user|passfile|channel_binding|connect_timeout|client_encoding|options|"
    r"application_name|fallback_application_name|keepalives(?:_idle|_interval|_count)?|tcp_user_timeout|"
    r"replication|gssencmode|sslmode|requiressl|sslcompression|sslcert|sslkey|sslcertmode|sslrootcert|sslcrl|"
    r"sslcrldir|sslsni|requirepeer|ssl_min_protocol_version|ssl_max_protocol_version|krbsrvname|gsslib|"
    r"gssdelegation|service|target_session_attrs|load_balance_hosts|database|ssl|passfile|server_settings|"
    r"driver|dsn|server|address|addr|network\s+address|data\s+source|initial\s+catalog|uid|user\s+id|username|"
    r"encrypt|trustservercertificate|trust\s+server\s+certificate|trust_server_certificate|trusted_connection|"
    r"integrated\s+security|connection\s+timeout|connect\s+timeout|login\s*timeout|login_timeout|app|"
    r"application\s+name|wsid|workstation\s+id|multipleactiveresultsets|mars_connection|applicationintent|"
    r"multisubnetfailover|packetsize|packet\s+size|authentication|columnencryption|hostnameincertificate|"
    r"servercertificate|longasmax|pooling|tds_version|clientcharset|charset|reader|writer|bulk_dir|"
    r"server_bulk_dir|isolation|hundred_ns|nul|sql_variant|databasename|servername|portnumber|instancename|"
    r"(?:ssl)?(?:password|passwd|pwd)"
)
# A value ends where a separator and a known keyword follow, or at the end of the line.
_NEXT_KEYWORD = rf"(?:[;&]|\s)\s*(?:{_KEYWORDS})\s*="
_VALUE_END = re.compile(rf"(?i){_NEXT_KEYWORD}|[;&]?[ \t]*(?:\r?\n|$)")
NEXT_OPTION = re.compile(rf"(?i){_NEXT_KEYWORD}")
"""A separator and a connection-string keyword: a raw password holding this cannot be told from the next option."""


# ---------------------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL fit for display: user, host, port, database and options kept, any password as ***. A malformed URL
    is masked from the first ':' of its user part to its last '@', and anything that is not a URL is scrubbed."""
    return _scrub_shapes(url, whole=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (a driver's message, a log line) without any password: the known `secrets` in every spelling,
    then everything shaped like a URL, DSN or connection string password."""
    return _scrub_shapes(_mask_known(text, secrets), whole=False)


def _mask_known(text: str, secrets: Iterable[str]) -> str:
    spellings = {s for secret in secrets if secret for s in spellings_of(secret) if len(s) >= MIN_SECRET_LEN}
    for spelling in sorted(spellings, key=len, reverse=True):  # longest first: an escaped form holds the raw one
        text = text.replace(spelling, MASK)
    return text


def spellings_of(secret: str) -> set[str]:
    """The ways a secret may be echoed: as is, percent-encoded (also in lower-case hex or with '+' for spaces),
    escaped inside ODBC braces, libpq quotes, JSON or a Python repr."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        quote(secret, safe="!$&'()*+,;=:"),
        secret.replace("}", "}}"),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms)}
    return forms


def _scrub_shapes(text: str, whole: bool) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        url = _URL_START.search(text, pos)
        key = _PASSWORD_KEY.search(text, pos)
        if url is None and key is None:
            break
        if url is not None and (key is None or url.start() <= key.start()):
            out.append(text[pos : url.start()])
            shown, pos = _mask_url(text, url, whole)
            out.append(shown)
        else:
            assert key is not None
            out.append(text[pos : key.end()] + MASK)
            pos = _value_end(text, key.end())
    out.append(text[pos:])
    return "".join(out)


def _mask_url(text: str, start: re.Match[str], whole: bool) -> tuple[str, int]:
    """The masked URL that begins at `start` and where it ends. `whole`: the text is this one URL."""
    begin = start.end()
    if whole:
        token_end = limit = len(text)
    else:
        line_end = text.find("\n", begin)
        limit = len(text) if line_end < 0 else line_end
        following = _NEXT_URL.search(text, begin, limit)
        limit = following.start() if following else limit
        space = re.search(r"\s", text[begin:limit])
        token_end = begin + space.start() if space else limit
    at = text.rfind("@", begin, token_end)
    if at < 0 and token_end < limit and _password_may_run_on(text[begin:token_end]):
        at = text.rfind("@", token_end, limit)  # a password with a space in it: its '@' is further on
    head = text[start.start() : begin]
    if at < 0:
        return head + _scrub_shapes_kv(text[begin:token_end]), token_end
    tail_end = len(text) if whole else _token_end(text, at + 1, limit)
    userinfo = text[begin:at]
    user, colon, _ = userinfo.partition(":")
    if re.search(r"[/?#=\s]", user) or (not colon and "=" in userinfo) or _PASSWORD_KEY.search(userinfo):
        # Not a user name: a path, a query or a JDBC option list that an '@' further on made look like one. What
        # is a password here and where it ends cannot be told, so all of it goes.
        return head + MASK, tail_end
    shown = f"{user}:{MASK}" if colon else userinfo
    return head + shown + "@" + _scrub_shapes_kv(text[at + 1 : tail_end]), tail_end


def _password_may_run_on(token: str) -> bool:
    """A URL token without '@' whose authority has a ':' not followed by a port may be the start of a password
    containing whitespace."""
    authority = re.split(r"[/?#]", token, maxsplit=1)[0]
    _, colon, after = authority.partition(":")
    return bool(colon) and not re.fullmatch(r"[0-9]+(?:,.*)?", after)


def _token_end(text: str, begin: int, limit: int) -> int:
    space = re.search(r"\s", text[begin:limit])
    return begin + space.start() if space else limit


def _scrub_shapes_kv(part: str) -> str:
    """Key=value passwords only (a URL's query, a JDBC ';' option list)."""
    out: list[str] = []
    pos = 0
    while (key := _PASSWORD_KEY.search(part, pos)) is not None:
        out.append(part[pos : key.end()] + MASK)
        pos = _value_end(part, key.end())
    out.append(part[pos:])
    return "".join(out)


def _value_end(text: str, begin: int) -> int:
    """Where a password value starting at `begin` ends: after its closing brace or quote when one is followed by
    the end of the line or another keyword, otherwise before the next keyword or at the end of the line. A value
    that never closes runs to the end of the line: hiding too much is the safe side."""
    line_end = text.find("\n", begin)
    line_end = len(text) if line_end < 0 else line_end
    while begin < line_end and text[begin] in " \t":  # blanks after '=' may be the password's own: masked too
        begin += 1
    opener = text[begin : begin + 1]
    if opener in ("{", "'", '"'):
        closer = "}" if opener == "{" else opener
        i = begin + 1
        while i < line_end:
            c = text[i]
            if opener == "'" and c == "\\":
                i += 2
                continue
            if c == closer:
                if opener != "'" and text[i + 1 : i + 2] == closer:
                    i += 2  # '}}' inside braces and '""' inside double quotes stand for one character
                    continue
                if _VALUE_END.match(text, i + 1):
                    return i + 1
            i += 1
        return line_end
    # The first character belongs to the value even when it is a separator: an empty password is rarer than a
    # password that starts with ';' or '&', and hiding the next option too is the safe side.
    found = _VALUE_END.search(text, min(begin + 1, line_end), line_end + 1)
    return min(found.start(), line_end) if found else line_end


# ---------------------------------------------------------------------------------------------------------
# What a URL carries
# ---------------------------------------------------------------------------------------------------------


def url_secrets(url: str) -> list[str]:
    """The password a URL carries (user part and `password=` option), as written and percent-decoded."""
    found: list[str] = []
    prefix = re.match(rf"{_SCHEME}:(?://)?", url)
    rest = url[prefix.end() :] if prefix else url
    userinfo, at, _ = rest.rpartition("@")
    if at:
        _, colon, password = userinfo.partition(":")
        if colon and password:
            found += [password, unquote(password)]
    query = url.partition("?")[2]
    for field in re.split(r"[&;]", query):
        key, eq, value = field.partition("=")
        if eq and key.strip().lower() in ("password", "pwd", "sslpassword") and value:
            found += [value, unquote(value), unquote(value.replace("+", " "))]
    return [s for s in dict.fromkeys(found) if s]


def ray_token() -> str | None:
    """The Ray auth token this process would use, if any (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token.strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), str(Path.home() / ".ray" / "auth_token")):
        if path:
            try:
                token = Path(path).read_text().strip()
            except OSError:
                continue
            if token:
                return token
    return None


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------

SUPPORTED_SCHEMES = SCHEMES
"""The URL schemes the engine registry knows (engines/__init__.py is the one list)."""
_ENCODE_HINT = (
    "percent-encode these characters in the user and password (@ → %40, / → %2F, ? → %3F, # → %23, % → %25, "
    ": → %3A, space → %20) or give the password with password_env or password_file"
)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be read one way only by every driver we hand it to, or None. The answer never quotes the
    URL: a misread URL's host or port may well be a piece of the password.

    The drivers disagree on malformed URLs: libpq ends the user part at the first '@' and knows no '#', asyncpg
    and Python's urlsplit (mssql://) end the authority at the first '/', '?' or '#' and take its last '@'; only
    libpq rejects a bad '%' escape; form decoding turns '+' into a space only in Python. So a URL is accepted only
    where all of them read the same user, password, hosts, ports, database and options.
    """
    if re.search(r"[\x00-\x1f\x7f]", url):
        return (
            "contains a control character (a tab or a line break): percent-encode it (a tab as %09, a line break "
            "as %0A) or give the password with password_env or password_file"
        )
    if url != url.strip():
        return "starts or ends with whitespace; remove it"
    head = re.match(rf"({_SCHEME}):", url)
    if head is None:
        return "is not a URL; expected postgresql://user@host:port/database or mssql://user@host:port/database"
    scheme = head.group(1)
    base = scheme.split("+")[0].lower()
    if base not in SUPPORTED_SCHEMES:
        shown = f" {scheme!r}" if url[head.end() :].startswith("//") and len(scheme) <= 20 else ""
        return f"has an unsupported URL scheme{shown}; use one of {', '.join(SUPPORTED_SCHEMES)}"
    postgres = base in ("postgresql", "postgres")
    if postgres and scheme != base:
        return f"must start with {base}:// exactly (lower case, no driver suffix): libpq reads nothing else"
    if not url[head.end() :].startswith("//"):
        shape = f"{scheme}://user@host:port/database, ':password' after the user"
        return f"has no '//' after '{scheme}:' (write {shape}); {_ENCODE_HINT}"
    if "#" in url:
        return "contains '#', which ends a URL early; " + _ENCODE_HINT
    rest = url[head.end() + 2 :]
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    after = rest[len(authority) :]
    if "@" in after:
        return "has an '@' after the host, so the password may contain '/', '?' or '@'; " + _ENCODE_HINT
    if authority.count("@") > 1:
        return "has more than one '@' before the host; " + _ENCODE_HINT
    userinfo, _, hosts = authority.rpartition("@")
    problem = _escapes_problem(userinfo, "the user or password")
    if problem:
        return problem
    try:
        parts = urlsplit(url)
    except ValueError:
        return (
            "has a '[' or ']' outside an IPv6 host, or a character that Unicode normalizes to '/', '?', '#', '@' "
            "or ':'; " + _ENCODE_HINT.replace("space → %20", "space → %20, [ → %5B, ] → %5D")
        )
    if parts.netloc != authority:
        return "cannot be split into user, password and host one way only; " + _ENCODE_HINT
    problem = _hosts_problem(hosts, postgres)
    if problem:
        return problem
    path, _, query = after.partition("?")
    problem = _escapes_problem(path, "the database name")
    if problem:
        return problem
    return _query_problem(query) if query else None


def _escapes_problem(part: str, what: str) -> str | None:
    if re.search(r"%(?![0-9A-Fa-f]{2})", part):
        return f"has a '%' in {what} that is not followed by two hex digits; " + _ENCODE_HINT
    raw = unquote_to_bytes(part)
    if b"\x00" in raw:
        return f"has %00 in {what}, which no driver accepts"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"has percent-encoded bytes in {what} that are not UTF-8"
    return None


def _hosts_problem(hosts: str, postgres: bool) -> str | None:
    specs = hosts.split(",") if postgres else [hosts]
    if not postgres and "," in hosts:
        return "has a ',' in the host; for SQL Server write the port after a colon (host:1433)"
    for spec in specs:
        if spec.startswith("["):
            end = spec.find("]")
            if end < 0:
                return "has a '[' before an IPv6 host without its closing ']'"
            port = spec[end + 1 :]
            if port and not port.startswith(":"):
                return "has text after an IPv6 host's ']' that is not ':port'"
            port = port[1:]
            if not port:
                continue
        else:
            host, colon, port = spec.partition(":")
            if "%" in host and not postgres:
                return "has a '%' in the host; write the host name as it is"
            problem = _escapes_problem(host, "the host")
            if problem:
                return problem
            if not colon or not port:
                continue
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
            return (
                "has a port that is not a number from 1 to 65535 (a password goes before an '@': "
                "user:password@host:port); " + _ENCODE_HINT
            )
    return None


def _query_problem(query: str) -> str | None:
    for field in query.split("&"):
        if not field:
            return "has an empty option in its query (two '&' in a row or a trailing '&')"
        key, eq, value = field.partition("=")
        if not eq or not key:
            return (
                "has an option without 'name=' in its query; percent-encode '&' inside a value as %26 "
                "(or give the password with password_env or password_file)"
            )
        if "=" in value:
            return "has an option value with a second '='; percent-encode it as %3D"
        if "+" in value or "+" in key:
            return (
                "has a '+' in its query, which Python reads as a space and libpq as '+'; write + as %2B "
                "and a space as %20"
            )
        problem = _escapes_problem(field, "an option")
        if problem:
            return problem
    return None


# ---------------------------------------------------------------------------------------------------------
# The process title
# ---------------------------------------------------------------------------------------------------------


def hide_secrets_in_process_title() -> None:
    """A password given on the command line would show in `ps` for the whole run: rewrite our title. Called first
    thing, so the password shows only while the interpreter starts (about 30 ms)."""
    shown = [redact_url(arg) if _URL_START.search(arg) else scrub(arg) for arg in sys.argv]
    if shown == sys.argv:
        return
    title = " ".join(["ray-replicator", *shown[1:]])
    if _overwrite_arguments(title):
        return
    try:
        from ray._raylet import setproctitle  # type: ignore[attr-defined]

        setproctitle(title)
    except Exception:  # noqa: BLE001 - cosmetic; the run must not fail over a title
        return


def _overwrite_arguments(title: str) -> bool:
    """Write `title` over the process's argument area, which `ps` and /proc/PID/cmdline read (Linux). Python keeps
    its own copy of the arguments, so nothing else reads this memory; the title is cut to the area's length."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end: fields 48 and 49 of proc(5)
        data = title.encode()[: max(end - start - 1, 0)]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data + b"\0" * (end - start - len(data)))
    except (OSError, ValueError, IndexError):
        return False
    return True
