"""A cache may say yes for a while, never no: the engine re-asks fresh before refusing on a
cached answer, and tells the source which inventory the attestation points to."""

from __future__ import annotations

from dataclasses import dataclass, field

from acmegate.policy.engine import PolicyEngine
from acmegate.policy.lookups import LookupSession, likely_kind
from acmegate.policy.sources import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    ValidationReport,
)
from tests.unit.policy.builders import SERIAL, claims, make_config, order

IN_GROUP = DeviceRecord(SERIAL, None, True, {"department": "IT"}, ("Cert-Eligible",))
OUT_OF_GROUP = DeviceRecord(SERIAL, None, True, {"department": "IT"}, ("Lab",))


@dataclass
class ScriptedSource:
    """Answers from ``cached`` unless asked fresh, then from ``fresh``; records the calls."""

    cached: DeviceRecord | None
    fresh: DeviceRecord | None
    name: str = "inventory"
    calls: list[tuple[bool, DeviceKind | None]] = field(default_factory=list)

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        self.calls.append((fresh, likely))
        if fresh or self.cached is None:
            return self.fresh
        return DeviceRecord(
            self.cached.serial_number,
            self.cached.udid,
            self.cached.managed,
            self.cached.attributes,
            self.cached.groups,
            from_cache=True,
        )

    async def validate(self) -> ValidationReport:
        return ValidationReport(self.name, True, "scripted")

    async def close(self) -> None:
        pass


async def test_a_cached_refusal_is_asked_again_fresh() -> None:
    source = ScriptedSource(cached=OUT_OF_GROUP, fresh=IN_GROUP)
    engine = PolicyEngine(make_config(), {"inventory": source})
    decision = await engine.decide(order(), LookupSession())
    assert decision.source_record == IN_GROUP
    assert [fresh for fresh, _ in source.calls] == [False, True]


async def test_a_cached_pass_is_used_without_asking_again() -> None:
    source = ScriptedSource(cached=IN_GROUP, fresh=OUT_OF_GROUP)
    engine = PolicyEngine(make_config(), {"inventory": source})
    decision = await engine.decide(order(), LookupSession())
    assert decision.source_record is not None and decision.source_record.from_cache
    assert len(source.calls) == 1


async def test_the_attestation_says_which_inventory_to_ask_first() -> None:
    mac = claims(sip_enabled=True, secure_boot="Full Security")
    phone = claims()
    assert likely_kind(mac) == "computer" and likely_kind(phone) == "mobile_device"
    assert likely_kind(None) is None
    source = ScriptedSource(cached=None, fresh=IN_GROUP)
    engine = PolicyEngine(make_config(), {"inventory": source})
    await engine.decide(order(device=mac), LookupSession())
    assert source.calls == [(False, "computer")]
