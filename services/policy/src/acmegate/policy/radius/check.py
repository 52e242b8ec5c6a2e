"""The RADIUS-time check: is the device behind this client certificate still vouched for?

The guide's Security Signal Source with purpose "RADIUS Authentication": the identity comes
from the presented certificate (SAN dNSName, PermanentIdentifier or subject commonName, per
the RADIUS lookup policy), the lookup always runs fresh (a cache never decides a RADIUS
answer), and a device the source no longer knows or manages is rejected, its certificate
revoked through the signer when the lookup policy has Revoke On Failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog

from acmegate.common.bus import Queue
from acmegate.common.config.model import LookupPolicyConfig
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import RevokeCertificates
from acmegate.common.runtime import Runtime
from acmegate.policy.audit import record_lookups
from acmegate.policy.lookups import IDENTITY_KINDS, LookupSession
from acmegate.policy.radius.presented import ISSUER, Presented, identity_of
from acmegate.policy.radius.trust import CaTrust
from acmegate.policy.recheck import GONE, UNMANAGED
from acmegate.policy.sources.base import DeviceRecord, SignalSource

log = structlog.get_logger(__name__)

# An Apple serial number: 8 to 14 letters and digits (a UDID is longer or has a '-').
_SERIAL_SHAPE = re.compile(r"^[A-Za-z0-9]{8,14}$")

_WHAT = {
    "certificate_san_dns": "SAN dNSName",
    "certificate_permanent_identifier": "PermanentIdentifier",
    "certificate_common_name": "subject commonName",
}


@dataclass(frozen=True, slots=True)
class RadiusDecision:
    """Accept or reject, and why (the reject reason goes back in a Reply-Message)."""

    accept: bool
    reason: str
    identity: str | None = None
    revoked: bool = False


class RadiusCheck:
    """Decides RADIUS requests for one lookup policy."""

    def __init__(
        self,
        runtime: Runtime,
        policy: LookupPolicyConfig,
        source: SignalSource,
        trust: CaTrust,
    ) -> None:
        self._runtime = runtime
        self._policy = policy
        self._source = source
        self._trust = trust

    async def decide(self, presented: Presented) -> RadiusDecision:
        """The answer for one EAP-TLS session; raises ``SourceUnavailable`` if the source
        cannot answer (the endpoint then says 503 and FreeRADIUS fails closed)."""
        correlation_id = new_correlation_id()
        with bind_correlation_id(correlation_id):
            decision = await self._decide(presented, correlation_id)
            log.info(
                "RADIUS check",
                accept=decision.accept,
                identity=decision.identity,
                reason=decision.reason,
                lookup_policy=self._policy.name,
                revoked=decision.revoked,
            )
            return decision

    async def _decide(self, presented: Presented, correlation_id: str) -> RadiusDecision:
        now = self._runtime.clock.now()
        if presented.certificate is not None:
            untrusted = self._trust.problem(presented.certificate, now)
        else:
            untrusted = self._trust.issuer_problem(presented.attribute(ISSUER))
        if untrusted is not None:
            return RadiusDecision(False, untrusted)
        policy = self._policy
        identity = identity_of(presented, policy.identity)
        if not identity:
            missing = _WHAT.get(policy.identity, policy.identity)
            how = "" if presented.certificate is not None else " among FreeRADIUS's attributes"
            return RadiusDecision(False, f"no {missing} to look up{how}")
        session = LookupSession()
        record: DeviceRecord | None = None
        try:
            for kind in IDENTITY_KINDS[policy.identity]:
                record = await session.lookup(policy, self._source, kind, identity, fresh=True)
                if record is not None:
                    break
        finally:
            await self._audit(session, correlation_id)
        if record is not None and record.passes:
            return RadiusDecision(True, f"device {identity} is managed", identity)
        source = self._source.name
        if record is None:
            reason, why = GONE, f"device {identity} is not known to signal source {source!r}"
        elif record.problem is not None:
            reason, why = "", f"device {identity} cannot be vouched for: {record.problem}"
        else:
            reason, why = UNMANAGED, f"device {identity} is not managed (signal source {source!r})"
        revoked = False
        if policy.revoke_on_failure and reason:
            revoked = await self._revoke(presented, identity, reason, why, correlation_id)
        return RadiusDecision(False, why, identity, revoked)

    async def _revoke(
        self, presented: Presented, identity: str, reason: str, why: str, correlation_id: str
    ) -> bool:
        serial = presented.serial_hex
        # The device's other certificates too, when the identity is its serial number.
        device = identity if _SERIAL_SHAPE.match(identity) else None
        if serial is None and device is None:
            log.warning("RADIUS revoke on failure: nothing identifies the certificate")
            return False
        await self._runtime.bus.publish(
            Queue.SIGNER_REVOKE,
            RevokeCertificates(
                correlation_id=correlation_id,
                reason=reason,
                serials=[serial] if serial else [],
                device_serial=device,
                detail=f"RADIUS check (lookup policy {self._policy.name!r}): {why}",
            ),
        )
        log.warning(
            "revoke on failure at RADIUS time: sent for revocation",
            certificate_serial=serial,
            device=device,
            revocation_reason=reason,
            detail=why,
        )
        return True

    async def _audit(self, session: LookupSession, correlation_id: str) -> None:
        pool = self._runtime.pool
        if pool is None or not session.events:
            return
        await record_lookups(
            pool,
            at=self._runtime.clock.now(),
            order_id=None,
            correlation_id=correlation_id,
            events=session.events,
        )
