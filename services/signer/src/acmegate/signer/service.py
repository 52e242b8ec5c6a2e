"""The signer service: the last stage of finalize, and revocation.

``Queue.FINALIZE_SIGNER``: a :class:`FinalizeOrder` carrying the policy stage's ``spec`` is
signed once per order (:mod:`acmegate.signer.db.issuance` explains how) and answered on
``Queue.FRONTEND_RESULTS``; every copy of the message, redelivered or concurrent, gets the
same certificate.
``Queue.SIGNER_REVOKE``: :class:`RevokeCertificates` marks certificates revoked.
In the background the CRL publisher keeps each CA's CRL current, and with a ``pki:`` section
the signer serves CRLs, CA certificates and OCSP over HTTP (:mod:`acmegate.signer.pki_http`).
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from importlib.resources import files

import structlog
from cryptography.hazmat.primitives import serialization

from acmegate.common import metrics
from acmegate.common.bus import Delivery, Queue, Reject, RpcQueue
from acmegate.common.bus.codec import Message
from acmegate.common.config import seconds
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import (
    CertificateSpec,
    DeviceClaims,
    FinalizeOrder,
    OrderFinalized,
    RevokeCertificates,
)
from acmegate.common.migrations import SchemaMigrations
from acmegate.common.runtime import Runtime, ServiceSpec
from acmegate.common.stages import stage
from acmegate.common.vocabulary import RevocationReason
from acmegate.signer.authorities import Authorities, KeyOpener, load_authorities, validate_config
from acmegate.signer.chains import pem
from acmegate.signer.crl_publisher import CrlPublisher
from acmegate.signer.db.inventory import find_certificate_for_order
from acmegate.signer.db.issuance import PendingCertificate, issue_once
from acmegate.signer.db.renewals import last_issued
from acmegate.signer.db.revocations import revoke_certificates, supersede_certificates
from acmegate.signer.issuance import build_certificate
from acmegate.signer.keys import open_ca_key
from acmegate.signer.ocsp import OcspResponder
from acmegate.signer.pki_http import PkiHttpServer
from acmegate.signer.rpc import SignerRpc
from acmegate.signer.serials import new_serial, parse_serial, serial_hex

log = structlog.get_logger(__name__)

SCOPE = "acmegate.signer"

# Without a `pki:` section: how often the CRL publisher looks for revocations.
DEFAULT_CRL_CHECK_INTERVAL = 5.0


def migrations() -> list[SchemaMigrations]:
    """The ``pki`` schema: the certificate inventory (the composition root migrates first)."""
    return [SchemaMigrations.from_folder("pki", files("acmegate.signer") / "migrations")]


class SignerService:
    """Signs certificates for finalized orders and records revocations."""

    name = "signer"

    def __init__(self, runtime: Runtime, *, open_key: KeyOpener = open_ca_key) -> None:
        self._runtime = runtime
        self._open_key = open_key
        self._authorities: Authorities | None = None
        self._publisher: CrlPublisher | None = None
        self._http: PkiHttpServer | None = None

    @property
    def authorities(self) -> Authorities:
        """The loaded CAs (after :meth:`start`)."""
        if self._authorities is None:
            raise RuntimeError("the signer has not been started")
        return self._authorities

    @property
    def crl_publisher(self) -> CrlPublisher:
        """The CRL publisher (after :meth:`start`)."""
        if self._publisher is None:
            raise RuntimeError("the signer has not been started")
        return self._publisher

    async def start(self) -> None:
        """Load and check every CA once (keys decrypted here), publish, then consume."""
        pool = self._runtime.require_pool()
        config = self._runtime.config
        pki = config.pki
        # Decrypting keys runs a KDF and RSA key checks (up to ~0.3 s each): off the loop.
        self._authorities = await asyncio.to_thread(
            load_authorities,
            config.certificate_authorities,
            clock=self._runtime.clock,
            open_key=self._open_key,
            base_url=pki.base_url if pki is not None else None,
        )
        log.info("certificate authorities loaded", authorities=sorted(self._authorities))
        self._publisher = CrlPublisher(
            self._authorities,
            pool,
            self._runtime.clock,
            check_interval=(
                float(seconds(pki.crl_check_interval))
                if pki is not None
                else DEFAULT_CRL_CHECK_INTERVAL
            ),
        )
        self._publisher.start()
        if pki is not None and pki.listen:
            responder = OcspResponder(
                self._authorities, pool, self._runtime.clock, validity=seconds(pki.ocsp_validity)
            )
            http = PkiHttpServer(pki, self._authorities, pool, responder)
            try:
                await http.start()
            except OSError:
                # The port is taken: nothing else will stop what was started above.
                await self.stop()
                raise
            self._http = http
        bus = self._runtime.bus
        await bus.consume(Queue.FINALIZE_SIGNER, self.on_finalize, prefetch=config.bus.prefetch)
        await bus.consume(Queue.SIGNER_REVOKE, self.on_revoke, prefetch=config.bus.prefetch)
        # The admin API's CA list, certificate searches and revocations (signer/rpc.py).
        await bus.serve(RpcQueue.SIGNER, SignerRpc(self._runtime, self).handle)

    async def stop(self) -> None:
        """Stop serving and publishing, release the CA keys (token sessions); the
        composition root closes the bus."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._publisher is not None:
            await self._publisher.stop()
        if self._authorities is not None:
            await self._authorities.close()

    # --- finalize ---------------------------------------------------------------------------

    async def on_finalize(self, message: Message, delivery: Delivery) -> None:
        """Handle one ``Queue.FINALIZE_SIGNER`` delivery (idempotent per order)."""
        if not isinstance(message, FinalizeOrder):
            raise Reject(f"{type(message).__name__} does not belong on {delivery.queue}")
        with bind_correlation_id(message.correlation_id):
            if message.spec is None:
                # The policy stage always sets it; without it there is nothing to sign, ever.
                raise Reject(f"order {message.order_id} reached the signer without a spec")
            result = await self._finalize(message, message.spec)
            await self._runtime.bus.publish(Queue.FRONTEND_RESULTS, result)

    async def _finalize(self, message: FinalizeOrder, spec: CertificateSpec) -> OrderFinalized:
        pool = self._runtime.require_pool()
        try:
            authority = self.authorities.require(spec.ca)
            draft = build_certificate(
                authority, spec, now=self._runtime.clock.now(), serial=new_serial()
            )
        except AcmeError as error:
            # An earlier copy of this order may have been signed before the problem appeared
            # (say, a CA dropped from the configuration on restart): that certificate stands.
            existing = await find_certificate_for_order(pool, message.order_id)
            if existing is not None:
                return self._reply(message, existing.serial, existing.chain_pem)
            log.warning("order cannot be issued", order_id=message.order_id, problem=str(error))
            return OrderFinalized(
                correlation_id=message.correlation_id,
                order_id=message.order_id,
                problem=error.to_problem(),
                record=message.record,
            )

        record = message.record
        identifier = (
            record.identifier if record is not None else next(iter(message.identifiers), None)
        )
        device = record.device if record is not None else None
        if device is None and message.claims:
            device = message.claims[0]
        refusal = await self._renewal_refusal(message, device)
        if refusal is not None:
            return refusal
        pending = PendingCertificate(
            serial=serial_hex(draft.serial),
            order_id=message.order_id,
            ca_name=authority.name,
            template=spec.template,
            account_id=message.account_id,
            identifier_type=identifier.type if identifier is not None else None,
            identifier_value=identifier.value if identifier is not None else None,
            device_serial=device.serial_number if device is not None else None,
            not_before=draft.not_before,
            not_after=draft.not_after,
            record=record,
        )

        async def sign() -> tuple[bytes, str]:
            certificate = await authority.key.sign_certificate(draft.builder, spec.signature_hash)
            return (
                certificate.public_bytes(serialization.Encoding.DER),
                pem(certificate) + authority.issuer_chain_pem,
            )

        with stage(SCOPE, "sign", metrics.STAGE_SIGNING):
            signed = await issue_once(pool, pending, sign)
        if signed.fresh:
            metrics.certificates_issued(authority.name).inc()
        log.info(
            "certificate issued" if signed.fresh else "order already has a certificate",
            order_id=message.order_id,
            serial=signed.serial,
            ca=authority.name,
            template=spec.template,
        )
        return self._reply(message, signed.serial, signed.chain_pem)

    async def _renewal_refusal(
        self, message: FinalizeOrder, device: DeviceClaims | None
    ) -> OrderFinalized | None:
        """``rateLimited`` when the device got a certificate of this enrollment policy less
        than its ``renewal_window`` ago (docs/profiles.md); ``None`` to go on. One query, and
        only for a policy with a window."""
        record = message.record
        if (
            record is None
            or record.enrollment_policy is None
            or device is None
            or device.serial_number is None
        ):
            return None
        policy = next(
            (
                p
                for p in self._runtime.config.enrollment_policies
                if p.name == record.enrollment_policy
            ),
            None,
        )
        if policy is None or policy.renewal_window is None:
            return None
        window = timedelta(seconds=seconds(policy.renewal_window))
        last = await last_issued(
            self._runtime.require_pool(),
            device_serial=device.serial_number,
            policy=policy.name,
            order_id=message.order_id,
        )
        now = self._runtime.clock.now()
        if last is None or now - last >= window:
            return None
        wait = max(1, math.ceil((last + window - now).total_seconds()))
        log.info(
            "re-enrollment refused: renewal window",
            order_id=message.order_id,
            device_serial=device.serial_number,
            policy=policy.name,
            retry_after=wait,
        )
        error = AcmeError(
            ErrorKind.RATE_LIMITED,
            f"device {device.serial_number} got a certificate of enrollment policy "
            f"{policy.name!r} at {last:%Y-%m-%d %H:%M:%S}Z; the policy's renewal window "
            f"({policy.renewal_window}) allows the next one in {wait} s",
            retry_after=wait,
        )
        return OrderFinalized(
            correlation_id=message.correlation_id,
            order_id=message.order_id,
            problem=error.to_problem(),
            record=record,
        )

    @staticmethod
    def _reply(message: FinalizeOrder, serial: str, chain_pem: str) -> OrderFinalized:
        return OrderFinalized(
            correlation_id=message.correlation_id,
            order_id=message.order_id,
            certificate_serial=serial,
            chain_pem=chain_pem,
            # Why it was issued, for the frontend's enrollment events (the dashboard).
            record=message.record,
        )

    # --- revocation -------------------------------------------------------------------------

    async def on_revoke(self, message: Message, delivery: Delivery) -> None:
        """Handle one ``Queue.SIGNER_REVOKE`` delivery (idempotent)."""
        if not isinstance(message, RevokeCertificates):
            raise Reject(f"{type(message).__name__} does not belong on {delivery.queue}")
        with bind_correlation_id(message.correlation_id):
            if not message.serials and not message.device_serial and not message.superseded_by:
                raise Reject("a revocation must name serials, a device serial or a new serial")
            try:
                # Decoding already refuses an unknown reason; one built in-process is
                # checked the same way.
                reason = RevocationReason(message.reason)
                serials = [parse_serial(s) for s in message.serials]
                if message.superseded_by is not None:
                    parse_serial(message.superseded_by)
            except ValueError as exc:
                raise Reject(str(exc)) from exc
            if message.superseded_by is not None:
                revoked = await supersede_certificates(
                    self._runtime.require_pool(),
                    message.superseded_by,
                    policies=[
                        p.name
                        for p in self._runtime.config.enrollment_policies
                        if p.previous_certificates == "revoke"
                    ],
                    reason=reason,
                    at=self._runtime.clock.now(),
                )
            else:
                revoked = await revoke_certificates(
                    self._runtime.require_pool(),
                    serials=serials,
                    device_serial=message.device_serial,
                    reason=reason,
                    at=self._runtime.clock.now(),
                )
            if revoked and self._publisher is not None:
                self._publisher.nudge()
            log.info(
                "certificates revoked",
                serials=revoked,
                device_serial=message.device_serial,
                superseded_by=message.superseded_by,
                reason=reason,
                detail=message.detail,
            )


SPEC = ServiceSpec("signer", SignerService, migrations=migrations, validate=validate_config)
