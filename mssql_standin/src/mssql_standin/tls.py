"""TLS for the stand-in: a certificate (given, or self-signed at start-up) and TLS 1.2 as SQL Server offers it.

SQL Server encrypts at least LOGIN7 by default, so clients expect a handshake even with encryption "off";
clients that are told not to verify accept the throwaway self-signed certificate. To test verification, give
the stand-in a real certificate and key (`--tls-cert`, `--tls-key`), e.g. from `make_test_pki`.

TDS 8.0 ("strict") runs the TLS handshake first, straight on TCP, and names the protocol with ALPN `tds/8.0`;
the same context serves both, since a client that does not offer ALPN simply gets none.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ALPN_TDS8 = "tds/8.0"
_LOOPBACK_SAN: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    days: int = 365,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(_LOOPBACK_SAN), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@functools.cache
def self_signed_pem(common_name: str = "mssql-standin") -> tuple[bytes, bytes]:
    """Return (certificate PEM, private key PEM); made once per process because RSA key generation is slow.
    Valid for localhost and 127.0.0.1, so a client that pins it (e.g. ODBC ServerCertificate=) can verify it."""
    key = _key()
    cert = _cert(common_name, key, common_name, key, ca=False)
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@dataclass(frozen=True)
class Pki:
    """Files of a throwaway CA and a server certificate it signed (for localhost and 127.0.0.1)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    other_ca_file: Path  # a CA that did not sign the server certificate: verification must fail with it


def make_test_pki(directory: str | os.PathLike[str]) -> Pki:
    """Write a CA, a server certificate signed by it, its key, and an unrelated CA into `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, server_key = _key(), _key(), _key()
    ca = _cert("mssql-standin test CA", ca_key, "mssql-standin test CA", ca_key, ca=True)
    other = _cert("unrelated CA", other_key, "unrelated CA", other_key, ca=True)
    server = _cert("localhost", server_key, "mssql-standin test CA", ca_key, ca=False)
    out = Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "other-ca.pem")
    out.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.other_ca_file.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    out.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    out.key_file.write_bytes(_pem_key(server_key))
    os.chmod(out.key_file, 0o600)
    return out


@functools.cache
def server_context(cert_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    """A server-side context limited to TLS 1.2, which every client here (FreeTDS, ODBC 18, tiberius) speaks.
    Without files it serves the self-signed certificate made for this process."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ALPN_TDS8])
    if cert_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
        return ctx
    cert_pem, key_pem = self_signed_pem()
    # load_cert_chain only reads files; the files live just long enough to be loaded.
    with tempfile.TemporaryDirectory() as tmp:
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx
