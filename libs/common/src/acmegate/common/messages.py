"""The typed, versioned messages of the enrollment pipeline, and the values they carry.

Every message is a ``msgspec.Struct`` tagged with ``type`` = ``<name>.v<version>`` and carries
a ``correlation_id`` that each service binds into its logs (docs/architecture.md, "The flow").
:mod:`acmegate.common.bus.codec` encodes them (JSON, never pickle); the admin API's requests
and replies are in :mod:`acmegate.common.admin_messages`.

The finalize pipeline passes one :class:`FinalizeOrder` along
``attestation → policy → signer``; each stage fills in its own part (``csr``, ``spec``) so the
stages stay stateless, and any stage may answer early with a :class:`Problem`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from acmegate.common.vocabulary import (
    CertificateStatus,
    ChallengeType,
    ErrorKind,
    RevocationReason,
)

# A point in time with its UTC offset (every time acmegate handles is aware), written in
# RFC 3339 on the wire; JSON Schema calls it a date-time.
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]


class Identifier(msgspec.Struct, frozen=True):
    """An ACME identifier (RFC 8555 §9.7.7); in orders always ``permanent-identifier``
    (:class:`~acmegate.common.vocabulary.IdentifierType`), in a problem whatever the client
    sent."""

    type: str
    value: str


class Subproblem(msgspec.Struct, frozen=True):
    """RFC 8555 §6.7.1 subproblem."""

    kind: ErrorKind
    detail: str
    identifier: Identifier | None = None


class Problem(msgspec.Struct, frozen=True):
    """An :class:`~acmegate.common.errors.AcmeError` as it crosses the bus and is stored on
    challenges and orders; only the frontend renders it (docs/architecture.md, "Errors")."""

    kind: ErrorKind
    detail: str
    subproblems: list[Subproblem] = msgspec.field(default_factory=list)
    identifier: Identifier | None = None
    # Seconds before a retry can succeed (a rateLimited refusal such as a renewal window):
    # the frontend sends it as Retry-After (RFC 8555 §6.6).
    retry_after: int | None = None


class DeviceClaims(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a verified attestation says about the device and its key.

    Apple's OIDs: docs/apple-attestation.md §6. ``attested_key`` is the DER SubjectPublicKeyInfo of
    the attested (Secure Enclave) key; the CSR must carry the same key (docs/apple-attestation.md
    §8).
    """

    provider: str
    format: str
    attested_key: bytes
    serial_number: str | None = None
    udid: str | None = None
    os_version: str | None = None
    sepos_version: str | None = None
    llb_version: str | None = None
    software_update_device_id: str | None = None
    sip_enabled: bool | None = None
    secure_boot: str | None = None
    third_party_kexts_allowed: bool | None = None
    attestation_not_after: UtcTime | None = None


class PermanentIdentifierName(msgspec.Struct, frozen=True):
    """RFC 4043 PermanentIdentifier (otherName 1.3.6.1.5.5.7.8.3)."""

    value: str | None
    assigner: str | None = None


class CsrInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """The names and key of a CSR whose signature the attestation stage verified."""

    public_key: bytes
    subject: list[tuple[str, str]] = msgspec.field(default_factory=list)
    common_name: str | None = None
    dns_names: list[str] = msgspec.field(default_factory=list)
    emails: list[str] = msgspec.field(default_factory=list)
    uris: list[str] = msgspec.field(default_factory=list)
    upns: list[str] = msgspec.field(default_factory=list)
    permanent_identifiers: list[PermanentIdentifierName] = msgspec.field(default_factory=list)
    ip_addresses: list[str] = msgspec.field(default_factory=list)


SanType = Literal["dns", "rfc822", "uri", "ip", "upn", "permanent_identifier"]


class SanEntry(msgspec.Struct, frozen=True):
    type: SanType
    value: str


class NameAttribute(msgspec.Struct, frozen=True):
    """One RDN attribute of a subject, ``oid`` in dotted form."""

    oid: str
    value: str


class CertificateSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """Everything the signer needs to issue one certificate; rendered by the policy service."""

    ca: str
    template: str
    public_key: bytes
    subject: list[NameAttribute]
    sans: list[SanEntry]
    validity_seconds: int
    signature_hash: Literal["sha256", "sha384", "sha512"] = "sha256"
    key_usage: list[str] = msgspec.field(default_factory=lambda: ["digital_signature"])
    extended_key_usage: list[str] = msgspec.field(default_factory=lambda: ["1.3.6.1.5.5.7.3.2"])
    backdate_seconds: int = 60


class EnrollmentRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why a certificate was issued: the guide's "completed" view (issue #4 inventory)."""

    identifier: Identifier
    device: DeviceClaims | None = None
    platform: str | None = None
    signal_source: str | None = None
    source_attributes: dict[str, str] = msgspec.field(default_factory=dict)
    source_groups: list[str] = msgspec.field(default_factory=list)
    lookup_policy: str | None = None
    workflow: str | None = None
    device_role: str | None = None
    enrollment_policy: str | None = None
    revoke_on_failure: bool = False


# ---------------------------------------------------------------------------------------------
# Bus messages


class VerifyChallenge(msgspec.Struct, frozen=True, tag="challenge.verify.v1", tag_field="type"):
    """Frontend → attestation: validate a challenge response (RFC 8555 §7.5.1)."""

    correlation_id: str
    challenge_id: str
    authz_id: str
    order_id: str
    account_id: str
    challenge_type: ChallengeType
    identifier: Identifier
    token: str
    payload: bytes  # the JWS payload as the client sent it (JSON)
    platform: str | None = None
    # http-01, dns-01, tls-alpn-01: token "." base64url(JWK thumbprint) (RFC 8555 §8.1).
    key_authorization: str | None = None
    # True: a wildcard order's authorization, naming the base domain (RFC 8555 §7.1.3).
    wildcard: bool | None = None


class ChallengeVerified(msgspec.Struct, frozen=True, tag="challenge.result.v1", tag_field="type"):
    """Attestation → frontend: the outcome of a :class:`VerifyChallenge`."""

    correlation_id: str
    challenge_id: str
    claims: DeviceClaims | None = None
    problem: Problem | None = None
    # A failure Apple's chain proves was the order's own device (a stale freshness code from
    # a genuine leaf): only those count against the device's failed-validations limit;
    # others count against the account and that identifier (docs/configuration.md).
    charged_to_device: bool = False


class FinalizeOrder(msgspec.Struct, frozen=True, tag="order.finalize.v1", tag_field="type"):
    """The finalize pipeline's work item (docs/architecture.md, "The flow" step 4)."""

    correlation_id: str
    order_id: str
    account_id: str
    identifiers: list[Identifier]
    csr_der: bytes
    claims: list[DeviceClaims]
    platform: str | None = None
    # The EAB key the account is bound to (RFC 8555 §7.3.4), for server_names.eab_keys.
    eab_key_id: str | None = None
    csr: CsrInfo | None = None  # set by the attestation stage
    spec: CertificateSpec | None = None  # set by the policy stage
    record: EnrollmentRecord | None = None  # set by the policy stage


class OrderFinalized(msgspec.Struct, frozen=True, tag="order.result.v1", tag_field="type"):
    """Any stage → frontend: the certificate, or the problem that ends the order."""

    correlation_id: str
    order_id: str
    certificate_serial: str | None = None
    chain_pem: str | None = None
    problem: Problem | None = None
    # Why the certificate was issued (the policy stage's record), for the frontend's
    # enrollment events; None from stages that answer before the record exists.
    record: EnrollmentRecord | None = None


class RevokeCertificates(msgspec.Struct, frozen=True, tag="cert.revoke.v1", tag_field="type"):
    """Anyone → signer: revoke the listed certificates (by serial, hex) and every valid one of
    ``device_serial``. With both, a listed serial is revoked only if it was issued to that
    device: a caller's serial never revokes another device's certificate."""

    correlation_id: str
    reason: RevocationReason
    serials: list[str] = msgspec.field(default_factory=list)
    device_serial: str | None = None
    detail: str | None = None
    # Re-enrollment (docs/profiles.md): the certificate (serial, hex) its account just
    # downloaded. The signer revokes, with ``reason``, the device's older valid certificates of
    # the same enrollment policy when that policy says ``previous_certificates: revoke``.
    superseded_by: str | None = None


class QueryIssuedCertificate(msgspec.Struct, frozen=True, tag="cert.query.v1", tag_field="type"):
    """Policy (the RADIUS check) → signer, request/reply on ``RpcQueue.SIGNER``: what the
    gateway recorded when CA ``ca`` issued the certificate with ``serial`` (hex)."""

    correlation_id: str
    ca: str
    serial: str


class IssuedCertificate(msgspec.Struct, frozen=True, tag="cert.issued.v1", tag_field="type"):
    """Signer → policy: the record of one certificate; ``found`` is False for a serial the CA
    never issued. The device fields are what the gateway itself vouched for at issuance (the
    attested serial and UDID), never names the device wrote into its CSR."""

    correlation_id: str
    found: bool
    status: CertificateStatus | None = None
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    not_after: datetime | None = None
    device_serial: str | None = None
    device_udid: str | None = None
    # SHA-256 of the certificate's DER: a presented certificate must be this very one.
    fingerprint: bytes | None = None


class WorkDone(msgspec.Struct, frozen=True, tag="work.done.v1", tag_field="type"):
    """Transient broadcast to every frontend replica: a result was committed (wakes waiters)."""

    correlation_id: str
    kind: Literal["challenge", "order"]
    id: str


class RpcFailed(msgspec.Struct, frozen=True, tag="rpc.failed.v1", tag_field="type"):
    """The reply to a request whose handler raised: the problem, raised again at the caller."""

    correlation_id: str
    problem: Problem


PipelineMessage = (
    VerifyChallenge
    | ChallengeVerified
    | FinalizeOrder
    | OrderFinalized
    | RevokeCertificates
    | QueryIssuedCertificate
    | IssuedCertificate
    | WorkDone
    | RpcFailed
)
