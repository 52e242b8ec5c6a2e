"""Device management platforms: ``acmegate profile``, ``acmegate platform token …`` and
``acmegate platform publish`` (the profile into Jamf Pro, docs/profiles.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acmegate.cli.database import state_pool
from acmegate.cli.errors import EXIT_FAILED, CliError, load, run_async
from acmegate.common import logging as acmegate_logging
from acmegate.common.clock import SystemClock
from acmegate.common.errors import AcmeError

if TYPE_CHECKING:
    from acmegate.frontend.profiles import Profile


async def _build_profile(config: Any, name: str, *, signed: bool) -> Profile:
    """The platform's profile (``signed``: with its signing certificate, when configured)."""
    from acmegate.frontend.linker import Linker
    from acmegate.frontend.platforms import live_token, platform_config
    from acmegate.frontend.profiles import build_profile, load_profile_signer

    platform = platform_config(config, name)
    token = None
    if platform.profile.client_identifier == "token":
        async with state_pool(config, ["frontend"]) as pool:
            token = (await live_token(pool, config, name, SystemClock().now())).token
    signer = None
    settings = platform.profile
    if signed and settings.signing_certificate and settings.signing_key:
        signer = load_profile_signer(settings.signing_certificate, settings.signing_key.reveal())
    return build_profile(
        platform,
        directory_url=Linker(config.server.base_url).directory,
        token=token,
        signer=signer,
    )


def cmd_profile(args: argparse.Namespace) -> int:
    from acmegate.frontend.linker import Linker

    config = load(args.config)
    try:
        profile = run_async(_build_profile(config, args.name, signed=True))
    except AcmeError as exc:
        raise CliError(exc.detail) from exc
    if args.out:
        Path(args.out).write_bytes(profile.data)
    else:
        sys.stdout.buffer.write(profile.data)
        sys.stdout.flush()
    print(
        f"{'signed ' if profile.signed else ''}profile for platform {args.name!r}"
        + (f" written to {args.out}" if args.out else "")
        + "\nor, in Jamf Pro's own ACME Certificate payload, enter:",
        file=sys.stderr,
    )
    for label, value in profile.jamf_form:
        print(f"  {label + ':':20} {value}", file=sys.stderr)
    directory = Linker(config.server.base_url).directory
    if directory.startswith("http://"):
        bar = "!" * 78
        print(
            f"\n{bar}\n!! WARNING: the profile's DirectoryURL is {directory}"
            "\n!! Apple devices refuse an ACME directory over plain http: serve it over https"
            "\n!! (server.tls, or server.external_url behind a TLS proxy). Only simulated"
            f"\n!! devices enroll with this profile.\n{bar}",
            file=sys.stderr,
        )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from acmegate.frontend.db.platforms import list_tokens
    from acmegate.frontend.platforms import live_token, platform_config, revoke_tokens, rotate_token

    config = load(args.config)

    async def main() -> list[str]:
        platform_config(config, args.name)
        now = SystemClock().now()
        async with state_pool(config, ["frontend"]) as pool:
            if args.action == "rotate":
                token = await rotate_token(pool, config, args.name, now)
                return [
                    f"new token for {args.name}: {token.token}",
                    "previous tokens are revoked; download and push the profile again",
                ]
            if args.action == "revoke":
                count = await revoke_tokens(pool, config, args.name, now)
                return [f"revoked {count} token(s) of {args.name}"]
            if args.action == "list":
                return [
                    f"{t.platform}  {t.token}  created {t.created_at:%Y-%m-%d %H:%M}Z  "
                    + (f"revoked {t.revoked_at:%Y-%m-%d %H:%M}Z" if t.revoked_at else "live")
                    for t in await list_tokens(pool, args.name)
                ]
            token = await live_token(pool, config, args.name, now)
            return [token.token]

    try:
        lines = run_async(main())
    except AcmeError as exc:
        raise CliError(exc.detail) from exc
    print("\n".join(lines))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from acmegate.common.config.model import JamfSourceConfig
    from acmegate.frontend.platforms import platform_config
    from acmegate.policy.sources.jamf.errors import JamfError
    from acmegate.policy.sources.jamf.profiles import DesiredProfile, ProfileKind, ProfilePublisher

    config = load(args.config)
    # The report goes to stdout; only warnings (to stderr) may accompany it.
    acmegate_logging.configure("warning", json=False)
    try:
        platform = platform_config(config, args.name)
    except AcmeError as exc:
        raise CliError(exc.detail) from exc
    publish = platform.publish
    if publish is None:
        raise CliError(f"platform {args.name!r} has no `publish` section (docs/profiles.md)")
    source = next(
        (
            s
            for s in config.signal_sources
            if isinstance(s, JamfSourceConfig) and s.name == publish.source
        ),
        None,
    )
    if source is None:
        raise CliError(f"publish.source: no jamf_pro signal source named {publish.source!r}")
    profile_name = publish.name or f"acmegate: {platform.name}"
    wanted: list[tuple[ProfileKind, list[str]]] = []
    if publish.computer_groups is not None:
        wanted.append(("osx", publish.computer_groups))
    if publish.mobile_device_groups is not None:
        wanted.append(("mobiledevice", publish.mobile_device_groups))

    async def main() -> list[Any]:
        # Unsigned: Jamf Pro signs the profiles it pushes with its own certificate.
        profile = await _build_profile(config, args.name, signed=False)
        publisher = ProfilePublisher.for_source(source)
        try:
            return [
                await publisher.publish(
                    DesiredProfile(
                        kind,
                        profile_name,
                        platform.description,
                        profile.data,
                        tuple(groups),
                    ),
                    dry_run=args.dry_run,
                )
                for kind, groups in wanted
            ]
        finally:
            await publisher.close()

    try:
        changes = run_async(main())
    except AcmeError as exc:
        raise CliError(exc.detail) from exc
    except JamfError as exc:
        print(f"publishing {args.name!r} to {source.url}: FAILED: {exc}")
        return EXIT_FAILED
    if changes is None:  # interrupted
        return EXIT_FAILED
    for change in changes:
        print(change.describe(args.dry_run))
        if args.dry_run:
            for line in change.diff:
                print(f"  {line}")
    return 0


def register(commands: Any) -> None:
    p = commands.add_parser(
        "profile", help="a device management platform's .mobileconfig (on stdout)"
    )
    p.add_argument("name", help="the platform's name in the configuration")
    p.add_argument("--config", required=True)
    p.add_argument("--out", help="write the profile to this file instead of stdout")
    p.set_defaults(func=cmd_profile)

    platform = commands.add_parser("platform", help="device management platforms")
    platform_commands = platform.add_subparsers(dest="platform_command", required=True)
    token = platform_commands.add_parser("token", help="a platform's enrollment token")
    token.add_argument("action", choices=["show", "rotate", "revoke", "list"])
    token.add_argument("name", help="the platform's name")
    token.add_argument("--config", required=True)
    token.set_defaults(func=cmd_token)
    publish = platform_commands.add_parser(
        "publish", help="create or update the platform's profile in Jamf Pro"
    )
    publish.add_argument("name", help="the platform's name")
    publish.add_argument("--config", required=True)
    publish.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )
    publish.set_defaults(func=cmd_publish)
