"""The OCSP responder (RFC 6960): the CA itself answers for the certificates it issued.

Each request is looked up in ``pki.certificates`` (one indexed query), so an answer is never
older than the revocation it reports: ``good`` for a certificate the CA issued and has not
revoked, ``revoked`` with the time and reason, ``unknown`` for a serial it never issued
(§2.2). Responses are signed by the CA key (the CA is its own responder, §2.6 / §4.2.2.2,
named by its subject), echo a request nonce (RFC 8954), and say
``thisUpdate``/``nextUpdate`` (``pki.ocsp_validity``). A request about another issuer, or for
a CA this signer does not serve, gets ``unauthorized`` (§2.3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from acmegate.common.clock import Clock
from acmegate.signer import der
from acmegate.signer.authorities import Authorities, Authority
from acmegate.signer.db.inventory import certificate_status
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

    def serves(self, ca_name: str) -> bool:
        return ca_name in self._authorities

    async def respond(self, ca_name: str, request_der: bytes) -> bytes:
        """The DER OCSPResponse for ``request_der`` (always a response, never an exception)."""
        authority = self._authorities.get(ca_name)
        if authority is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            # Unparseable, or several requests in one (this responder answers one at a time).
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        algorithm = request.hash_algorithm
        expected = self._hashes[ca_name].by_algorithm.get(algorithm.name)
        if expected is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (request.issuer_name_hash, request.issuer_key_hash) != expected:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return await self._answer(authority, request)

    async def _answer(self, authority: Authority, request: ocsp.OCSPRequest) -> bytes:
        serial = serial_hex(request.serial_number)
        found = await certificate_status(self._pool, authority.name, serial)
        now = self._clock.now().replace(microsecond=0)
        revocation_time = None
        reason = None
        if found is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif found.status == "revoked" and found.revoked_at is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = found.revoked_at.replace(microsecond=0)
            reason = reason_flag(found.revocation_reason or "unspecified")
        else:
            status = ocsp.OCSPCertStatus.GOOD
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
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
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        except x509.ExtensionNotFound:
            nonce = None
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce.nonce), critical=False)
        response = await authority.key.sign_ocsp_response(
            builder, authority.certificate, authority.signature_hash
        )
        log.debug("OCSP answered", ca=authority.name, serial=serial, status=status.name)
        return response.public_bytes(serialization.Encoding.DER)
