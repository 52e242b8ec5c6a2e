"""Server certificates (issue #15): the policy stage of a ``dns``/``ip`` order.

The enrollment policy is chosen again here from ``server_names`` (the first that admits every
identifier for the account, :mod:`acmegate.common.server_names`), so a certificate follows the
configuration it is issued under. The certificate names exactly the order's identifiers — each
proven by a challenge before the order could be finalized — as DNS / IP SANs, and
``CN=<first identifier>`` when the policy's ``common_name`` says so (RFC 5280 §4.2.1.6: the
SANs are what relying parties check). From the template come validity, signature hash, key
usage and extended key usage; its subject and SAN entries are not used for servers.
"""

from __future__ import annotations

from collections.abc import Sequence

from acmegate.common.config.model import EnrollmentPolicyConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import (
    CertificateSpec,
    EnrollmentRecord,
    FinalizeOrder,
    Identifier,
    NameAttribute,
    SanEntry,
)
from acmegate.common.server_names import choose_policy, parse_server_identifiers
from acmegate.common.vocabulary import IdentifierType
from acmegate.policy.templates import CompiledTemplate

_COMMON_NAME = "2.5.4.3"
# RFC 5280 Appendix A: ub-common-name is 64; a longer name can only be a SAN.
_CN_MAX = 64


def is_server_order(order: FinalizeOrder) -> bool:
    return bool(order.identifiers) and all(
        i.type in (IdentifierType.DNS, IdentifierType.IP) for i in order.identifiers
    )


def choose(
    policies: Sequence[EnrollmentPolicyConfig], order: FinalizeOrder
) -> EnrollmentPolicyConfig:
    """The server policy for ``order`` (``rejectedIdentifier`` if none admits it any more)."""
    names = parse_server_identifiers(order.identifiers)
    return choose_policy(policies, names, order.account_id, order.eab_key_id)


def render(
    template: CompiledTemplate, policy: EnrollmentPolicyConfig, order: FinalizeOrder
) -> CertificateSpec:
    if order.csr is None:
        raise AcmeError(ErrorKind.SERVER_INTERNAL, "the CSR was not verified before policy")
    names = policy.server_names
    assert names is not None
    sans = [
        SanEntry("ip" if i.type == IdentifierType.IP else "dns", i.value) for i in order.identifiers
    ]
    subject: list[NameAttribute] = []
    if names.common_name:
        first = next((i.value for i in order.identifiers if len(i.value) <= _CN_MAX), None)
        if first is not None:
            subject.append(NameAttribute(_COMMON_NAME, first))
    return CertificateSpec(
        ca=policy.certificate_authority,
        template=template.name,
        public_key=order.csr.public_key,
        subject=subject,
        sans=sans,
        validity_seconds=template.validity_seconds,
        signature_hash=template.signature_hash,
        key_usage=list(template.key_usage),
        extended_key_usage=list(template.extended_key_usage),
    )


def record(order: FinalizeOrder, policy: EnrollmentPolicyConfig) -> EnrollmentRecord:
    """Why the certificate was issued: the policy that admitted the names."""
    return EnrollmentRecord(
        identifier=order.identifiers[0] if order.identifiers else Identifier("", ""),
        enrollment_policy=policy.name,
    )
