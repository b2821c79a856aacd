"""ray-replicator over TLS: a generated StackOverflow2010 copied out of a stand-in that forces encryption (and one
that encrypts the login only), with the certificate verified against a test CA, both readers and every writer,
verified by checksums; and a certificate that does not verify fails with one line."""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mssql_standin.tls import Pki, make_test_pki
from ray_replicator import replicate
from ray_replicator.engines.base import UsageError
from ray_replicator.engines.mssql import mssql_python_connection_string, parse_url
from ray_replicator.synth import stackoverflow as so
from tests.engines.mssql.servers import PASSWORD, Server, small_run_settings, standin, synth_rows
from tests.helpers import assert_one_line_error, cli

SCALE = 0.002
SEED = 11
TABLES = ["dbo.Badges", "dbo.Users", "dbo.LinkTypes", "dbo.Votes"]


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with tempfile.TemporaryDirectory(prefix="rr_pki_") as tmp:
        yield make_test_pki(tmp)


def _tls_standin(pki: Pki, encryption: str, **spec: Any) -> Any:
    return standin(encryption=encryption, tls_cert=str(pki.cert_file), tls_key=str(pki.key_file), **spec)


@pytest.fixture(scope="module")
def forced(pki: Pki) -> Iterator[Server]:
    """Encryption forced by the server, as `--encryption on`."""
    with _tls_standin(pki, "on", so={"scale": SCALE, "seed": SEED, "tables": [t.name for t in so.TABLES]}) as s:
        yield s


def _verified(pki: Pki, reader: str = "mssql-python", **extra: str) -> dict[str, str]:
    """URL options for encrypt=yes with the certificate verified against the test CA. ODBC Driver 18 matches
    only DNS names, so the certificate's 'localhost' is named; FreeTDS also matches the IP address."""
    opts = {"encrypt": "yes", "ca_file": str(pki.ca_file), "reader": reader, **extra}
    if reader == "mssql-python":
        opts["hostname_in_certificate"] = "localhost"
    return opts


def _settings(source: str, target: str, **extra: Any) -> dict[str, Any]:
    """Every copy here is verified by checksums."""
    return small_run_settings(source, target, **{"verify": "checksums", **extra})


def _rows(server: Server, table: str) -> list[tuple[Any, ...]]:
    return synth_rows(server, so.table(table))


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_encrypted_and_verified_to_postgres(
    forced: Server, pki: Pki, make_database: Callable[[str], str], ray_local: None, reader: str
) -> None:
    import psycopg

    pg_url = make_database("tls")
    report = replicate(_settings(forced.url(**_verified(pki, reader)), pg_url))
    assert report.status == "ok", report.errors
    assert {t.table.split(".")[-1]: t.rows for t in report.tables} == so.row_counts(SCALE)
    assert {t.verified for t in report.tables} == {"yes (checksums)"}
    with psycopg.connect(pg_url) as conn:
        cols = ", ".join(f'"{c}"' for c in so.table("Votes").column_names)
        got = conn.execute(f'SELECT {cols} FROM dbo."Votes" ORDER BY "Id"').fetchall()
    assert got == _rows(forced, "Votes")


@pytest.mark.parametrize("writer", ["bulkcopy", "insert", "bulk-insert"])
@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_encrypted_to_sql_server_every_writer(
    forced: Server, pki: Pki, ray_local: None, reader: str, writer: str
) -> None:
    bulk = tempfile.mkdtemp(prefix="rr_bulk_")
    with _tls_standin(pki, "on", bulk_dir=bulk) as dst:
        opts = {"writer": writer, **({"bulk_dir": bulk} if writer == "bulk-insert" else {})}
        report = replicate(
            _settings(forced.url(**_verified(pki, reader)), dst.url(**_verified(pki, **opts)), tables=TABLES)
        )
        assert report.status == "ok", report.errors
        assert {t.verified for t in report.tables} == {"yes (checksums)"}
        for name in ("Badges", "Users", "LinkTypes", "Votes"):
            assert _rows(forced, name) == _rows(dst, name), name


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
@pytest.mark.parametrize("encrypt", ["no", "yes"])
def test_server_encrypting_the_login_only(
    pki: Pki, make_database: Callable[[str], str], ray_local: None, reader: str, encrypt: str
) -> None:
    """`--encryption off` (SQL Server's default): encrypt=no keeps TLS to the login, encrypt=yes asks for all."""
    spec = {"so": {"scale": SCALE, "seed": SEED, "tables": ["Votes", "Badges"]}}
    with _tls_standin(pki, "off", **spec) as src:
        opts = _verified(pki, reader) if encrypt == "yes" else {"reader": reader}
        report = replicate(_settings(src.url(**opts), make_database("loginonly")))
        assert report.status == "ok", report.errors
        counts = so.row_counts(SCALE)
        assert {t.table.split(".")[-1]: t.rows for t in report.tables} == {
            "Votes": counts["Votes"],
            "Badges": counts["Badges"],
        }


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_trusting_the_certificate_skips_verification(
    forced: Server, make_database: Callable[[str], str], ray_local: None, reader: str
) -> None:
    url = forced.url(encrypt="yes", trust_server_certificate="yes", reader=reader)
    report = replicate(_settings(url, make_database("trust"), tables=["dbo.Badges"]))
    assert report.status == "ok", report.errors


# --------------------------------------------------------------------------------------------- failures

# A ca_file extends the trust of the whole process (SSL_CERT_FILE, see mssql._trust_ca_file); runs above did that
# in this process, so the CLI runs below start from the system's own trust store.
PLAIN_TRUST = {"SSL_CERT_FILE": ssl.get_default_verify_paths().openssl_cafile}


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_certificate_from_another_ca_fails_in_one_line(forced: Server, pki: Pki, tmp_path: Path, reader: str) -> None:
    src = forced.url(**_verified(pki, reader) | {"ca_file": str(pki.other_ca_file)})
    done = cli(
        "run",
        "--source",
        src,
        "--target",
        "postgresql://nobody@127.0.0.1:1/none",
        "--report",
        str(tmp_path),
        env=PLAIN_TRUST,
    )
    line = assert_one_line_error(done, 1, f"127.0.0.1:{forced.port}", "ca_file=", "trust_server_certificate=yes")
    assert PASSWORD not in done.stdout + done.stderr
    if reader == "mssql-python":
        assert "certificate did not verify (unable to get local issuer certificate)" in line


def test_self_signed_certificate_is_refused_by_default(tmp_path: Path) -> None:
    """encrypt=yes verifies unless told otherwise: the stand-in's own self-signed certificate is not trusted."""
    with standin(encryption="on") as src:
        done = cli(
            "run", "--source", src.url(encrypt="yes"), "--target", "postgresql://x@127.0.0.1:1/none", env=PLAIN_TRUST
        )
        assert_one_line_error(done, 1, f"127.0.0.1:{src.port}", "its TLS certificate did not verify")


def test_wrong_host_name_fails_in_one_line(forced: Server, pki: Pki) -> None:
    src = forced.url(**_verified(pki) | {"hostname_in_certificate": "sql.example.com"})
    done = cli("run", "--source", src, "--target", "postgresql://x@127.0.0.1:1/none", env=PLAIN_TRUST)
    assert_one_line_error(done, 1, "did not verify (subject name does not match host name)", "hostname_in_certificate=")


def test_strict_against_a_server_without_tds8(forced: Server, pki: Pki) -> None:
    """The stand-in in `on` mode accepts TDS 8.0 too; one without TLS refuses it and the run says so."""
    with standin(encryption="notsup") as plain:
        src = plain.url(encrypt="strict", ca_file=str(pki.ca_file), hostname_in_certificate="localhost")
        done = cli("run", "--source", src, "--target", "postgresql://x@127.0.0.1:1/none", env=PLAIN_TRUST)
        assert_one_line_error(done, 1, f"127.0.0.1:{plain.port}", "encrypt=strict")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("encrypt=maybe", "mssql URL option encrypt='maybe' is not one of no, yes, strict"),
        ("encrypt=yes&ca_file=/nonexistent/ca.pem", "ca_file='/nonexistent/ca.pem': no such file"),
        ("encrypt=strict&trust_server_certificate=yes", "encrypt=strict always verifies the server certificate"),
        ("encrypt=yes&ca_file={ca}&trust_server_certificate=yes", "ca_file= and trust_server_certificate=yes"),
    ],
)
def test_bad_tls_options_are_usage_errors(pki: Pki, query: str, message: str) -> None:
    url = f"mssql://sa:{PASSWORD}@127.0.0.1:1/db?" + query.format(ca=pki.ca_file)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_url(url)
    done = cli("run", "--source", url, "--target", "postgresql://x@127.0.0.1:1/none", env=PLAIN_TRUST)
    assert_one_line_error(done, 2, message)


def test_connection_strings_per_mode(pki: Pki) -> None:
    base = f"mssql://sa:{PASSWORD}@h:1/db"
    assert mssql_python_connection_string(parse_url(base + f"?ca_file={pki.ca_file}")).endswith(
        "Encrypt=no;TrustServerCertificate=no;PacketSize=16000"
    ), "a CA file asks for verification also when only the server forces encryption"
    assert mssql_python_connection_string(parse_url(base)).endswith(
        "Encrypt=no;TrustServerCertificate=yes;PacketSize=16000"
    )
    assert mssql_python_connection_string(parse_url(base + "?encrypt=yes")).endswith(
        "Encrypt=yes;TrustServerCertificate=no;PacketSize=16000"
    )
    assert mssql_python_connection_string(
        parse_url(base + f"?encrypt=strict&ca_file={pki.ca_file}&hostname_in_certificate=db.example")
    ).endswith("Encrypt=strict;HostNameInCertificate={db.example};PacketSize=16000")
