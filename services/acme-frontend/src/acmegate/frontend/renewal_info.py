"""ACME Renewal Information (ARI, RFC 9773): when a client should renew a certificate, and
newOrder's ``replaces``.

A certificate is named by its certID (§4.1): base64url(the keyIdentifier of its Authority Key
Identifier) "." base64url(the DER content octets of its serial number). The suggested window
(§4.2) is the last third of the validity period, ending a ninth of it before notAfter so that a
client renewing at the end of the window still has time to retry; a revoked certificate gets a
window that has already begun, so clients renew at once.

Only certificates this frontend delivered have renewal information (``acme.certificates``), and
only revocations it saw (ACME revokeCert, the admin API's revoke) move the window; a certificate
the policy service had revoked (Revoke On Failure) keeps its normal window until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from acmegate.common.errors import AcmeError, ErrorKind, malformed, not_found, unauthorized
from acmegate.common.ids import b64url, b64url_decode
from acmegate.common.messages import Identifier
from acmegate.frontend.db import renewal_info as renewal_db
from acmegate.frontend.db.gate import CHECKED, Checked, Gate
from acmegate.frontend.db.renewal_info import Delivered

# §4.3: how long a client should wait before asking again (Retry-After). Six hours is the
# polling interval the RFC's examples use; a window is hardly ever moved sooner.
RETRY_AFTER = 6 * 3600
# A revoked certificate's window: started an hour ago, over in a minute (renew now).
_REVOKED_LEAD = timedelta(hours=1)
_REVOKED_SPAN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CertId:
    key_identifier: bytes
    serial: int

    def __str__(self) -> str:
        return f"{b64url(self.key_identifier)}.{b64url(serial_octets(self.serial))}"


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def serial_octets(serial: int) -> bytes:
    """The content octets of the DER INTEGER ``serial`` (X.509 serials are positive)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=False)


def parse_cert_id(text: str) -> CertId:
    """A certID as §4.1 writes it; ``malformed`` otherwise."""
    aki_text, dot, serial_text = text.partition(".")
    try:
        if not dot:
            raise ValueError("no '.'")
        key_identifier = b64url_decode(aki_text)
        octets = b64url_decode(serial_text)
    except ValueError as exc:
        raise malformed(f"certID {text!r} is not base64url(AKI) '.' base64url(serial)") from exc
    serial = int.from_bytes(octets, "big", signed=True) if octets else 0
    if not key_identifier or serial <= 0 or serial_octets(serial) != octets:
        # One DER encoding per serial, so one certID per certificate.
        raise malformed(f"certID {text!r}: not a key identifier and a DER-encoded serial")
    return CertId(key_identifier, serial)


def cert_id_of(certificate: x509.Certificate) -> CertId:
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    return CertId(aki.key_identifier, certificate.serial_number)


def suggested_window(leaf: x509.Certificate, revoked: bool, now: datetime) -> Window:
    if revoked:
        return Window(now - _REVOKED_LEAD, now + _REVOKED_SPAN)
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    lifetime = not_after - not_before
    return Window(not_after - lifetime / 3, not_after - lifetime / 9)


async def find(
    pool: renewal_db.Pool, cert_id: CertId, gate: Gate | Checked = CHECKED
) -> Delivered | None:
    """The delivered certificate ``cert_id`` names (serial and issuer key both match)."""
    found = await renewal_db.find_by_serial(pool, format(cert_id.serial, "x"), gate)
    if found is None or cert_id_of(found.leaf).key_identifier != cert_id.key_identifier:
        return None
    return found


async def renewal_info(pool: renewal_db.Pool, text: str, now: datetime) -> Window:
    """GET renewalInfo/{certID} (§4.2): the suggested window, or 404."""
    found = await find(pool, parse_cert_id(text))
    if found is None:
        raise not_found("no certificate of this server has this certID")
    return suggested_window(found.leaf, found.revoked, now)


async def replaced_certificate(
    pool: renewal_db.Pool,
    replaces: object,
    account_id: str,
    identifiers: list[Identifier],
    gate: Gate | Checked,
) -> str:
    """The id of the certificate newOrder's ``replaces`` names (§5), if this account may
    replace it with an order for ``identifiers``. The lookup is the request's first statement
    (it redeems what ``gate`` owes)."""
    if not isinstance(replaces, str):
        raise malformed("'replaces' must be a certID string (RFC 9773 §5)")
    found = await find(pool, parse_cert_id(replaces), gate)
    if found is None:
        raise malformed(f"'replaces' names no certificate of this server: {replaces!r}")
    if found.account_id != account_id:
        raise unauthorized("'replaces' names a certificate of another account")
    # §5: the order and the certificate it replaces must share at least one identifier.
    ordered = {(i.type, i.value) for i in identifiers}
    if not ordered & {(i.type, i.value) for i in found.identifiers}:
        raise malformed("'replaces' names a certificate for none of the order's identifiers")
    if found.replaced:
        raise AcmeError(
            ErrorKind.ALREADY_REPLACED, f"certificate {replaces} has already been replaced"
        )
    return found.id
