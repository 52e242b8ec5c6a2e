"""A faithful fake Jamf Pro server for tests and demos (docs/jamf.md §7, §8).

    fake = FakeJamf(load_inventory("inventory.yaml"))
    url = await fake.start()          # http://127.0.0.1:<free port>
    fake.faults.fail_next = 3         # the next three API requests answer 503
    fake.remove_device("C02XK1AAJGH5")
    assert fake.stats.max_connections <= 5
    await fake.stop()

``acmegate fake-jamf --inventory FILE`` serves one from the command line; docs/jamf.md
describes the inventory file.
"""

from acmegate.testkit.fakejamf.faults import CONNECTION_GUIDANCE, Faults, RequestRecord, Stats
from acmegate.testkit.fakejamf.inventory import (
    ALL_PRIVILEGES,
    ApiClient,
    Computer,
    Group,
    Groups,
    Inventory,
    InventoryError,
    MobileDevice,
    Named,
    User,
    load_inventory,
    parse_inventory,
)
from acmegate.testkit.fakejamf.server import FakeJamf
from acmegate.testkit.fakejamf.tokens import TokenEvent, TokenStore

__all__ = [
    "ALL_PRIVILEGES",
    "CONNECTION_GUIDANCE",
    "ApiClient",
    "Computer",
    "FakeJamf",
    "Faults",
    "Group",
    "Groups",
    "Inventory",
    "InventoryError",
    "MobileDevice",
    "Named",
    "RequestRecord",
    "Stats",
    "TokenEvent",
    "TokenStore",
    "User",
    "load_inventory",
    "parse_inventory",
]
