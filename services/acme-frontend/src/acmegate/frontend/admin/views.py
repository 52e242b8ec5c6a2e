"""The JSON bodies of the admin API, as msgspec structs.

The routes encode these structs (and the signer's and policy service's replies from
``acmegate.common.admin_messages``); the OpenAPI document's component schemas are generated
from the very same structs (``openapi.py``), so the document cannot drift from what is sent.
Constraints that only document a value the route checks itself (with its own message) are
given to the schema alone (``extra_json_schema``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from acmegate.common.config.model import ClientIdentifier, ProfileKeySize
from acmegate.common.messages import UtcTime
from acmegate.common.vocabulary import RevocationReason
from acmegate.frontend.db.enrollments import EnrollmentEvent

# Where the listing of a signal source says what kind it is.
SignalSourceType = Literal["static", "jamf_pro"]


def _doc(description: str, **schema: object) -> msgspec.Meta:
    """A field's documentation (and schema-only constraints) for the OpenAPI document."""
    return msgspec.Meta(description=description, extra_json_schema=schema or None)


class ProblemDocument(msgspec.Struct, frozen=True):
    """RFC 7807 problem document (``type: about:blank``: the HTTP status says it all)."""

    type: Literal["about:blank"]
    title: str
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    detail: str


class SubjectAltNames(msgspec.Struct, frozen=True):
    """A template's subjectAltName entries, each possibly holding ``${/path}`` variables."""

    dns: list[str]
    rfc822: list[str]
    uri: list[str]
    ip: list[str]
    other_name: list[str]
    permanent_identifier: list[str]


class CsrRule(msgspec.Struct, frozen=True):
    """What a value from the CSR must equal or fully match to be issued (as configured)."""

    equals: list[str]
    matches: list[str]


class Template(msgspec.Struct, frozen=True):
    """A certificate template of the configuration."""

    name: str
    description: str
    subject: str
    subject_alt_names: SubjectAltNames
    required: list[str]
    # ${/csr/...} variable path → its rule (the defaults of the CN and PermanentIdentifier
    # are not listed).
    csr_rules: dict[str, CsrRule]
    validity_seconds: int
    signature_algorithm: Literal["sha256", "sha384", "sha512"]
    key_usage: list[str]
    extended_key_usage: list[str]


class Platform(msgspec.Struct, frozen=True):
    """A device management platform: its profile settings and enrollment token."""

    name: str
    description: str
    type: str
    vendor: str
    client_identifier: ClientIdentifier
    subject: str
    key_size: ProfileKeySize
    signed: bool
    profile_path: str
    # When the live enrollment token was minted (the token itself is in the profile).
    token_created_at: UtcTime | None


class TokenRotation(msgspec.Struct, frozen=True):
    """A newly minted enrollment token; the previous ones are refused from now on."""

    platform: str
    token: str
    created_at: UtcTime


class SignalSource(msgspec.Struct, frozen=True):
    """A signal source of the configuration (never its credentials)."""

    name: str
    type: SignalSourceType
    description: str
    # Where a Jamf Pro source connects.
    url: str | None


class SignalSourceValidation(msgspec.Struct, frozen=True):
    """What validating a signal source found, or why it failed."""

    name: str
    ok: bool
    message: str


class LookupPolicy(msgspec.Struct, frozen=True):
    """A lookup policy of the configuration (the guide's security signal source)."""

    name: str
    description: str
    purpose: str
    signal_source: str
    lookup_type: str
    identity: str
    revoke_on_failure: bool


class LookupValidationRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{"identity": "C02XXXXXXXXX"}``: the device to look up as the policy would."""

    identity: Annotated[
        str,
        _doc(
            "A device serial number, UDID or DNS name (per the policy).",
            minLength=1,
            pattern="\\S",
            example="C02XXXXXXXXX",
        ),
    ]


class RevokeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{"reason": "keyCompromise"}``; without a reason: ``unspecified``."""

    # Checked by the route (its message lists the reasons); the schema shows them.
    reason: Annotated[
        str, _doc("RFC 5280 §5.3.1 reason name.", enum=[str(r) for r in RevocationReason])
    ] = RevocationReason.UNSPECIFIED


class EabKey(msgspec.Struct, frozen=True):
    """An External Account Binding key (RFC 8555 §7.3.4); never its HMAC key."""

    key_id: str
    description: str
    status: Literal["unused", "bound", "revoked"]
    created_at: UtcTime
    revoked_at: UtcTime | None
    # The ACME account the key created (server_names.eab_keys admits it by this key id).
    account_id: str | None
    bound_at: UtcTime | None


class EabKeyCreated(msgspec.Struct, frozen=True):
    """A new EAB key with its HMAC key (base64url, as ACME clients take it): shown this once."""

    key_id: str
    hmac_key: str
    description: str
    created_at: UtcTime


class EabKeyRevocation(msgspec.Struct, frozen=True):
    """The key as it now stands; ``revoked_now`` is false if it was revoked before."""

    eab_key: EabKey
    revoked_now: bool


class EabKeyRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{"description": "radius.corp.example.org"}``: who the key is for (optional)."""

    description: Annotated[str, _doc("Who or what the key is for.", maxLength=200)] = ""


# The bodies the admin API sends (every field always present) and the ones it accepts.
RESPONSE_BODIES: tuple[type[msgspec.Struct], ...] = (
    ProblemDocument,
    Template,
    Platform,
    TokenRotation,
    SignalSource,
    SignalSourceValidation,
    LookupPolicy,
    EnrollmentEvent,
    EabKey,
    EabKeyCreated,
    EabKeyRevocation,
)
REQUEST_BODIES: tuple[type[msgspec.Struct], ...] = (
    LookupValidationRequest,
    RevokeRequest,
    EabKeyRequest,
)
