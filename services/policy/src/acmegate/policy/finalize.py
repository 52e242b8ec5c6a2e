"""The policy stage of the finalize pipeline: decide, render the template, record why.

docs/architecture.md, "The flow" step 4: the attestation stage verified the CSR and filled ``csr``;
this stage fills ``spec`` (what the signer issues) and ``record`` (why it was issued, stored with
the certificate) and hands the order on; or it answers with the problem that ends the order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from acmegate.common.config.model import EnrollmentPolicyConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import EnrollmentRecord, FinalizeOrder, Identifier
from acmegate.policy import server_certs
from acmegate.policy.engine import Decision, PolicyEngine
from acmegate.policy.lookups import LookupSession
from acmegate.policy.templates import CompiledTemplate
from acmegate.policy.variables import RenderContext


def enrollment_record(order: FinalizeOrder, decision: Decision) -> EnrollmentRecord:
    """The guide's "completed" view of an enrollment: the device and the policies it met."""
    record = decision.source_record
    identifier = order.identifiers[0] if order.identifiers else Identifier("", "")
    return EnrollmentRecord(
        identifier=identifier,
        device=order.claims[0] if order.claims else None,
        platform=order.platform,
        signal_source=decision.signal_source,
        source_attributes=dict(record.attributes) if record else {},
        source_groups=list(record.groups) if record else [],
        lookup_policy=decision.lookup_policy.name if decision.lookup_policy else None,
        workflow=decision.workflow.name if decision.workflow else None,
        device_role=decision.device_role.name if decision.device_role else None,
        enrollment_policy=decision.enrollment_policy.name,
        revoke_on_failure=bool(decision.lookup_policy and decision.lookup_policy.revoke_on_failure),
    )


class PolicyStage:
    """Turns a FinalizeOrder with ``csr`` into one with ``spec`` and ``record``."""

    def __init__(
        self,
        engine: PolicyEngine,
        templates: Mapping[str, CompiledTemplate],
        policies: Sequence[EnrollmentPolicyConfig] = (),
    ) -> None:
        self._engine = engine
        self._templates = templates
        self._policies = tuple(policies)

    async def apply(self, order: FinalizeOrder, session: LookupSession) -> FinalizeOrder:
        """The order to hand to the signer.

        Raises :class:`AcmeError` (the order fails with it) or
        :class:`~acmegate.policy.sources.base.SourceUnavailable` (try again later).
        """
        if order.csr is None:
            raise AcmeError(ErrorKind.SERVER_INTERNAL, "the CSR was not verified before policy")
        if server_certs.is_server_order(order):
            # Names proven by challenges, no device and no signal source (server_certs.py).
            server = server_certs.choose(self._policies, order)
            template = self._templates[server.certificate_template]
            spec = server_certs.render(template, server, order)
            return msgspec.structs.replace(
                order, spec=spec, record=server_certs.record(order, server)
            )
        decision = await self._engine.decide(order, session)
        policy = decision.enrollment_policy
        template = self._templates[policy.certificate_template]
        context = RenderContext(
            csr=order.csr,
            device=order.claims[0] if order.claims else None,
            identifiers=order.identifiers,
            record=decision.source_record,
            signal_source=decision.signal_source,
        )
        spec = template.render(ca=policy.certificate_authority, context=context)
        return msgspec.structs.replace(order, spec=spec, record=enrollment_record(order, decision))
