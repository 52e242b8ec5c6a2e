"""tls-alpn-01 (RFC 8737; for IP addresses RFC 8738 §6).

Connect to port 443 of the name, offer only ALPN ``acme-tls/1`` with the name as SNI (for an
IP address its reverse-DNS name, RFC 8738 §6), and require a certificate whose only SAN is the
name (the address) and which carries the critical acmeIdentifier extension
(1.3.6.1.5.5.7.1.31) holding the OCTET STRING SHA-256(key authorization) (RFC 8737 §3).
The certificate is self-signed by design and is not checked against any trust store.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from acmegate.attestation.validation.problems import connection, incorrect, tls
from acmegate.attestation.validation.resolver import Lookups
from acmegate.common.errors import AcmeError

ALPN = "acme-tls/1"
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # RFC 8737 §4: TLS 1.2 or higher.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN])
    return context


def sni_name(name: str, is_ip: bool) -> str:
    """The SNI of the handshake: the name, or an address's reverse name (RFC 8738 §6)."""
    if is_ip:
        return ipaddress.ip_address(name).reverse_pointer
    return name


async def _peer_certificate(address: str, port: int, sni: str) -> tuple[bytes, str | None]:
    try:
        _reader, writer = await asyncio.open_connection(
            address, port, ssl=_context(), server_hostname=sni
        )
    except ssl.SSLError as exc:
        raise tls(f"TLS handshake with {address}:{port} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise connection(f"cannot connect to {address}:{port} ({exc.strerror or exc})") from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    if not der:
        raise tls(f"{address}:{port} presented no certificate")
    return der, protocol


def check_certificate(der: bytes, *, name: str, is_ip: bool, key_authorization: str) -> None:
    """The RFC 8737 §3 checks of a presented challenge certificate."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        raise incorrect("the tls-alpn-01 certificate has no readable subjectAltName") from None
    names: list[str] = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
    if len(list(sans)) != 1 or names != [name]:
        raise incorrect(f"the tls-alpn-01 certificate must name exactly {name}, not {names}")
    if is_ip and not sans.get_values_for_type(x509.IPAddress):
        raise incorrect("the tls-alpn-01 certificate must name the address as an iPAddress")
    try:
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    except x509.ExtensionNotFound:
        raise incorrect("the tls-alpn-01 certificate lacks the acmeIdentifier extension") from None
    if not extension.critical:
        raise incorrect("the acmeIdentifier extension must be critical (RFC 8737 §3)")
    assert isinstance(extension.value, x509.UnrecognizedExtension)
    expected = b"\x04\x20" + hashlib.sha256(key_authorization.encode("ascii")).digest()
    if extension.value.value != expected:
        raise incorrect(
            "the acmeIdentifier extension does not hold SHA-256 of the key authorization"
        )


async def validate(
    lookups: Lookups, *, name: str, is_ip: bool, port: int, key_authorization: str
) -> None:
    """Return if ``name`` answers tls-alpn-01 correctly on ``port``; else raise the problem.
    The first address that completes a handshake is the one judged."""
    addresses = [name] if is_ip else await lookups.addresses(name)
    failure: AcmeError | None = None
    for address in addresses:
        try:
            der, protocol = await _peer_certificate(address, port, sni_name(name, is_ip))
        except AcmeError as exc:  # the next address may answer
            failure = exc
            continue
        if protocol != ALPN:
            raise tls(f"{address}:{port} did not negotiate ALPN {ALPN!r} (got {protocol!r})")
        check_certificate(der, name=name, is_ip=is_ip, key_authorization=key_authorization)
        return
    assert failure is not None
    raise failure
