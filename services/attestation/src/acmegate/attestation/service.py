"""The attestation service: consumes challenge and finalize work, answers with claims or problems.

Stateless (no database): everything it needs — trust roots, chain-verification policies, the
format registry — is loaded once in :meth:`AttestationService.start`, and each message costs
one chain verification (challenge) or one CSR signature check (finalize). Client-caused
failures become a :class:`Problem` in the reply (the challenge or order turns ``invalid``);
anything else raises, so the bus redelivers and finally dead-letters the message.
"""

from __future__ import annotations

import msgspec
import structlog

from acmegate.attestation.apple import AppleFormat
from acmegate.attestation.csr import check_csr
from acmegate.attestation.device_attest import DeviceAttestChallenge, format_registry
from acmegate.attestation.roots import ProviderTrust, load_trust, validate_config
from acmegate.attestation.validation.validator import Validator
from acmegate.common import metrics
from acmegate.common.bus import Delivery, Queue, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.common.errors import AcmeError
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import (
    ChallengeVerified,
    FinalizeOrder,
    OrderFinalized,
    VerifyChallenge,
)
from acmegate.common.runtime import Runtime, ServiceSpec
from acmegate.common.stages import stage

log = structlog.get_logger(__name__)

SCOPE = "acmegate.attestation"


class AttestationService:
    """Verifies device attestations (``attestation.challenge``), finalize CSRs
    (``attestation.finalize``) and the standard challenges (``attestation.validate``)."""

    name = "attestation"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._trust: list[ProviderTrust] = []
        self._providers: dict[str, AttestationProviderConfig] = {}
        self._challenge: DeviceAttestChallenge | None = None
        self._validator: Validator | None = None

    @property
    def dev_providers(self) -> list[str]:
        """Providers trusting a root that is not Apple's (known after :meth:`start`)."""
        return [trust.provider.name for trust in self._trust if trust.is_dev]

    def load(self) -> None:
        """Read the trust roots and build the verifiers (done by :meth:`start`)."""
        config = self._runtime.config
        self._trust = load_trust(config.attestation_providers)
        self._providers = {p.name: p for p in config.attestation_providers}
        formats = [AppleFormat(trust) for trust in self._trust if trust.provider.type == "apple"]
        self._challenge = DeviceAttestChallenge(format_registry(formats))
        for trust in self._trust:
            if trust.is_dev:
                log.warning(
                    "attestation provider trusts a NON-APPLE root: any holder of that root's "
                    "key can enroll devices; use this only for development and tests",
                    provider=trust.provider.name,
                    roots=[root.subject.rfc4514_string() for root in trust.roots],
                )

    async def start(self) -> None:
        """Load the trust roots once, then consume both queues."""
        self.load()
        bus = self._runtime.bus
        prefetch = self._runtime.config.bus.prefetch
        await bus.consume(Queue.CHALLENGE_VERIFY, self.handle_challenge, prefetch=prefetch)
        await bus.consume(Queue.FINALIZE_ATTESTATION, self.handle_finalize, prefetch=prefetch)
        # Network validations wait on other hosts: their own queue, so a slow responder never
        # delays an attestation, and replicas can be added for them alone.
        self._validator = Validator(self._runtime.config.validation)
        await bus.consume(Queue.CHALLENGE_VALIDATE, self.handle_validation, prefetch=prefetch)
        log.info("attestation service started", providers=sorted(self._providers))

    async def stop(self) -> None:
        """Close the validation HTTP client; the composition root closes the bus."""
        if self._validator is not None:
            await self._validator.close()
        log.info("attestation service stopped")

    async def handle_validation(self, message: Message, delivery: Delivery) -> None:
        """``VerifyChallenge`` of http-01, dns-01 or tls-alpn-01 → ``ChallengeVerified``."""
        if not isinstance(message, VerifyChallenge) or self._validator is None:
            raise Reject(f"unexpected {type(message).__name__} on {delivery.queue}")
        with bind_correlation_id(message.correlation_id):
            with stage(SCOPE, "validate challenge", metrics.STAGE_VALIDATION):
                result = await self._validator.validate(message)
            await self._runtime.bus.publish(Queue.FRONTEND_RESULTS, result)

    async def handle_challenge(self, message: Message, delivery: Delivery) -> None:
        """``VerifyChallenge`` → ``ChallengeVerified`` (claims or problem) to the frontend."""
        if not isinstance(message, VerifyChallenge):
            raise Reject(f"unexpected {type(message).__name__} on {delivery.queue}")
        with bind_correlation_id(message.correlation_id):
            with stage(SCOPE, "verify attestation", metrics.STAGE_ATTESTATION):
                result = self.verify_challenge(message)
            await self._runtime.bus.publish(Queue.FRONTEND_RESULTS, result)

    def verify_challenge(self, message: VerifyChallenge) -> ChallengeVerified:
        """The outcome of one challenge (CPU only, about 1 ms: one or two ECDSA checks)."""
        if self._challenge is None:
            raise RuntimeError("AttestationService.start() was not called")
        try:
            claims = self._challenge.verify(message, self._runtime.clock.now())
        except AcmeError as exc:
            log.info(
                "challenge rejected",
                challenge_id=message.challenge_id,
                order_id=message.order_id,
                kind=str(exc.kind),
                detail=exc.detail,
                subproblems=[s.detail for s in exc.subproblems],
            )
            return ChallengeVerified(
                correlation_id=message.correlation_id,
                challenge_id=message.challenge_id,
                problem=exc.to_problem(),
                charged_to_device=self._challenge.charged_to_device(message, exc),
            )
        log.info(
            "challenge verified",
            challenge_id=message.challenge_id,
            order_id=message.order_id,
            provider=claims.provider,
            serial_number=claims.serial_number,
            os_version=claims.os_version,
        )
        return ChallengeVerified(
            correlation_id=message.correlation_id,
            challenge_id=message.challenge_id,
            claims=claims,
        )

    async def handle_finalize(self, message: Message, delivery: Delivery) -> None:
        """``FinalizeOrder`` → the same order with ``csr`` to policy, or a problem to the
        frontend."""
        if not isinstance(message, FinalizeOrder):
            raise Reject(f"unexpected {type(message).__name__} on {delivery.queue}")
        with bind_correlation_id(message.correlation_id):
            with stage(SCOPE, "check CSR", metrics.STAGE_CSR):
                queue, result = self.check_finalize(message)
            await self._runtime.bus.publish(queue, result)

    def check_finalize(self, message: FinalizeOrder) -> tuple[Queue, Message]:
        """Where the order goes next and in what form."""
        try:
            csr = check_csr(message, self._providers)
        except AcmeError as exc:
            log.info(
                "finalize rejected",
                order_id=message.order_id,
                kind=str(exc.kind),
                detail=exc.detail,
            )
            return Queue.FRONTEND_RESULTS, OrderFinalized(
                correlation_id=message.correlation_id,
                order_id=message.order_id,
                problem=exc.to_problem(),
            )
        log.debug("finalize CSR accepted", order_id=message.order_id)
        return Queue.FINALIZE_POLICY, msgspec.structs.replace(message, csr=csr)


# Stateless: no schema to migrate.
SPEC = ServiceSpec("attestation", AttestationService, validate=validate_config)
