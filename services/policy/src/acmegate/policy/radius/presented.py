"""What FreeRADIUS sends about the client certificate of an EAP-TLS session (docs/radius.md).

Two shapes are accepted:

- the certificate itself, PEM (``application/x-pem-file``, ``text/plain``, or
  ``{"certificate": "<PEM>"}`` in JSON) or DER (``application/pkix-cert``): the endpoint then
  checks its chain and reads every identity from it;
- the attributes rlm_rest sends (``body = 'json'``: ``{"TLS-Client-Cert-Serial": {"type":
  "string", "value": ["…"]}, …}``; ``body = 'post'``: form-encoded; or a flat JSON object of
  ``"TLS-Client-Cert-…": "value"``). FreeRADIUS 3 exposes the serial, subject, issuer, common
  name and the DNS/email/UPN SANs, not the PermanentIdentifier and not the certificate, so the
  chain check is FreeRADIUS's own (its ``ca_file`` must be the gateway's CA) and the endpoint
  checks that the issuer is one of the gateway's CAs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.x509.oid import NameOID

from acmegate.common.json_input import JsonInputError, decode_json
from acmegate.common.x509names import PERMANENT_IDENTIFIER, decode_permanent_identifier

SERIAL = "TLS-Client-Cert-Serial"
ISSUER = "TLS-Client-Cert-Issuer"
COMMON_NAME = "TLS-Client-Cert-Common-Name"
SAN_DNS = "TLS-Client-Cert-Subject-Alt-Name-Dns"

_PEM_TYPES = ("application/x-pem-file", "application/pem-certificate-chain", "text/plain")


class MalformedRequest(ValueError):
    """Neither a certificate nor FreeRADIUS attributes (HTTP 400)."""


@dataclass(frozen=True)
class Presented:
    """The client certificate, or FreeRADIUS's attributes of it."""

    certificate: x509.Certificate | None = None
    attributes: Mapping[str, list[str]] = field(default_factory=dict)

    def attribute(self, name: str) -> str | None:
        values = self.attributes.get(name) or []
        return next((value for value in values if value), None)

    @property
    def serial_hex(self) -> str | None:
        """The certificate's serial number as lower-case hex (the signer's form)."""
        if self.certificate is not None:
            return format(self.certificate.serial_number, "x")
        text = self.attribute(SERIAL)
        if text is None:
            return None
        cleaned = text.strip().replace(":", "").lower().removeprefix("0x")
        try:
            return format(int(cleaned, 16), "x")
        except ValueError:
            return None


def _attributes(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """rlm_rest's attribute map (or a flat one) as name → values."""
    attributes: dict[str, list[str]] = {}
    for key, value in raw.items():
        # rlm_rest may qualify names with their list ("request:User-Name").
        name = key.rsplit(":", 1)[-1] if ":" in key else key
        if isinstance(value, Mapping):
            value = value.get("value")
        values = value if isinstance(value, list) else [value]
        attributes[name] = [str(v) for v in values if v is not None]
    return attributes


def _pem(text: str) -> x509.Certificate:
    try:
        # A chain may follow the leaf; the leaf is first.
        return x509.load_pem_x509_certificates(text.encode())[0]
    except ValueError as exc:
        raise MalformedRequest(f"not a PEM certificate: {exc}") from exc


def parse(body: bytes, content_type: str) -> Presented:
    """Read the request body; :class:`MalformedRequest` if it holds nothing usable."""
    if not body:
        raise MalformedRequest("empty body: send the client certificate or its attributes")
    if content_type == "application/pkix-cert":
        try:
            return Presented(certificate=x509.load_der_x509_certificate(body))
        except ValueError as exc:
            raise MalformedRequest(f"not a DER certificate: {exc}") from exc
    if content_type in _PEM_TYPES or body.lstrip().startswith(b"-----BEGIN"):
        return Presented(certificate=_pem(body.decode("ascii", errors="replace")))
    if content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        raw: dict[str, list[str]] = {}
        for key, value in pairs:
            raw.setdefault(key, []).append(value)
        return Presented(attributes=_attributes(raw))
    try:
        data = decode_json(body)
    except JsonInputError as exc:
        raise MalformedRequest(f"the body is not acceptable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedRequest("expected a JSON object")
    certificate = data.get("certificate")
    if isinstance(certificate, str):
        return Presented(certificate=_pem(certificate))
    attributes = _attributes(data)
    if not any(name.startswith("TLS-Client-Cert-") for name in attributes):
        raise MalformedRequest(
            "no certificate and no TLS-Client-Cert-* attribute: is this an EAP-TLS request?"
        )
    return Presented(attributes=attributes)


def _san(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def identity_of(presented: Presented, identity: str) -> str | None:
    """The value a RADIUS lookup policy's ``identity`` names in what was presented."""
    certificate = presented.certificate
    if certificate is None:
        if identity == "certificate_san_dns":
            return presented.attribute(SAN_DNS)
        if identity == "certificate_common_name":
            return presented.attribute(COMMON_NAME)
        return None  # the PermanentIdentifier is not among FreeRADIUS's attributes
    if identity == "certificate_common_name":
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else None
    san = _san(certificate)
    if san is None:
        return None
    if identity == "certificate_san_dns":
        dns = san.get_values_for_type(x509.DNSName)
        return dns[0] if dns else None
    if identity == "certificate_permanent_identifier":
        for name in san.get_values_for_type(x509.OtherName):
            if name.type_id == PERMANENT_IDENTIFIER:
                try:
                    value, _ = decode_permanent_identifier(name.value)
                except ValueError:
                    continue
                if value:
                    return value
    return None
