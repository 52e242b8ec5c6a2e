"""``acmegate signal-source validate`` and ``acmegate lookup validate`` (the guide's "Validate"
and "Validate Configuration").

Both read the configuration, build the one signal source they need, ask it, and close it.
Exit codes (cli/errors.py): 0 OK, 1 the check failed (what failed is printed), 2 bad usage or
configuration. No secret is ever printed: the messages come from the source, which names
hosts, statuses and Jamf's error codes only.
"""

from __future__ import annotations

import argparse
import ssl
from typing import Any

from acmegate.cli.errors import EXIT_FAILED, CliError, load, run_async
from acmegate.common import logging as acmegate_logging


def _quiet_logs() -> None:
    # The answer goes to stdout; only warnings (to stderr) may accompany it.
    acmegate_logging.configure("warning", json=False)


def cmd_signal_source_validate(args: argparse.Namespace) -> int:
    from acmegate.policy.sources import InventoryError, UnsupportedSource, build_source

    config = load(args.config)
    _quiet_logs()
    found = next((s for s in config.signal_sources if s.name == args.name), None)
    if found is None:
        known = ", ".join(s.name for s in config.signal_sources) or "none"
        raise CliError(f"no signal source named {args.name!r} (configured: {known})")
    try:
        source = build_source(found)
    except (InventoryError, UnsupportedSource, OSError, ssl.SSLError) as exc:
        print(f"signal source {args.name!r}: FAILED: {exc}")
        return EXIT_FAILED

    async def check() -> Any:
        try:
            return await source.validate()
        finally:
            await source.close()

    report = run_async(check())
    if report is None:  # interrupted
        return EXIT_FAILED
    if report.ok:
        detail = report.detail if report.detail.startswith("OK") else f"OK: {report.detail}"
        print(f"signal source {args.name!r}: {detail}")
        return 0
    print(f"signal source {args.name!r}: FAILED: {report.detail}")
    return EXIT_FAILED


def cmd_lookup_validate(args: argparse.Namespace) -> int:
    from acmegate.policy.validation import validate_lookup

    config = load(args.config)
    _quiet_logs()
    try:
        report = run_async(validate_lookup(config, args.name, args.identity))
    except ValueError as exc:
        known = ", ".join(p.name for p in config.lookup_policies) or "none"
        raise CliError(f"{exc} (configured: {known})") from exc
    if report is None:
        return EXIT_FAILED
    print(report.message)
    print(f"  lookup policy: {report.lookup_policy} (signal source {report.signal_source!r})")
    print(f"  identity: {report.identity}")
    if report.reason:
        print(f"  reason: {report.reason}")
    if report.managed is not None:
        print(f"  managed: {'yes' if report.managed else 'no'}")
    if report.attributes:
        print("  attributes:")
        for name, value in sorted(report.attributes.items()):
            print(f"    {name}: {value}")
    if report.managed is not None:
        groups = ", ".join(report.groups) if report.groups else "(none of the configured ones)"
        print(f"  groups: {groups}")
    return 0 if report.ok else EXIT_FAILED


def register(commands: Any) -> None:
    source = commands.add_parser("signal-source", help="signal sources (Jamf Pro, inventory)")
    source_commands = source.add_subparsers(dest="signal_source_command", required=True)
    p = source_commands.add_parser(
        "validate", help="check the connection and credentials (the guide's Validate)"
    )
    p.add_argument("name", help="the signal source's name in the configuration")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=cmd_signal_source_validate)

    lookup = commands.add_parser("lookup", help="lookup policies (security signal sources)")
    lookup_commands = lookup.add_subparsers(dest="lookup_command", required=True)
    p = lookup_commands.add_parser(
        "validate", help="look a device up as the policy would (Validate Configuration)"
    )
    p.add_argument("name", help="the lookup policy's name in the configuration")
    p.add_argument("--identity", required=True, help="a device serial number (or UDID)")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=cmd_lookup_validate)
