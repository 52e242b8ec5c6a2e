"""The policy engine: first matching enrollment policy wins, refusals say why."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import pytest

from acmegate.common.config import Config
from acmegate.common.config.model import (
    DeviceRoleConditions,
    DeviceRoleConfig,
    EnrollmentPolicyConfig,
    LookupPolicyConfig,
    PolicyWorkflowConfig,
    StaticSourceConfig,
    WorkflowConditions,
)
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import (
    EnrollmentRecord,
    FinalizeOrder,
    Identifier,
    NameAttribute,
    SanEntry,
)
from acmegate.policy.engine import Decision, PolicyEngine
from acmegate.policy.finalize import PolicyStage
from acmegate.policy.lookups import LookupSession
from acmegate.policy.sources import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SignalSource,
    SourceUnavailable,
    ValidationReport,
    build_source,
)
from acmegate.policy.templates import compile_templates
from tests.unit.policy.builders import SERIAL, UDID, claims, csr, make_config, order


@dataclass
class CountingSource:
    """Wraps a real source and counts the questions put to it."""

    inner: SignalSource
    calls: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.inner.name

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        self.calls.append((kind, identity))
        return await self.inner.lookup(identity, kind, fresh=fresh, likely=likely)

    async def validate(self) -> ValidationReport:
        return await self.inner.validate()

    async def close(self) -> None:
        await self.inner.close()


class DownSource:
    name = "inventory"

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        raise SourceUnavailable(self.name, "connection refused")

    async def validate(self) -> ValidationReport:
        return ValidationReport(self.name, False, "down")

    async def close(self) -> None:
        pass


def engine_for(config: Config) -> tuple[PolicyEngine, dict[str, CountingSource]]:
    sources = {s.name: CountingSource(build_source(s)) for s in config.signal_sources}
    return PolicyEngine(config, sources), sources


async def refusal(config: Config, finalize: FinalizeOrder) -> AcmeError:
    engine, _ = engine_for(config)
    with pytest.raises(AcmeError) as raised:
        await engine.decide(finalize)
    return raised.value


def policy(name: str, **conditions: object) -> EnrollmentPolicyConfig:
    return EnrollmentPolicyConfig(
        name=name,
        certificate_authority="devices-ca",
        certificate_template="device",
        **conditions,  # type: ignore[arg-type]
    )


def with_policies(*policies: EnrollmentPolicyConfig, **changes: object) -> Config:
    """The base configuration with other enrollment policies (and other changes)."""
    return msgspec.structs.replace(make_config(), enrollment_policies=list(policies), **changes)


async def test_a_known_managed_eligible_device_gets_the_policy_and_what_it_matched() -> None:
    config = make_config()
    engine, sources = engine_for(config)
    decision = await engine.decide(order())
    assert isinstance(decision, Decision)
    assert decision.enrollment_policy.name == "managed-devices"
    assert decision.workflow is not None and decision.workflow.name == "eligible"
    assert decision.device_role is not None and decision.device_role.name == "modern-apple"
    assert decision.lookup_policy is not None and decision.lookup_policy.name == "by-serial"
    assert decision.signal_source == "inventory"
    assert decision.source_record is not None and decision.source_record.attributes["email"] == (
        "alice@example.com"
    )
    assert sources["inventory"].calls == [("serial_number", SERIAL)]


async def test_a_device_unknown_to_the_source_is_a_rejected_identifier() -> None:
    error = await refusal(make_config(), order("C02NOTKNOWN1"))
    assert error.kind is ErrorKind.REJECTED_IDENTIFIER
    assert error.detail == "device C02NOTKNOWN1 is not known to signal source 'inventory'"


async def test_a_device_the_source_does_not_manage_is_a_rejected_identifier() -> None:
    error = await refusal(make_config(), order("C02UNMANAGED"))
    assert error.kind is ErrorKind.REJECTED_IDENTIFIER
    assert error.detail == "device C02UNMANAGED is not managed (signal source 'inventory')"


async def test_a_device_outside_the_workflow_groups_is_a_rejected_identifier() -> None:
    error = await refusal(make_config(), order("C02NOGROUP01"))
    assert error.kind is ErrorKind.REJECTED_IDENTIFIER
    assert error.detail == (
        "device C02NOGROUP01 is in none of the groups 'Cert-Eligible' (signal source 'inventory')"
    )


async def test_an_attribute_mismatch_is_a_rejected_identifier_naming_the_attribute() -> None:
    error = await refusal(make_config(), order("C02SALES0001"))
    assert error.kind is ErrorKind.REJECTED_IDENTIFIER
    assert error.detail == (
        "device C02SALES0001 has attribute 'department' with a value not in 'IT' "
        "(signal source 'inventory')"
    )


async def test_a_device_role_mismatch_is_unauthorized_and_costs_no_lookup() -> None:
    config = make_config()
    engine, sources = engine_for(config)
    with pytest.raises(AcmeError) as raised:
        await engine.decide(order(device=claims(os_version="13.6.1")))
    assert raised.value.kind is ErrorKind.UNAUTHORIZED
    assert raised.value.detail == (
        "no enrollment policy matches this device: managed-devices: device role "
        "'modern-apple': OS version 13.6.1 is older than 14.0"
    )
    assert sources["inventory"].calls == []


async def test_the_first_matching_policy_wins() -> None:
    config = with_policies(policy("first", role="eligible"), policy("second"))
    engine, _ = engine_for(config)
    assert (await engine.decide(order())).enrollment_policy.name == "first"
    # The first refuses an unknown device, the second (no conditions) then takes it.
    decision = await engine.decide(order("C02NOTKNOWN1"))
    assert decision.enrollment_policy.name == "second"
    assert decision.source_record is None and decision.workflow is None


async def test_when_no_policy_matches_the_detail_lists_why_each_did_not() -> None:
    base = make_config()
    config = with_policies(
        policy("needs-sip", device_role="sip"),
        policy("via-jamf", platforms=["jamf"]),
        policy("by-udid", role="by-udid"),
        device_roles=[
            *base.device_roles,
            DeviceRoleConfig(
                name="sip",
                conditions=DeviceRoleConditions(attestation_provider="apple", sip_enabled=True),
            ),
        ],
        lookup_policies=[
            *base.lookup_policies,
            LookupPolicyConfig(name="udid", signal_source="inventory", identity="attested_udid"),
        ],
        policy_workflows=[
            *base.policy_workflows,
            PolicyWorkflowConfig(
                name="by-udid", conditions=WorkflowConditions(lookup_policy="udid")
            ),
        ],
    )
    error = await refusal(config, order(device=claims(udid=None)))
    assert error.kind is ErrorKind.UNAUTHORIZED
    assert error.detail == (
        "no enrollment policy matches this device: "
        "needs-sip: device role 'sip': the attestation reports no SIP status; "
        "via-jamf: only for orders through platform(s) jamf; "
        "by-udid: workflow 'by-udid': no attested UDID"
    )


async def test_a_source_refusal_leads_and_other_reasons_follow() -> None:
    config = with_policies(
        policy("managed", role="eligible"), policy("via-jamf", platforms=["jamf"])
    )
    error = await refusal(config, order("C02NOTKNOWN1"))
    assert error.kind is ErrorKind.REJECTED_IDENTIFIER
    assert error.detail == (
        "device C02NOTKNOWN1 is not known to signal source 'inventory' "
        "(and no other enrollment policy matches: via-jamf: only for orders through "
        "platform(s) jamf)"
    )


async def test_a_platform_restricted_policy_matches_orders_through_that_platform() -> None:
    engine, _ = engine_for(with_policies(policy("via-jamf", platforms=["jamf"])))
    assert (await engine.decide(order(platform="jamf"))).enrollment_policy.name == "via-jamf"
    with pytest.raises(AcmeError, match="platform 'kandji' is not one of jamf"):
        await engine.decide(order(platform="kandji"))


async def test_policies_sharing_a_workflow_look_the_device_up_once() -> None:
    config = with_policies(
        policy("only-jamf", role="eligible", platforms=["jamf"]),
        policy("sales", role="eligible", device_role="modern-apple"),
        policy("fallback", role="eligible"),
    )
    engine, sources = engine_for(config)
    session = LookupSession()
    with pytest.raises(AcmeError, match="'department' with a value not in 'IT'"):
        await engine.decide(order("C02SALES0001", platform="jamf"), session)
    assert sources["inventory"].calls == [("serial_number", "C02SALES0001")]
    assert [(e.lookup_policy, e.identity, e.outcome, e.managed) for e in session.events] == [
        ("by-serial", "C02SALES0001", "found", True)
    ]


async def test_a_lookup_by_csr_dns_name_finds_the_device_by_its_dns_name_attribute() -> None:
    engine, sources = engine_for(by_dns_config())
    device = claims()
    # The first dNSName is looked up; DNS names compare without regard to case.
    info = csr(dns=[f"{SERIAL.lower()}.corp.example", "other.example.com"], key=device.attested_key)
    decision = await engine.decide(order(device=device, info=info))
    assert decision.source_record is not None and decision.source_record.serial_number == SERIAL
    assert sources["inventory"].calls == [("dns_name", f"{SERIAL.lower()}.corp.example")]
    with pytest.raises(AcmeError, match="the CSR has no dNSName to look up"):
        await engine.decide(order(info=csr(dns=[])))


def by_dns_config() -> Config:
    """The base configuration looking devices up by the CSR's dNSName (attribute dns_name)."""
    base = make_config()
    source = base.signal_sources[0]
    assert isinstance(source, StaticSourceConfig)
    devices = [
        msgspec.structs.replace(
            device,
            attributes={**device.attributes, "dns_name": f"{device.serial_number}.corp.example"},
        )
        for device in source.devices
    ]
    return with_policies(
        policy("by-dns", role="by-dns"),
        signal_sources=[msgspec.structs.replace(source, devices=devices)],
        lookup_policies=[
            LookupPolicyConfig(name="dns", signal_source="inventory", identity="csr_san_dns")
        ],
        policy_workflows=[
            PolicyWorkflowConfig(name="by-dns", conditions=WorkflowConditions(lookup_policy="dns"))
        ],
    )


async def test_a_csr_dns_name_of_another_device_is_refused_not_looked_up_for_it() -> None:
    """An attested C02UNKNOWN99 naming a managed device in its CSR gets nothing of it."""
    engine, _ = engine_for(by_dns_config())
    device = claims("C02UNKNOWN99", udid="00008103-00000000DEADBEEF")
    stolen = csr(dns=[f"{SERIAL.lower()}.corp.example"], key=device.attested_key)
    with pytest.raises(AcmeError) as raised:
        await engine.decide(order("C02UNKNOWN99", device=device, info=stolen))
    assert raised.value.kind is ErrorKind.REJECTED_IDENTIFIER
    assert raised.value.detail == (
        f"the CSR's dNSName {SERIAL.lower()}.corp.example names a device of signal source "
        "'inventory' that is not the attested device (serial C02UNKNOWN99)"
    )
    # Nor may a device that is in the inventory borrow another's name.
    sales = claims("C02SALES0001")
    borrowed = csr(dns=[f"{SERIAL}.corp.example"], key=sales.attested_key)
    with pytest.raises(AcmeError, match="not the attested device") as raised:
        await engine.decide(order("C02SALES0001", device=sales, info=borrowed))
    assert raised.value.kind is ErrorKind.REJECTED_IDENTIFIER


async def test_a_csr_dns_name_of_the_attested_device_passes_by_serial_or_udid() -> None:
    engine, _ = engine_for(by_dns_config())
    honest = claims()
    info = csr(dns=[f"{SERIAL}.corp.example"], key=honest.attested_key)
    decision = await engine.decide(order(device=honest, info=info))
    assert decision.source_record is not None and decision.source_record.serial_number == SERIAL
    # An attestation without a serial (User Enrollment) still binds by its UDID.
    by_udid = claims(serial=None, udid=UDID)
    info = csr(dns=[f"{SERIAL}.corp.example"], key=by_udid.attested_key)
    decision = await engine.decide(order(device=by_udid, info=info))
    assert decision.source_record is not None and decision.source_record.udid == UDID


def test_a_record_identifies_a_device_as_its_source_compares_identifiers() -> None:
    static = DeviceRecord(serial_number=SERIAL, udid=UDID, managed=True)
    jamf = DeviceRecord(
        serial_number=SERIAL.lower(), udid=UDID.lower(), managed=True, identifiers_ignore_case=True
    )
    assert static.identifies(SERIAL, None) and static.identifies(None, UDID)
    assert not static.identifies(SERIAL.lower(), UDID.lower())
    assert jamf.identifies(SERIAL, None) and jamf.identifies("C02OTHER0000", UDID)
    assert not jamf.identifies("C02OTHER0000", None)
    assert not DeviceRecord(serial_number=None, udid=None, managed=True).identifies(None, None)


async def test_an_unavailable_source_is_raised_not_turned_into_a_refusal() -> None:
    config = with_policies(policy("managed", role="eligible"), policy("fallback"))
    engine = PolicyEngine(config, {"inventory": DownSource()})
    session = LookupSession()
    with pytest.raises(SourceUnavailable, match="signal source 'inventory' is unavailable"):
        await engine.decide(order(), session)
    assert [(e.outcome, e.detail) for e in session.events] == [
        ("unavailable", "connection refused")
    ]


async def test_no_enrollment_policy_at_all_is_unauthorized() -> None:
    error = await refusal(with_policies(), order())
    assert error.kind is ErrorKind.UNAUTHORIZED
    assert error.detail == "no enrollment policy is configured"


async def test_the_stage_fills_in_spec_and_record() -> None:
    config = make_config()
    engine, _ = engine_for(config)
    stage = PolicyStage(engine, compile_templates(config))
    device = claims()
    finalize = order(device=device, info=csr(dns=["mac.example.com"], key=device.attested_key))
    result = await stage.apply(finalize, LookupSession())
    assert result.spec is not None
    assert result.spec.ca == "devices-ca"
    assert result.spec.public_key == finalize.claims[0].attested_key
    assert result.spec.subject == [
        NameAttribute("2.5.4.3", SERIAL),
        NameAttribute("2.5.4.10", "Example, Inc."),
        NameAttribute("2.5.4.11", "IT"),
    ]
    assert result.spec.sans == [
        SanEntry("dns", "mac.example.com"),
        SanEntry("rfc822", "alice@example.com"),
        SanEntry("permanent_identifier", SERIAL),
    ]
    assert result.spec.validity_seconds == 30 * 86400
    assert result.record == EnrollmentRecord(
        identifier=Identifier("permanent-identifier", SERIAL),
        device=finalize.claims[0],
        platform=None,
        signal_source="inventory",
        source_attributes={"department": "IT", "email": "alice@example.com"},
        source_groups=["All Managed Clients", "Cert-Eligible"],
        lookup_policy="by-serial",
        workflow="eligible",
        device_role="modern-apple",
        enrollment_policy="managed-devices",
        revoke_on_failure=True,
    )
    # Everything else of the order travels on unchanged.
    assert msgspec.structs.replace(result, spec=None, record=None) == finalize
