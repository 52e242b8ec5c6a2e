"""A tls-alpn-01 responder that follows RFC 8738 §6 for IP addresses (pebble-challtestsrv
names the reverse-DNS name as a dNSName instead): a TLS server on loopback that offers ALPN
``acme-tls/1`` and presents a self-signed certificate with the address as iPAddress SAN and
the critical acmeIdentifier extension (RFC 8737 §3)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def challenge_certificate(address: str, key_authorization: str, folder: Path) -> tuple[Path, Path]:
    """PEM certificate and key files of the tls-alpn-01 certificate for ``address``."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme tls-alpn-01")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        # The extension value is the DER OCTET STRING of the digest (RFC 8737 §3).
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "alpn.pem", folder / "alpn.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.asynccontextmanager
async def tls_alpn_responder(
    address: str, key_authorization: str, folder: Path, *, port: int
) -> AsyncIterator[None]:
    """Serve the challenge certificate on loopback ``port``."""
    cert_path, key_path = challenge_certificate(address, key_authorization, folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.set_alpn_protocols(["acme-tls/1"])

    async def close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", port, ssl=context)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()
