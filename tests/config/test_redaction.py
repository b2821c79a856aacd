"""Property tests of the one redaction: generated passwords (any printable character, the URL and connection-string
specials, unicode, long ones) in every shape a password reaches text in, well-formed and malformed, alone and inside
a driver's message. The password, and every 4-character piece of it that the rest of the text does not hold
anyway, must be gone; a well-formed URL keeps its user, host, port and database; a URL that drivers could read two
ways is refused without quoting any of it, and one that is accepted is read alike by libpq, asyncpg and mssql.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ray_replicator import redact as redact_module
from ray_replicator.config import Endpoint, known_secrets, load_settings
from ray_replicator.engines.base import UsageError
from ray_replicator.engines.mssql import parse_url
from ray_replicator.redact import (
    _NEXT_URL,
    MASK,
    MIN_SECRET_LEN,
    NEXT_OPTION,
    redact_url,
    scrub,
    spellings_of,
    url_problem,
)

SPECIALS = "@#/?:;}{%&=+'\"\\ ,[]$!*"
printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
passwords = st.one_of(
    st.text(printable, min_size=1, max_size=24),
    st.text(st.one_of(st.sampled_from(SPECIALS), printable), min_size=1, max_size=24),
    st.text(st.sampled_from(SPECIALS + "ab1é"), min_size=4, max_size=12),
    st.text(printable, min_size=100, max_size=300),
)
names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_0123456789"), min_size=1, max_size=10)
hosts = st.sampled_from(["db1.example.com", "127.0.0.1", "[::1]", "sql-prod", "h"])
ports = st.sampled_from(["", ":5432", ":1433", ":65535"])
schemes = st.sampled_from(["postgresql", "postgres", "mssql", "sqlserver"])
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_hidden(output: str, password: str, rest: str) -> None:
    """Neither the password nor any 4-character piece of it is in `output`, unless `rest` (the same text without
    the password, as is and masked) holds that piece anyway."""
    pieces = [password] + [password[i : i + 4] for i in range(len(password) - 3)]
    for piece in pieces:
        if piece in rest or set(piece) <= set(MASK):
            continue
        assert piece not in output, (piece, output)


def rest_of(make: Callable[[str], str]) -> str:
    empty = make("")
    return "\n".join([empty, redact_url(empty), scrub(empty)])


# -- shapes -------------------------------------------------------------------------------------------------


def odbc_braced(user: str, pw: str, host: str, db: str) -> str:
    value = pw.replace("}", "}}")
    driver = "Driver={ODBC Driver 18 for SQL Server}"
    return f"{driver};Server={host},1433;Database={db};UID={user};PWD={{{value}}};Encrypt=yes"


def libpq_quoted(user: str, pw: str, host: str, db: str) -> str:
    value = pw.replace("\\", "\\\\").replace("'", "\\'")
    return f"host={host} port=5432 dbname={db} user={user} password='{value}' sslmode=prefer"


RAW_SHAPES: dict[str, Callable[[str, str, str, str, str], str]] = {
    "url": lambda s, u, pw, h, d: f"{s}://{u}:{pw}@{h}/{d}",
    "url no //": lambda s, u, pw, h, d: f"{s}:{u}:{pw}@{h}/{d}",
    "url no user": lambda s, u, pw, h, d: f"{s}://:{pw}@{h}:5432/{d}?sslmode=require",
    "url query": lambda s, u, pw, h, d: f"{s}://{u}@{h}/{d}?password={pw}&connect_timeout=5",
    "url query last": lambda s, u, pw, h, d: f"{s}://{u}@{h}/{d}?sslmode=require&password={pw}",
    "odbc braced raw": lambda s, u, pw, h, d: f"Server={h};Database={d};UID={u};PWD={{{pw}}};Encrypt=yes",
    "odbc raw": lambda s, u, pw, h, d: f"Server={h};Database={d};UID={u};Password={pw};TrustServerCertificate=yes",
    "odbc raw last": lambda s, u, pw, h, d: f"Server={h};UID={u};Pwd={pw}",
    "libpq raw": lambda s, u, pw, h, d: f"password={pw} host={h} port=5432 user={u} dbname={d}",
    "libpq raw last": lambda s, u, pw, h, d: f"host={h} user={u} password={pw}",
    "jdbc": lambda s, u, pw, h, d: f"jdbc:sqlserver://{h}:1433;databaseName={d};user={u};password={pw};encrypt=true",
}
URL_SHAPES = {"url", "url no //", "url no user", "url query", "url query last", "jdbc"}
KV_SHAPES = set(RAW_SHAPES) - {"url", "url no //", "url no user"}


def ambiguous_for(shape: str, pw: str) -> bool:
    """Raw passwords that are, by the shape's own rules, the start of the next option or the next URL: no reader
    can tell where they end (a raw '&host=' inside a query value *is* a host option)."""
    return shape in KV_SHAPES and bool(NEXT_OPTION.search(pw))


DRIVER_TEXT = (
    'connection to server at "{host}" (127.0.0.1), port 5432 failed while using {shape}: FATAL:  password '
    'authentication failed for user "{user}"; retrying'
)


def assert_shown_as(make: Callable[[str], str], pw: str, expected: str) -> str:
    """The URL `make` builds around the percent-encoded `pw` is accepted and shown as `expected`, without pw."""
    url = make(quote(pw, safe=""))
    assert url_problem(url) is None
    shown = redact_url(url)
    assert shown == expected
    assert_hidden(shown, pw, rest_of(make))
    return shown


# -- well-formed URLs --------------------------------------------------------------------------------------


@PROFILE
@given(schemes, names, passwords, hosts, ports, names)
@example("postgresql", "alice", "p@ss/w?rd#1:;}", "db1", ":5432", "app")
def test_well_formed_url_keeps_all_but_the_password(
    scheme: str, user: str, pw: str, host: str, port: str, db: str
) -> None:
    def make(p: str) -> str:
        return f"{scheme}://{user}:{p}@{host}{port}/{db}?sslmode=require&application_name=rr"

    shown = assert_shown_as(make, pw, f"{scheme}://{user}:***@{host}{port}/{db}?sslmode=require&application_name=rr")
    assert_hidden(shown, quote(pw, safe=""), rest_of(make))


@PROFILE
@given(schemes, names, passwords, hosts, names)
def test_well_formed_query_password(scheme: str, user: str, pw: str, host: str, db: str) -> None:
    def make(p: str) -> str:
        return f"{scheme}://{user}@{host}/{db}?sslmode=require&password={p}&connect_timeout=5"

    assert_shown_as(make, pw, f"{scheme}://{user}@{host}/{db}?sslmode=require&password=***&connect_timeout=5")


@PROFILE
@given(names, passwords, hosts, names)
def test_well_formed_connection_strings(user: str, pw: str, host: str, db: str) -> None:
    for make in (odbc_braced, libpq_quoted):
        text = make(user, pw, host, db)
        shown = scrub(text)
        assert_hidden(shown, pw, rest_of(lambda p, make=make: make(user, p, host, db)))  # type: ignore[misc]
        assert f"{host}" in shown and user in shown and db in shown


# -- malformed and embedded --------------------------------------------------------------------------------


@PROFILE
@given(st.sampled_from(sorted(RAW_SHAPES)), schemes, names, passwords, hosts, names)
@example("url", "postgresql", "u", "p@ss@word", "h", "db")
@example("url", "postgresql", "u", "pa/ss?wo#rd", "h", "db")
@example("url no //", "mssql", "sa", "Secret#1/2@3", "h", "db")
@example("odbc braced raw", "mssql", "sa", "pa}ss;word}", "h", "db")
@example("odbc raw", "mssql", "sa", "pa;ss;wo{rd", "h", "db")
@example("libpq raw", "postgresql", "u", "it's a secret", "h", "db")
def test_malformed_shapes_alone_and_in_driver_text(
    shape: str, scheme: str, user: str, pw: str, host: str, db: str
) -> None:
    assume(not ambiguous_for(shape, pw))
    make = RAW_SHAPES[shape]
    text = make(scheme, user, pw, host, db)
    rest = rest_of(lambda p: make(scheme, user, p, host, db))
    assert_hidden(redact_url(text), pw, rest)
    in_driver = DRIVER_TEXT.format(host=host, user=user, shape=text)
    driver_rest = rest_of(lambda p: DRIVER_TEXT.format(host=host, user=user, shape=make(scheme, user, p, host, db)))
    # Free text can only go by shape: a URL in running text ends at a space, so a password with spaces in a URL is
    # masked when it is known (as the CLI always knows it; known secrets count from MIN_SECRET_LEN characters).
    by_shape_only = not (shape in URL_SHAPES and (re.search(r"\s", pw) or _NEXT_URL.search(pw) or "://" in pw))
    if by_shape_only or len(pw) >= MIN_SECRET_LEN:
        assert_hidden(scrub(text, [pw]), pw, rest)
        assert_hidden(scrub(in_driver, [pw]), pw, driver_rest)
    if by_shape_only:
        assert_hidden(scrub(text), pw, rest)
        assert_hidden(scrub(in_driver), pw, driver_rest)


@PROFILE
@given(passwords, st.sampled_from(["encoded", "lower hex", "plus", "odbc", "libpq", "json", "repr"]))
def test_known_secret_in_any_spelling(pw: str, how: str) -> None:
    assume(len(pw) >= 3)
    spelled = {
        "encoded": quote(pw, safe=""),
        "lower hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(pw, safe="")),
        "plus": quote(pw, safe="/+").replace("+", "%2B").replace("%20", "+"),
        "odbc": pw.replace("}", "}}"),
        "libpq": pw.replace("\\", "\\\\").replace("'", "\\'"),
        "json": __import__("json").dumps(pw)[1:-1],
        "repr": repr(pw)[1:-1],
    }[how]
    assert spelled in spellings_of(pw)
    text = f"server said: invalid value {spelled} for option"
    assert_hidden(scrub(text, [pw]), pw, "server said: invalid value  for option")


# -- validation --------------------------------------------------------------------------------------------


REDACT_SOURCE = Path(redact_module.__file__).read_text()
PROBES = ("x", "x@y", "x/y", "x#y", "%zz", "%ff", "%00")


def libpq_split(url: str) -> tuple[str, str, str, str]:
    """libpq's reading of a postgresql:// URI (fe-connect.c, conninfo_uri_parse_options): the user part ends at
    the first '@' met before any '/', the password at the first '@' after the user."""
    rest = url.split("://", 1)[1]
    stop = next((i for i, c in enumerate(rest) if c in "@/"), len(rest))
    user = password = ""
    start = 0
    if stop < len(rest) and rest[stop] == "@":
        userinfo = rest[:stop]
        user, _, password = userinfo.partition(":")
        start = stop + 1
    end = next((i for i in range(start, len(rest)) if rest[i] in "/?"), len(rest))
    hosts = rest[start:end]
    db = rest[end + 1 :].split("?", 1)[0] if end < len(rest) and rest[end] == "/" else ""
    return unquote(user), unquote(password), hosts, unquote(db)


def asyncpg_split(url: str) -> tuple[str, str, str, str]:
    """asyncpg's reading (connect_utils._parse_connect_dsn_and_args): urlsplit, the netloc's last '@'."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    return unquote(user), unquote(password), hosts, unquote(parts.path[1:])


@PROFILE
@given(st.sampled_from(["url", "url no //", "url no user"]), schemes, names, passwords, hosts, names)
@example("url", "postgresql", "u", "p@ss", "h", "db")
@example("url", "postgresql", "u", "pa/ss", "h", "db")
@example("url", "mssql", "u", "pa?ss", "h", "db")
@example("url", "postgresql", "u", "pa＠ss", "h", "db")
@example("url", "postgresql", "u", "100%", "h", "db")
def test_a_url_is_refused_or_read_alike_by_every_driver(
    shape: str, scheme: str, user: str, pw: str, host: str, db: str
) -> None:
    url = RAW_SHAPES[shape](scheme, user, pw, host, db)
    problem = url_problem(url)
    if problem is not None:
        # A refusal is made of fixed text and the scheme: whatever of the password it holds, it holds anyway.
        wording = "\n".join([REDACT_SOURCE, rest_of(lambda p: RAW_SHAPES[shape](scheme, user, p, host, db))])
        wording += "\n".join(url_problem(f"{scheme}{sep}u:{p}@h/d") or "" for sep in ("://", ":") for p in PROBES)
        assert "\n" not in problem
        assert_hidden(problem, pw, wording)
        with pytest.raises(UsageError) as exc:
            load_settings(None, {"source": "postgresql://u@h/db", "target": url}, environ={})
        message = str(exc.value)
        assert message == f"target URL (target.url) {problem}"
        return
    read = libpq_split(url)
    assert read == asyncpg_split(url)
    assert read[1] == unquote(pw)
    if scheme in ("mssql", "sqlserver"):
        parsed = parse_url(url.partition("?")[0])  # its options are SQL Server's own, not libpq's
        assert (parsed.user, parsed.password) == (read[0], read[1])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://u:p@ss@h/db", "more than one '@'"),
        ("postgresql://u:pa/ss@h/db", "an '@' after the host"),
        ("mssql://sa:pa?ss@h:1433/db", "an '@' after the host"),
        ("mssql://sa:pa#ss@h:1433/db", "contains '#'"),
        ("postgresql:u:secret@h/db", "no '//' after 'postgresql:'"),
        ("postgresql://u:secret@h:54x2/db", "port that is not a number"),
        ("postgresql://u:secret@h:99999/db", "port that is not a number"),
        ("mssql://sa:secret@h,1433/db", "write the port after a colon"),
        ("postgresql://u:sec%zzret@h/db", "'%' in the user or password"),
        ("postgresql://u:sec%ffret@h/db", "not UTF-8"),
        ("postgresql://u@h/db?password=a+b", "'+' in its query"),
        ("postgresql://u@h/db?password=a=b", "second '='"),
        ("postgresql://u@h/db?sslmode=require&&x=1", "empty option"),
        ("postgresql://u:secret@h/db\n", "control character"),
        ("postgresql+psycopg://u:secret@h/db", "lower case, no driver suffix"),
        ("mysql://root:secret@h/db", "unsupported URL scheme 'mysql'"),
    ],
)
def test_refusals_name_the_endpoint_and_the_fault(url: str, says: str) -> None:
    for name in ("source", "target"):
        flags = {"source": "postgresql://u@h/db", "target": "postgresql://u@h/db", name: url}
        with pytest.raises(UsageError) as exc:
            load_settings(None, flags, environ={})
        message = str(exc.value)
        assert message.startswith(f"{name} URL ({name}.url) "), message
        assert says in message and "\n" not in message
        for piece in ("secret", "ss@h", "pa/ss", "pa?ss", "pa#ss", "zzret", "ffret", "a+b", "a=b"):
            assert piece not in message


def test_percent_encoding_is_suggested() -> None:
    with pytest.raises(UsageError) as exc:
        load_settings(None, {"source": "postgresql://u:p@ss@h/db"}, environ={})
    assert "@ → %40" in str(exc.value) and "password_env" in str(exc.value) and "password_file" in str(exc.value)


@PROFILE
@given(passwords, st.sampled_from(["alice", "a%40b", "user.name"]))
def test_password_env_fills_a_url_every_driver_reads_back(pw: str, user: str) -> None:
    assume(pw == pw.strip())
    endpoint = Endpoint.model_validate({"url": f"postgresql://{user}@h:5432/db", "password_env": "RR_TEST_PW"})
    import os

    os.environ["RR_TEST_PW"] = pw
    try:
        url = endpoint.resolved_url()
        assert url_problem(url) is None
        assert libpq_split(url) == asyncpg_split(url) == (unquote(user), pw, "h:5432", "db")
        assert pw in known_secrets(load_settings(None, {"source": {"url": url}}, environ={})) or pw == unquote(pw)
        assert_hidden(endpoint.display(), pw, f"postgresql://{user}:***@h:5432/db")
    finally:
        del os.environ["RR_TEST_PW"]


def test_password_file_and_ray_token_are_known_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("file-Secret-77\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "ray-token-0123456789abcdef")
    s = load_settings(None, {"source": {"url": "postgresql://u@h/db", "password_file": str(secret)}}, environ={})
    text = "token ray-token-0123456789abcdef refused; password file-Secret-77 (file-Secret-77 encoded: file-Secret-77)"
    shown = scrub(text, known_secrets(s))
    assert "file-Secret-77" not in shown and "ray-token" not in shown and shown.startswith("token *** refused")
