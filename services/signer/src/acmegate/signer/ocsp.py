"""The OCSP responder (RFC 6960): the CA itself answers for the certificates it issued.

Each request is looked up in ``pki.certificates`` (one indexed query), so an answer is never
older than the revocation it reports: ``good`` for a certificate the CA issued and has not
revoked, ``revoked`` with the time and reason, ``unknown`` for a serial it never issued
(§2.2). Responses are signed by the CA key (the CA is its own responder, §2.6 / §4.2.2.2,
named by its subject) and carry the CA certificate in ``certs`` (§4.2.1): relying parties
such as FreeRADIUS verify a response only against the certificates inside it. They say
``thisUpdate``/``nextUpdate`` (``pki.ocsp_validity``).

A signed response is kept per certificate and reused while the certificate's status is the
one it states and at least half its validity is left (RFC 5019 §2.2.1 allows pre-produced
responses), so a relying party polling a certificate costs a query, not a signature. The
status is read on every request, whichever replica or process revoked: a revocation is never
answered with a kept "good". A request with a nonce (RFC 8954) gets a response of its own that
echoes it; a nonce outside 1..32 octets, and any critical request extension other than the
nonce, is ``malformedRequest`` (RFC 8954 §2.1; RFC 5280 §4.2 via RFC 6960 §4.4). A request
about another issuer, or for a CA this signer does not serve, gets ``unauthorized`` (§2.3).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from acmegate.common.clock import Clock
from acmegate.common.vocabulary import CertificateStatus, RevocationReason
from acmegate.signer import der
from acmegate.signer.authorities import Authorities, Authority
from acmegate.signer.db.inventory import RevocationStatus, certificate_status
from acmegate.signer.revocation import reason_flag
from acmegate.signer.serials import serial_hex

log = structlog.get_logger(__name__)

# CertID hash algorithms a request may use (SHA-1 is what nearly every client sends).
_CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# RFC 8954 §2.1: Nonce ::= OCTET STRING(SIZE(1..32)).
MAX_NONCE_BYTES = 32
# Kept responses per responder: ~1 KB each (with the CA certificate), so a few MB at most.
CACHE_ENTRIES = 8192


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def subject_public_key_bits(certificate: x509.Certificate) -> bytes:
    """The value of the certificate's subjectPublicKey BIT STRING (what issuerKeyHash hashes,
    RFC 6960 §4.1.1: without tag, length and unused-bits octet)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    parts = der.children(spki, der.read_tlv(spki))
    return parts[1].value(spki)[1:]


@dataclass(frozen=True)
class _IssuerHashes:
    """issuerNameHash and issuerKeyHash of one CA, per hash algorithm (RFC 6960 §4.1.1)."""

    by_algorithm: dict[str, tuple[bytes, bytes]]

    @classmethod
    def of(cls, certificate: x509.Certificate) -> _IssuerHashes:
        name = certificate.subject.public_bytes()
        key = subject_public_key_bits(certificate)
        return cls(
            {
                algorithm: (
                    hashlib.new(algorithm, name).digest(),
                    hashlib.new(algorithm, key).digest(),
                )
                for algorithm in _CERT_ID_HASHES
            }
        )


@dataclass(frozen=True)
class OcspAnswer:
    """A DER OCSPResponse and what HTTP caching needs of it (RFC 5019 §6.2)."""

    der: bytes
    # Set for a successful response without a nonce: one any cache may share until then.
    this_update: datetime | None = None
    next_update: datetime | None = None

    @property
    def shareable(self) -> bool:
        return self.next_update is not None


def _refused(status: ocsp.OCSPResponseStatus) -> OcspAnswer:
    return OcspAnswer(_unsuccessful(status))


@dataclass(frozen=True)
class _Kept:
    """A signed response and the status it states (reused only while that still holds)."""

    status: RevocationStatus | None
    answer: OcspAnswer
    renew_at: datetime


class OcspResponder:
    """Answers OCSP requests for the CAs with ``ocsp: true`` (module doc)."""

    def __init__(
        self, authorities: Authorities, pool: asyncpg.Pool, clock: Clock, *, validity: int
    ) -> None:
        self._authorities = {name: a for name, a in authorities.items() if a.config.ocsp}
        self._hashes = {
            name: _IssuerHashes.of(a.certificate) for name, a in self._authorities.items()
        }
        self._pool = pool
        self._clock = clock
        self._validity = timedelta(seconds=validity)
        # (CA, CertID hash algorithm, serial) -> the response last signed for it.
        self._kept: OrderedDict[tuple[str, str, int], _Kept] = OrderedDict()

    def serves(self, ca_name: str) -> bool:
        return ca_name in self._authorities

    def now(self) -> datetime:
        """The responder's clock (for the HTTP caching headers)."""
        return self._clock.now()

    async def respond(self, ca_name: str, request_der: bytes) -> OcspAnswer:
        """The OCSPResponse for ``request_der`` (always a response, never an exception)."""
        authority = self._authorities.get(ca_name)
        if authority is None:
            return _refused(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            nonce = _nonce(request)
        except ValueError:
            # Unparseable, several requests in one (this responder answers one at a time),
            # a nonce of the wrong size or a critical extension it does not know.
            return _refused(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        algorithm = request.hash_algorithm
        expected = self._hashes[ca_name].by_algorithm.get(algorithm.name)
        if expected is None:
            return _refused(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (request.issuer_name_hash, request.issuer_key_hash) != expected:
            return _refused(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        serial = serial_hex(request.serial_number)
        found = await certificate_status(self._pool, authority.name, serial)
        now = self._clock.now().replace(microsecond=0)
        key = (authority.name, algorithm.name, request.serial_number)
        if nonce is None:
            kept = self._kept.get(key)
            if kept is not None and kept.status == found and now < kept.renew_at:
                return kept.answer
        der = await self._sign(authority, request, found, now, nonce)
        if nonce is not None:
            return OcspAnswer(der)
        answer = OcspAnswer(der, now, now + self._validity)
        self._keep(key, _Kept(found, answer, now + self._validity / 2))
        return answer

    def _keep(self, key: tuple[str, str, int], kept: _Kept) -> None:
        self._kept[key] = kept
        self._kept.move_to_end(key)
        while len(self._kept) > CACHE_ENTRIES:
            self._kept.popitem(last=False)

    async def _sign(
        self,
        authority: Authority,
        request: ocsp.OCSPRequest,
        found: RevocationStatus | None,
        now: datetime,
        nonce: bytes | None,
    ) -> bytes:
        revocation_time = None
        reason = None
        if found is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif found.status == CertificateStatus.REVOKED and found.revoked_at is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = found.revoked_at.replace(microsecond=0)
            reason = reason_flag(found.revocation_reason or RevocationReason.UNSPECIFIED)
        else:
            status = ocsp.OCSPCertStatus.GOOD
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=status,
                this_update=now,
                next_update=now + self._validity,
                revocation_time=revocation_time,
                revocation_reason=reason,
            )
            # §4.2.1 certs: the signer's certificate, for relying parties that look nowhere
            # else (FreeRADIUS: "signer certificate not found" without it).
            .certificates([authority.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = await authority.key.sign_ocsp_response(
            builder, authority.certificate, authority.signature_hash
        )
        log.debug(
            "OCSP response signed",
            ca=authority.name,
            serial=serial_hex(request.serial_number),
            status=status.name,
        )
        return response.public_bytes(serialization.Encoding.DER)


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    """The request's nonce; ``ValueError`` for one outside 1..32 octets (RFC 8954 §2.1) or for
    a critical extension other than the nonce (RFC 5280 §4.2: it must not be ignored)."""
    nonce: bytes | None = None
    for extension in request.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = extension.value.nonce
            if not 0 < len(nonce) <= MAX_NONCE_BYTES:
                raise ValueError(f"a nonce of {len(nonce)} octets")
        elif extension.critical:
            raise ValueError(f"unknown critical extension {extension.oid.dotted_string}")
    return nonce
