"""The policy engine: which enrollment policy, if any, lets this device have a certificate.

Enrollment policies are evaluated in the order configured and the first that matches wins
(the guide's "Enrollment Policy": role + device role → CA + template). Per policy the cheap
checks come first (platform, device role on the attestation) so that a policy which cannot
match never costs a signal source lookup.

When no policy matches, the order fails:

- ``rejectedIdentifier`` when a signal source refused the device (unknown, not managed, in
  none of the groups, attribute mismatch): the identifier itself is not acceptable;
- ``unauthorized`` otherwise, with one short reason per policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acmegate.common.config.model import (
    Config,
    DeviceRoleConfig,
    EnrollmentPolicyConfig,
    LookupPolicyConfig,
    PolicyWorkflowConfig,
)
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import FinalizeOrder
from acmegate.policy.conditions import device_role_mismatch, platform_mismatch, workflow_mismatch
from acmegate.policy.lookups import (
    LookupSession,
    binding_mismatch,
    likely_kind,
    order_identity,
)
from acmegate.policy.sources.base import DeviceRecord, SignalSource


@dataclass(frozen=True)
class Decision:
    """The enrollment policy that matched, and what it matched on."""

    enrollment_policy: EnrollmentPolicyConfig
    workflow: PolicyWorkflowConfig | None = None
    device_role: DeviceRoleConfig | None = None
    lookup_policy: LookupPolicyConfig | None = None
    # What the signal source said of the device (None when the policy has no workflow).
    source_record: DeviceRecord | None = None

    @property
    def signal_source(self) -> str | None:
        return self.lookup_policy.signal_source if self.lookup_policy else None


@dataclass(frozen=True, slots=True)
class _WorkflowResult:
    lookup_policy: LookupPolicyConfig
    record: DeviceRecord | None
    refusal: str | None
    # True when the signal source refused the device (→ rejectedIdentifier).
    by_source: bool


@dataclass(frozen=True, slots=True)
class _Refusal:
    policy: str
    reason: str
    by_source: bool


class PolicyEngine:
    """Evaluates the configured enrollment policies against one order at a time.

    ``sources`` maps signal source names to live sources; the configuration's references
    were checked at load (``check_references``), so the lookups below cannot miss.
    """

    def __init__(self, config: Config, sources: Mapping[str, SignalSource]) -> None:
        self._policies = tuple(config.enrollment_policies)
        self._roles = {role.name: role for role in config.device_roles}
        self._workflows = {workflow.name: workflow for workflow in config.policy_workflows}
        self._lookups = {policy.name: policy for policy in config.lookup_policies}
        self._sources = sources

    async def decide(self, order: FinalizeOrder, session: LookupSession | None = None) -> Decision:
        """The first enrollment policy that matches ``order``.

        Raises :class:`AcmeError` when none does, and
        :class:`~acmegate.policy.sources.base.SourceUnavailable` when a source needed to
        decide cannot answer (a later policy must not win because an earlier one could not
        be evaluated).
        """
        session = session if session is not None else LookupSession()
        device = order.claims[0] if order.claims else None
        workflows: dict[str, _WorkflowResult] = {}
        refusals: list[_Refusal] = []
        for policy in self._policies:
            if policy.server_names is not None:
                # A server policy certifies names, never a device (server_certs.py).
                continue
            reason = platform_mismatch(policy, order.platform)
            role = self._roles[policy.device_role] if policy.device_role else None
            if reason is None and role is not None:
                reason = device_role_mismatch(role, device)
            if reason is not None:
                refusals.append(_Refusal(policy.name, reason, by_source=False))
                continue
            if policy.role is None:
                return Decision(policy, device_role=role)
            result = workflows.get(policy.role)
            if result is None:
                result = await self._run_workflow(policy.role, order, session)
                workflows[policy.role] = result
            if result.refusal is not None:
                refusals.append(_Refusal(policy.name, result.refusal, result.by_source))
                continue
            return Decision(
                policy,
                workflow=self._workflows[policy.role],
                device_role=role,
                lookup_policy=result.lookup_policy,
                source_record=result.record,
            )
        raise _no_match(refusals)

    async def _run_workflow(
        self, name: str, order: FinalizeOrder, session: LookupSession
    ) -> _WorkflowResult:
        workflow = self._workflows[name]
        lookup = self._lookups[workflow.conditions.lookup_policy]
        identity = order_identity(lookup, order)
        if identity.value is None:
            reason = f"workflow {name!r}: {identity.missing}"
            return _WorkflowResult(lookup, None, reason, by_source=False)
        source = self._sources[lookup.signal_source]
        device = order.claims[0] if order.claims else None
        likely = likely_kind(device)
        record = await session.lookup(lookup, source, identity.kind, identity.value, likely=likely)
        # Another device's record is refused before its conditions are even looked at: what
        # the source says of it (managed or not, its groups) is none of this device's business.
        refusal = binding_mismatch(identity, record, device, source.name)
        if refusal is not None:
            return _WorkflowResult(lookup, None, refusal, by_source=True)
        refusal = workflow_mismatch(workflow, record, identity=identity.value, source=source.name)
        if refusal is not None and record is not None and record.from_cache:
            # A cache may say yes for a while, never no: a refusal rests on a fresh answer
            # (the device may have joined the group since it was cached).
            record = await session.lookup(
                lookup, source, identity.kind, identity.value, fresh=True, likely=likely
            )
            refusal = workflow_mismatch(
                workflow, record, identity=identity.value, source=source.name
            )
        return _WorkflowResult(lookup, record, refusal, by_source=refusal is not None)


def _no_match(refusals: list[_Refusal]) -> AcmeError:
    if not refusals:
        return AcmeError(ErrorKind.UNAUTHORIZED, "no enrollment policy is configured")
    by_source = list(dict.fromkeys(r.reason for r in refusals if r.by_source))
    others = "; ".join(f"{r.policy}: {r.reason}" for r in refusals if not r.by_source)
    if by_source:
        detail = "; ".join(by_source)
        if others:
            detail += f" (and no other enrollment policy matches: {others})"
        return AcmeError(ErrorKind.REJECTED_IDENTIFIER, detail)
    return AcmeError(ErrorKind.UNAUTHORIZED, f"no enrollment policy matches this device: {others}")
