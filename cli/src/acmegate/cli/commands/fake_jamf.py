"""``acmegate fake-jamf``: serve the fake Jamf Pro server of the test kit (demos, manual tests).

The inventory file is described in docs/jamf.md; faults are set at run time through
``POST /_fake/faults`` (see acmegate.testkit.fakejamf.control_routes).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from acmegate.cli.errors import CliError, run_async


def cmd_fake_jamf(args: argparse.Namespace) -> int:
    from acmegate.testkit.fakejamf import FakeJamf, InventoryError, load_inventory

    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as exc:
        raise CliError(f"inventory: {exc}") from exc

    async def serve() -> None:
        fake = FakeJamf(inventory)
        try:
            url = await fake.start(args.host, args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
        print(
            f"fake Jamf Pro {inventory.version} listening on {url} "
            f"({len(inventory.computers)} computers, {len(inventory.mobile_devices)} mobile "
            f"devices, {len(inventory.api_clients)} API clients, {len(inventory.users)} users); "
            f"controls under {url}/_fake/",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await fake.stop()

    run_async(serve())
    return 0


def register(commands: Any) -> None:
    p = commands.add_parser("fake-jamf", help="serve a fake Jamf Pro API (tests and demos)")
    p.add_argument("--inventory", required=True, help="YAML inventory (docs/jamf.md)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9090)
    p.set_defaults(func=cmd_fake_jamf)
