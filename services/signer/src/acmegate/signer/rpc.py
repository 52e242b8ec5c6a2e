"""The signer's answers to the admin API and the RADIUS check (request/reply on
``RpcQueue.SIGNER``).

The frontend owns the admin API but not the CAs or the certificate inventory, so it asks
here: the loaded CAs, certificate searches, one certificate with its enrollment record, a
revocation, and the counts per CA and status for the dashboard. The policy service's RADIUS
check asks what was recorded when a certificate was issued (:class:`IssuedCertificate`): its
status, and the attested device it was issued to. Every answer reuses what the
service already holds (:class:`~acmegate.signer.authorities.Authorities`) and the inventory
queries of :mod:`acmegate.signer.db`; a revocation nudges the CRL publisher like one from
the bus. A handler's :class:`AcmeError` (``notFound``, ``malformed``) travels back to the
caller intact.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol

from acmegate.common.admin_messages import (
    AdminCaList,
    AdminCertificate,
    AdminCertificateCounts,
    AdminCertificateList,
    AdminCountCertificates,
    AdminListCas,
    AdminQueryCertificates,
    AdminRevokeCertificate,
    AdminShowCertificate,
    CertificateAuthority,
    CertificateCount,
    CertificateSummary,
)
from acmegate.common.bus.codec import Message, schema_of
from acmegate.common.errors import AcmeError, malformed, not_found
from acmegate.common.messages import Identifier, IssuedCertificate, QueryIssuedCertificate
from acmegate.common.runtime import Runtime
from acmegate.common.vocabulary import CertificateState
from acmegate.common.x509names import describe_subject_alt_names
from acmegate.signer.authorities import Authorities, Authority
from acmegate.signer.ca_key import describe_public_key
from acmegate.signer.chains import describe
from acmegate.signer.crl_publisher import CrlPublisher
from acmegate.signer.db.inventory import (
    CertificateRecord,
    count_certificates,
    find_certificate,
    list_certificates,
)
from acmegate.signer.db.revocations import revoke_certificate
from acmegate.signer.keys import describe_key_storage
from acmegate.signer.serials import parse_serial


class RunningSigner(Protocol):
    """What the answers need of the running service (``SignerService``)."""

    @property
    def authorities(self) -> Authorities:
        """The loaded CAs."""

    @property
    def crl_publisher(self) -> CrlPublisher:
        """The publisher to nudge after a revocation."""


class SignerRpc:
    """Answers admin requests with the running signer's CAs and the ``pki`` inventory."""

    def __init__(self, runtime: Runtime, service: RunningSigner) -> None:
        self._runtime = runtime
        self._service = service

    async def handle(self, message: Message) -> Message:
        """One request → its reply (the bus turns a raised AcmeError into ``RpcFailed``)."""
        if isinstance(message, AdminListCas):
            return AdminCaList(
                correlation_id=message.correlation_id,
                authorities=[ca_summary(a) for a in self._service.authorities.values()],
            )
        if isinstance(message, AdminQueryCertificates):
            return await self._query(message)
        if isinstance(message, AdminShowCertificate):
            return await self._show(message)
        if isinstance(message, AdminRevokeCertificate):
            return await self._revoke(message)
        if isinstance(message, QueryIssuedCertificate):
            return await self._issued(message)
        if isinstance(message, AdminCountCertificates):
            return AdminCertificateCounts(
                correlation_id=message.correlation_id,
                counts=[
                    CertificateCount(ca, CertificateState(status), count)
                    for ca, status, count in await count_certificates(
                        self._runtime.require_pool(), self._now()
                    )
                ],
            )
        raise malformed(f"the signer does not answer {schema_of(message)}")

    def _now(self) -> datetime:
        return self._runtime.clock.now()

    async def _issued(self, request: QueryIssuedCertificate) -> IssuedCertificate:
        record = await find_certificate(self._runtime.require_pool(), _serial(request.serial))
        if record is None or record.ca_name != request.ca:
            return IssuedCertificate(correlation_id=request.correlation_id, found=False)
        device = record.record.device if record.record is not None else None
        return IssuedCertificate(
            correlation_id=request.correlation_id,
            found=True,
            status=record.status,
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
            not_after=record.not_after,
            device_serial=record.device_serial,
            device_udid=device.udid if device is not None else None,
            fingerprint=hashlib.sha256(record.der).digest(),
        )

    async def _query(self, request: AdminQueryCertificates) -> AdminCertificateList:
        records = await list_certificates(
            self._runtime.require_pool(),
            device_serial=request.device_serial,
            account_id=request.account_id,
            ca_name=request.ca,
            status=request.status,
            limit=request.limit,
        )
        now = self._now()
        return AdminCertificateList(
            correlation_id=request.correlation_id,
            certificates=[certificate_summary(r, now, full=False) for r in records],
        )

    async def _show(self, request: AdminShowCertificate) -> AdminCertificate:
        record = await find_certificate(self._runtime.require_pool(), _serial(request.serial))
        if record is None:
            raise _unknown(request.serial)
        return AdminCertificate(
            correlation_id=request.correlation_id,
            certificate=certificate_summary(record, self._now(), full=True),
        )

    async def _revoke(self, request: AdminRevokeCertificate) -> AdminCertificate:
        # The reason is a RevocationReason: the request would not have decoded otherwise.
        outcome = await revoke_certificate(
            self._runtime.require_pool(),
            _serial(request.serial),
            reason=request.reason,
            at=self._now(),
        )
        if outcome is None:
            raise _unknown(request.serial)
        if outcome.revoked_now:
            # As for a revocation from the bus: the CRL follows within seconds.
            self._service.crl_publisher.nudge()
        return AdminCertificate(
            correlation_id=request.correlation_id,
            certificate=certificate_summary(outcome.certificate, self._now(), full=True),
            revoked_now=outcome.revoked_now,
        )


def _serial(text: str) -> str:
    try:
        return parse_serial(text)
    except ValueError as exc:
        raise malformed(f"serial: {exc}") from exc


def _unknown(serial: str) -> AcmeError:
    return not_found(f"no certificate with serial {serial} was issued by this gateway")


def ca_summary(authority: Authority) -> CertificateAuthority:
    """What the admin API lists of a loaded CA (never anything secret)."""
    urls = authority.urls
    return CertificateAuthority(
        name=authority.name,
        description=authority.config.description,
        subject=describe(authority.certificate),
        chain=[describe(c) for c in (authority.certificate, *authority.chain)],
        not_before=authority.not_before,
        not_after=authority.not_after,
        key_algorithm=describe_public_key(authority.key.public_key()),
        key_storage=describe_key_storage(authority.config),
        crl_url=urls.crl if urls is not None else None,
        ocsp_url=urls.ocsp if urls is not None else None,
    )


def certificate_summary(
    record: CertificateRecord, now: datetime, *, full: bool
) -> CertificateSummary:
    """A certificate as the admin API shows it; ``full`` adds names, record and chain."""
    identifier = (
        Identifier(record.identifier_type, record.identifier_value or "")
        if record.identifier_type
        else None
    )
    subject: str | None = None
    names: list[str] = []
    if full:
        certificate = record.certificate()
        subject = certificate.subject.rfc4514_string()
        names = describe_subject_alt_names(certificate)
    return CertificateSummary(
        serial=record.serial,
        status=record.status,
        expired=record.not_after <= now,
        ca=record.ca_name,
        template=record.template,
        account_id=record.account_id,
        order_id=record.order_id,
        not_before=record.not_before,
        not_after=record.not_after,
        issued_at=record.created_at,
        identifier=identifier,
        device_serial=record.device_serial,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
        subject=subject,
        subject_alt_names=names,
        record=record.record if full else None,
        chain_pem=record.chain_pem if full else None,
    )
