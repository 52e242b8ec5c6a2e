"""The admin API's requests and replies (request/reply on ``RpcQueue.SIGNER`` and ``.POLICY``).

The frontend owns the admin API but not the CAs, the certificate inventory or the signal
sources, so it asks the services that own the answer. A handler's ``AcmeError`` comes back as
:class:`~acmegate.common.messages.RpcFailed` (e.g. ``notFound`` for an unknown serial or name).
Like every bus message, each is a msgspec struct tagged ``<name>.v<version>``; the admin API's
OpenAPI component schemas are generated from the reply structs.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from acmegate.common.messages import EnrollmentRecord, Identifier, UtcTime
from acmegate.common.vocabulary import CertificateState, CertificateStatus, RevocationReason


class CertificateAuthority(msgspec.Struct, frozen=True):
    """One loaded certificate authority, as the admin API lists it."""

    name: str
    description: str
    subject: str
    chain: Annotated[
        list[str],
        msgspec.Meta(description="Subjects from this CA up to the root, as configured."),
    ]
    not_before: UtcTime
    not_after: UtcTime
    key_algorithm: Annotated[str, msgspec.Meta(examples=["EC P-384", "RSA 3072"])]
    key_storage: Annotated[str, msgspec.Meta(description="Where the key lives (no secret).")]
    crl_url: str | None = None
    ocsp_url: str | None = None


class AdminListCas(msgspec.Struct, frozen=True, tag="admin.ca.list.v1", tag_field="type"):
    """Admin → signer: the loaded CAs."""

    correlation_id: str


class AdminCaList(msgspec.Struct, frozen=True, tag="admin.ca.listed.v1", tag_field="type"):
    correlation_id: str
    authorities: list[CertificateAuthority]


class CertificateSummary(msgspec.Struct, frozen=True):
    """A row of the signer's inventory; ``subject``, ``subject_alt_names``, ``record`` and
    ``chain_pem`` only when shown alone (null/empty in searches)."""

    serial: Annotated[str, msgspec.Meta(description="Lower-case hexadecimal.")]
    status: CertificateStatus  # as stored; `expired` says whether not_after has passed
    expired: bool
    ca: str
    template: str
    account_id: str
    order_id: str
    not_before: UtcTime
    not_after: UtcTime
    issued_at: UtcTime
    identifier: Identifier | None = None
    device_serial: str | None = None
    revoked_at: UtcTime | None = None
    revocation_reason: RevocationReason | None = None
    subject: str | None = None
    subject_alt_names: list[str] = msgspec.field(default_factory=list)
    record: EnrollmentRecord | None = None
    chain_pem: str | None = None


class AdminQueryCertificates(
    msgspec.Struct, frozen=True, tag="admin.cert.query.v1", tag_field="type"
):
    """Admin → signer: the newest certificates matching every filter given."""

    correlation_id: str
    device_serial: str | None = None
    account_id: str | None = None
    ca: str | None = None
    status: CertificateStatus | None = None
    limit: int = 100


class AdminCertificateList(
    msgspec.Struct, frozen=True, tag="admin.cert.listed.v1", tag_field="type"
):
    correlation_id: str
    certificates: list[CertificateSummary]


class AdminShowCertificate(msgspec.Struct, frozen=True, tag="admin.cert.show.v1", tag_field="type"):
    """Admin → signer: one certificate with its enrollment record (``notFound`` if none)."""

    correlation_id: str
    serial: str


class AdminRevokeCertificate(
    msgspec.Struct, frozen=True, tag="admin.cert.revoke.v1", tag_field="type"
):
    """Admin → signer: revoke one certificate (RFC 5280 §5.3.1 reason name)."""

    correlation_id: str
    serial: str
    reason: RevocationReason


class AdminCertificate(msgspec.Struct, frozen=True, tag="admin.cert.shown.v1", tag_field="type"):
    """The reply to :class:`AdminShowCertificate` and :class:`AdminRevokeCertificate`."""

    correlation_id: str
    certificate: CertificateSummary
    # For a revocation: False when it had been revoked before (nothing changed).
    revoked_now: bool | None = None


class CertificateCount(msgspec.Struct, frozen=True):
    ca: str
    status: CertificateState
    count: int


class AdminCountCertificates(
    msgspec.Struct, frozen=True, tag="admin.cert.count.v1", tag_field="type"
):
    """Admin → signer: how many certificates each CA holds in each status (dashboard)."""

    correlation_id: str


class AdminCertificateCounts(
    msgspec.Struct, frozen=True, tag="admin.cert.counted.v1", tag_field="type"
):
    correlation_id: str
    counts: list[CertificateCount]


class SignalSourceStatus(msgspec.Struct, frozen=True):
    """A signal source's "Validate" outcome (the guide's button)."""

    name: str
    ok: bool
    detail: str


class AdminValidateSignalSource(
    msgspec.Struct, frozen=True, tag="admin.source.validate.v1", tag_field="type"
):
    """Admin → policy: validate one signal source's connection/configuration."""

    correlation_id: str
    name: str


class AdminCheckSignalSources(
    msgspec.Struct, frozen=True, tag="admin.source.health.v1", tag_field="type"
):
    """Admin → policy: validate every signal source (the dashboard's health panel)."""

    correlation_id: str


class AdminSignalSourceStatuses(
    msgspec.Struct, frozen=True, tag="admin.source.checked.v1", tag_field="type"
):
    """The reply to both signal-source requests (one entry for a single validation)."""

    correlation_id: str
    sources: list[SignalSourceStatus]


# What the guide's "Validate" of a lookup policy says.
LookupVerdict = Literal["Account validation succeeded.", "Account validation failed."]


class AdminValidateLookup(
    msgspec.Struct, frozen=True, tag="admin.lookup.validate.v1", tag_field="type"
):
    """Admin → policy: run a lookup policy for an identity (the guide's "Validate")."""

    correlation_id: str
    name: str
    identity: str


class LookupReport(msgspec.Struct, frozen=True):
    """What the guide's "Validate Configuration" pop-up shows for one identity: the policy's
    verdict, and the attributes and groups the source holds (or why it failed)."""

    lookup_policy: str
    signal_source: str
    identity: str
    ok: bool
    message: LookupVerdict
    reason: str | None = None
    managed: bool | None = None
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    groups: list[str] = msgspec.field(default_factory=list)


class AdminLookupReport(
    msgspec.Struct, frozen=True, tag="admin.lookup.validated.v2", tag_field="type"
):
    """The reply to :class:`AdminValidateLookup` (v2: the report nested, as the API shows it)."""

    correlation_id: str
    report: LookupReport


AdminMessage = (
    AdminListCas
    | AdminCaList
    | AdminQueryCertificates
    | AdminCertificateList
    | AdminShowCertificate
    | AdminRevokeCertificate
    | AdminCertificate
    | AdminCountCertificates
    | AdminCertificateCounts
    | AdminValidateSignalSource
    | AdminCheckSignalSources
    | AdminSignalSourceStatuses
    | AdminValidateLookup
    | AdminLookupReport
)
