"""ACME Renewal Information (ARI, RFC 9773): which certificate a ``certID`` names, and the
window in which its client should renew it.

RFC 9773 §4.1: ``certID`` is ``base64url(AKI keyIdentifier) "." base64url(serial)``, the serial
being the bytes of its DER INTEGER without tag and length. §4.2: the server suggests a window;
a client renews at a random time inside it, at once when it has passed. We suggest the last
third of the validity but for its final sixth (as Let's Encrypt does: renew at about two thirds
of the lifetime, with room for retries before expiry), and a window that has already passed
for a revoked certificate, so that its client replaces it now.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from acmegate.common.errors import malformed


@dataclass(frozen=True, slots=True)
class CertId:
    key_identifier: bytes
    serial: int

    @property
    def serial_hex(self) -> str:
        """The serial as the frontend stores it (lower-case hex, no leading zeros)."""
        return format(self.serial, "x")


def _b64url(text: str) -> bytes:
    if not text or "=" in text:
        raise ValueError("empty or padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_cert_id(text: str) -> CertId:
    """The parts of ``text``, or a ``malformed`` problem naming what is wrong."""
    aki, dot, serial = text.partition(".")
    try:
        if not dot:
            raise ValueError("no '.'")
        key_identifier, serial_bytes = _b64url(aki), _b64url(serial)
    except (ValueError, binascii.Error) as exc:
        raise malformed(
            "a certID is base64url(AKI keyIdentifier) '.' base64url(serial) (RFC 9773 §4.1)"
        ) from exc
    if serial_bytes[0] & 0x80:
        raise malformed("the certID's serial is negative (RFC 9773 §4.1: DER INTEGER bytes)")
    return CertId(key_identifier, int.from_bytes(serial_bytes, "big"))


def cert_id_of(certificate: x509.Certificate) -> str:
    """The certID of ``certificate`` (for tests and for clients of the admin API)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    serial = certificate.serial_number
    length = serial.bit_length() // 8 + 1  # room for the sign bit, as DER requires
    encode = base64.urlsafe_b64encode
    parts = (aki.key_identifier, serial.to_bytes(length, "big"))
    return ".".join(encode(part).decode("ascii").rstrip("=") for part in parts)


def leaf_of(chain_pem: str) -> x509.Certificate | None:
    """The first certificate of a stored chain, None if it does not parse."""
    try:
        return x509.load_pem_x509_certificate(chain_pem.encode("ascii"))
    except ValueError:
        return None


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as RFC 9773 §4.2's examples write it."""
    return moment.isoformat().replace("+00:00", "Z")


def issued_under(certificate: x509.Certificate, cert_id: CertId) -> bool:
    """Whether ``certificate``'s AKI is the one ``cert_id`` names (serials are per issuer)."""
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return False
    return aki.key_identifier == cert_id.key_identifier


def suggested_window(
    certificate: x509.Certificate, revoked_at: datetime | None
) -> tuple[datetime, datetime]:
    """(start, end) of the renewal window RFC 9773 §4.2 asks for."""
    if revoked_at is not None:
        # Already passed: the client renews at once.
        return revoked_at, revoked_at
    not_before = certificate.not_valid_before_utc
    lifetime = certificate.not_valid_after_utc - not_before
    return not_before + lifetime * 2 / 3, not_before + lifetime * 5 / 6
