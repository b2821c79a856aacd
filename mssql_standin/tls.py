"""TLS for the stand-in: a self-signed certificate made at start-up, TLS 1.2 as SQL Server offers it.

SQL Server encrypts at least LOGIN7 by default, so clients expect a handshake even with encryption "off";
they are told not to verify the certificate, hence a throwaway one made in memory is enough.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@functools.cache
def self_signed_pem(common_name: str = "mssql-standin") -> tuple[bytes, bytes]:
    """Return (certificate PEM, private key PEM); made once per process because RSA key generation is slow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return cert_pem, key_pem


@functools.cache
def server_context() -> ssl.SSLContext:
    """A server-side context limited to TLS 1.2, which every client here (FreeTDS, ODBC 18, tiberius) speaks."""
    cert_pem, key_pem = self_signed_pem()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
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
