"""Which client certificates the RADIUS endpoint will even look at: the gateway's own.

The check (check.py) then asks the signer what it recorded when it issued the certificate.

The CA certificates come from the configuration (``certificate_authorities[].certificate``, read
once at start; the signer's package is not imported, docs/design.md "Ownership"). A presented
certificate must be signed by one of them (name and signature), be within its validity, and, if it
lists extended key usages, allow TLS client authentication (RFC 5280 §4.2.1.12). In attribute mode
(no certificate, docs/radius.md) only the issuer's name can be compared: FreeRADIUS verified the
chain against its ``ca_file``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.common.config.model import Config

# OpenSSL's short names, as FreeRADIUS prints an issuer (X509_NAME_oneline: /O=…/CN=…).
_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.STREET_ADDRESS: "street",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
}


class TrustError(Exception):
    """A configured CA certificate cannot be read (the service does not start)."""


class Untrusted(Exception):
    """Why a presented certificate is not one of the gateway's, valid now (a reject)."""


def oneline(name: x509.Name) -> str:
    """``/O=Example/CN=Devices CA``: a name as OpenSSL (and FreeRADIUS) print it."""
    parts = []
    for attribute in name:
        short = _SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)
        parts.append(f"/{short}={attribute.value!s}")
    return "".join(parts)


def _fold(text: str) -> str:
    # FreeRADIUS may print ", " separated RFC 2253 forms on some builds; compare loosely.
    return text.replace(", ", "/").replace(",", "/").strip("/ ").casefold()


@dataclass(frozen=True)
class CaTrust:
    """The CA certificates the endpoint trusts, by configured name."""

    authorities: tuple[tuple[str, x509.Certificate], ...]

    @classmethod
    def from_config(cls, config: Config, names: Sequence[str] = ()) -> CaTrust:
        """Read the issuing CA certificates (all configured CAs, or those in ``names``)."""
        loaded: list[tuple[str, x509.Certificate]] = []
        for ca in config.certificate_authorities:
            if names and ca.name not in names:
                continue
            try:
                pem = Path(ca.certificate).read_bytes()
                loaded.append((ca.name, x509.load_pem_x509_certificate(pem)))
            except (OSError, ValueError) as exc:
                raise TrustError(f"certificate authority {ca.name!r}: {exc}") from exc
        if not loaded:
            raise TrustError("no certificate authority to trust for RADIUS")
        return cls(tuple(loaded))

    def issuer_of(self, certificate: x509.Certificate, now: datetime) -> str:
        """The name of the CA that issued ``certificate``; :class:`Untrusted` unless it is one
        of ours, valid now, and (if it lists extended key usages) allows clientAuth."""
        issuer = next(
            ((name, ca) for name, ca in self.authorities if ca.subject == certificate.issuer),
            None,
        )
        if issuer is None:
            issued_by = oneline(certificate.issuer)
            raise Untrusted(f"the certificate was not issued by this gateway (issuer {issued_by})")
        name, ca = issuer
        try:
            certificate.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            raise Untrusted(
                f"the certificate's signature does not verify with CA {name!r}"
            ) from None
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise Untrusted("the certificate is expired or not yet valid")
        if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
            raise Untrusted(f"CA {name!r} is expired or not yet valid")
        try:
            usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return name
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise Untrusted(
                "the certificate does not allow TLS client authentication (no clientAuth)"
            )
        return name

    def issuer_named(self, issuer: str | None) -> str:
        """Attribute mode: the CA FreeRADIUS's ``TLS-Client-Cert-Issuer`` names;
        :class:`Untrusted` unless it is one of ours."""
        if not issuer:
            raise Untrusted("FreeRADIUS sent no TLS-Client-Cert-Issuer")
        wanted = _fold(issuer)
        for name, ca in self.authorities:
            if _fold(oneline(ca.subject)) == wanted:
                return name
        raise Untrusted(f"the certificate was not issued by this gateway (issuer {issuer})")
