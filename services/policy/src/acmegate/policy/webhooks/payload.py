"""What a Jamf Pro webhook says, read strictly (Jamf's "Webhooks" developer documentation).

Every webhook is JSON ``{"webhook": {"webhookEvent", "id", "name", "eventTimestamp"},
"event": {...}}``. Computer events carry the device flat in ``event`` (``serialNumber``,
``udid``) or, for ``ComputerCheckIn``/``ComputerPolicyFinished``, under ``event.computer``;
mobile device events carry it flat; smart group membership changes list the devices that
joined and left (``groupAddedDevices``/``groupRemovedDevices`` with their display fields, and
``groupAddedDevicesIds``/``groupRemovedDevicesIds``, Jamf ids).

Nothing here is believed: a webhook only names devices to look at again. A serial or UDID that
could not be one (docs/jamf.md §8.3) is dropped, and a payload names at most
:data:`MAX_DEVICES` devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from acmegate.policy.sources.jamf.lookup import safe_value

MAX_DEVICES = 1000

DeviceKind = Literal["computer", "mobile_device"]

# Event → (inventory, whether it can mean "unmanaged" or "left a group": re-check at once).
EVENTS: dict[str, tuple[DeviceKind, bool]] = {
    "ComputerAdded": ("computer", False),
    "ComputerCheckIn": ("computer", False),
    "ComputerInventoryCompleted": ("computer", True),
    "MobileDeviceEnrolled": ("mobile_device", False),
    "MobileDeviceUnEnrolled": ("mobile_device", True),
    "MobileDeviceInventoryCompleted": ("mobile_device", True),
    "SmartGroupComputerMembershipChange": ("computer", True),
    "SmartGroupMobileDeviceMembershipChange": ("mobile_device", True),
}


class MalformedWebhook(ValueError):
    """The body is not a Jamf webhook; the message says why (never echoes the body)."""


class WebhookHeader(msgspec.Struct, frozen=True):
    webhookEvent: str
    id: int | None = None
    name: str | None = None
    eventTimestamp: int | None = None


class Webhook(msgspec.Struct, frozen=True):
    webhook: WebhookHeader
    event: dict[str, Any] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Named:
    """The devices one webhook names, and what to do about them."""

    event: str
    kind: DeviceKind
    recheck: bool
    identities: tuple[str, ...]  # serial numbers and UDIDs, as Jamf wrote them
    ids: tuple[str, ...]  # Jamf ids (smart group events) still to be resolved


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and safe_value(value) else None


def _identities(device: object) -> list[str]:
    if not isinstance(device, dict):
        return []
    found = (_text(device.get("serialNumber")), _text(device.get("udid")))
    return [value for value in found if value is not None]


def _ids(values: object) -> list[str]:
    if not isinstance(values, list):
        return []
    return [str(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]


def parse(body: bytes) -> Named | None:
    """The devices named by a webhook body; ``None`` for an event acmegate does not use."""
    try:
        webhook = msgspec.json.decode(body, type=Webhook)
    except msgspec.ValidationError as exc:
        raise MalformedWebhook(f"not a Jamf webhook: {exc}") from None
    except msgspec.DecodeError:
        raise MalformedWebhook("not JSON") from None
    name = webhook.webhook.webhookEvent
    if name not in EVENTS:
        return None
    kind, recheck = EVENTS[name]
    event = webhook.event
    identities: list[str] = []
    ids: list[str] = []
    if name.startswith("SmartGroup"):
        for key in ("groupAddedDevices", "groupRemovedDevices"):
            devices = event.get(key)
            for device in devices if isinstance(devices, list) else []:
                identities += _identities(device)
        ids = _ids(event.get("groupAddedDevicesIds")) + _ids(event.get("groupRemovedDevicesIds"))
    else:
        nested = event.get("computer")
        identities = _identities(nested if isinstance(nested, dict) else event)
    if len(identities) + len(ids) > MAX_DEVICES:
        raise MalformedWebhook(f"names more than {MAX_DEVICES} devices")
    return Named(name, kind, recheck, tuple(dict.fromkeys(identities)), tuple(dict.fromkeys(ids)))
