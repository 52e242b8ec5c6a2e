"""The RADIUS-time check: is the device behind this client certificate still vouched for?

The guide's Security Signal Source with purpose "RADIUS Authentication". For each EAP-TLS
session:

1. the certificate must be one of the gateway's CAs' (trust.py);
2. the signer says what it recorded when it issued that certificate (by CA and serial,
   request/reply on ``RpcQueue.SIGNER``): a serial it never issued, a certificate that is not
   the one it issued under that serial, or a revoked one is a reject, whatever FreeRADIUS's
   own CRL/OCSP setup says;
3. the device looked up is the one the gateway vouched for at issuance: the attested serial
   (or UDID) recorded with the certificate, never a name in the certificate that the device
   wrote into its CSR. The name the lookup policy's ``identity`` designates (SAN dNSName,
   PermanentIdentifier, subject commonName), when the certificate carries it, must name that
   same device, else the certificate is refused;
4. the lookup always runs fresh (a cache never decides a RADIUS answer); a device the source
   no longer knows or manages is rejected, and with Revoke On Failure its certificates are
   revoked through the signer: only those recorded for that device.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmegate.common.bus import Queue, RpcQueue, RpcUnavailable
from acmegate.common.config.model import LookupPolicyConfig
from acmegate.common.errors import AcmeError
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import IssuedCertificate, QueryIssuedCertificate, RevokeCertificates
from acmegate.common.runtime import Runtime
from acmegate.common.vocabulary import CertificateStatus, RevocationReason
from acmegate.policy.audit import record_lookups
from acmegate.policy.lookups import LookupSession
from acmegate.policy.radius.presented import ISSUER, Presented, identity_of
from acmegate.policy.radius.trust import CaTrust, Untrusted
from acmegate.policy.recheck import GONE, UNMANAGED
from acmegate.policy.sources.base import DeviceRecord, IdentityKind, SignalSource

log = structlog.get_logger(__name__)

# How long the check waits for the signer's record; FreeRADIUS's rlm_rest timeout is 5 s.
SIGNER_TIMEOUT = 3.0

_WHAT = {
    "certificate_san_dns": "SAN dNSName",
    "certificate_permanent_identifier": "PermanentIdentifier",
    "certificate_common_name": "subject commonName",
}
# The static inventory's attribute that lists a device's DNS name (sources/static.py).
_DNS_NAME_ATTRIBUTE = "dns_name"
_LABEL = re.compile(r"^([^.]+)")


class SignerUnavailable(Exception):
    """The signer did not say what it issued (the endpoint answers 503, failing closed)."""


@dataclass(frozen=True, slots=True)
class RadiusDecision:
    """Accept or reject, and why (the reject reason goes back in a Reply-Message)."""

    accept: bool
    reason: str
    identity: str | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class _Issued:
    """The certificate as the gateway recorded it, and the device it vouched for."""

    ca: str
    serial: str
    record: IssuedCertificate

    @property
    def device(self) -> str:
        return self.record.device_serial or self.record.device_udid or ""

    def names_the_device(self, value: str) -> bool:
        known = [v for v in (self.record.device_serial, self.record.device_udid) if v]
        return any(value.casefold() == v.casefold() for v in known)


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
        cannot answer and :class:`SignerUnavailable` if the signer does not (the endpoint
        then says 503 and FreeRADIUS fails closed)."""
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
        try:
            issued = await self._issued(presented, now, correlation_id)
        except Untrusted as exc:
            return RadiusDecision(False, str(exc))
        device = issued.device
        named = identity_of(presented, self._policy.identity)
        what = _WHAT.get(self._policy.identity, self._policy.identity)
        if (
            named is not None
            and self._policy.identity != "certificate_san_dns"
            and not issued.names_the_device(named)
        ):
            return RadiusDecision(False, _not_the_device(what, named, device), device)
        record = await self._lookup(issued, correlation_id)
        source = self._source.name
        if record is not None and record.passes:
            if (
                named is not None
                and self._policy.identity == "certificate_san_dns"
                and not _dns_names_the_device(named, issued, record)
            ):
                return RadiusDecision(False, _not_the_device(what, named, device), device)
            return RadiusDecision(True, f"device {device} is managed", device)
        reason: RevocationReason | None
        if record is None:
            reason, why = GONE, f"device {device} is not known to signal source {source!r}"
        elif record.problem is not None:
            reason, why = None, f"device {device} cannot be vouched for: {record.problem}"
        else:
            reason, why = UNMANAGED, f"device {device} is not managed (signal source {source!r})"
        revoked = False
        if self._policy.revoke_on_failure and reason:
            revoked = await self._revoke(issued, reason, why, correlation_id)
        return RadiusDecision(False, why, device, revoked)

    async def _issued(self, presented: Presented, now: datetime, correlation_id: str) -> _Issued:
        """The signer's record of the presented certificate; :class:`Untrusted` when the
        gateway did not issue it, issued another certificate under its serial, revoked it,
        or recorded no attested device for it."""
        if presented.certificate is not None:
            ca = self._trust.issuer_of(presented.certificate, now)
        else:
            ca = self._trust.issuer_named(presented.attribute(ISSUER))
        serial = presented.serial_hex
        if serial is None:
            raise Untrusted("FreeRADIUS sent no TLS-Client-Cert-Serial")
        try:
            reply = await self._runtime.bus.request(
                RpcQueue.SIGNER,
                QueryIssuedCertificate(correlation_id=correlation_id, ca=ca, serial=serial),
                timeout=SIGNER_TIMEOUT,
            )
        except (RpcUnavailable, AcmeError) as exc:
            raise SignerUnavailable(f"the signer cannot say what it issued ({exc})") from exc
        if not isinstance(reply, IssuedCertificate):
            raise SignerUnavailable(f"the signer answered {type(reply).__name__}")
        if not reply.found:
            raise Untrusted(
                f"certificate {serial} was not issued by this gateway (no record of it in CA "
                f"{ca!r})"
            )
        if presented.certificate is not None and reply.fingerprint != _fingerprint(
            presented.certificate
        ):
            raise Untrusted(
                f"certificate {serial} is not the certificate CA {ca!r} issued with that serial"
            )
        if reply.status == CertificateStatus.REVOKED:
            when = f"{reply.revoked_at:%Y-%m-%d %H:%M:%S} UTC" if reply.revoked_at else "?"
            reason = reply.revocation_reason or "unspecified"
            raise Untrusted(f"certificate {serial} was revoked on {when} ({reason})")
        if reply.not_after is not None and reply.not_after <= now:
            raise Untrusted(f"certificate {serial} has expired")
        issued = _Issued(ca, serial, reply)
        if not issued.device:
            raise Untrusted(
                f"the gateway recorded no attested device for certificate {serial}: nothing it "
                "vouched for to look up"
            )
        return issued

    async def _lookup(self, issued: _Issued, correlation_id: str) -> DeviceRecord | None:
        """The source's record of the device the certificate was issued to (fresh)."""
        kinds: list[tuple[IdentityKind, str]] = []
        if issued.record.device_serial:
            kinds.append(("serial_number", issued.record.device_serial))
        if issued.record.device_udid:
            kinds.append(("udid", issued.record.device_udid))
        session = LookupSession()
        try:
            for kind, value in kinds:
                record = await session.lookup(self._policy, self._source, kind, value, fresh=True)
                if record is not None:
                    return record
            return None
        finally:
            await self._audit(session, correlation_id)

    async def _revoke(
        self, issued: _Issued, reason: RevocationReason, why: str, correlation_id: str
    ) -> bool:
        # The presented certificate and, by the recorded attested serial, every other valid
        # one of that device; the signer revokes a listed serial only if it was issued to
        # that device.
        device = issued.record.device_serial
        await self._runtime.bus.publish(
            Queue.SIGNER_REVOKE,
            RevokeCertificates(
                correlation_id=correlation_id,
                reason=reason,
                serials=[issued.serial],
                device_serial=device,
                detail=f"RADIUS check (lookup policy {self._policy.name!r}): {why}",
            ),
        )
        log.warning(
            "revoke on failure at RADIUS time: sent for revocation",
            certificate_serial=issued.serial,
            device=issued.device,
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


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def _not_the_device(what: str, named: str, device: str) -> str:
    return f"the certificate's {what} {named} does not name the device it was issued to ({device})"


def _dns_names_the_device(name: str, issued: _Issued, record: DeviceRecord) -> bool:
    """A SAN dNSName names the device when its first label is the device's serial or UDID
    (docs/radius.md), or the signal source lists it as the device's DNS name."""
    label = _LABEL.match(name)
    if label is not None and issued.names_the_device(label[1]):
        return True
    listed = record.attributes.get(_DNS_NAME_ATTRIBUTE, "")
    return bool(listed) and listed.casefold().rstrip(".") == name.casefold().rstrip(".")
