"""``acmegate simulate-device``: enroll a simulated Apple device (docs/apple-attestation.md §12)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import aiohttp

from acmegate.cli.errors import EXIT_FAILED, CliError, run_async


def cmd_simulate_device(args: argparse.Namespace) -> int:
    from acmegate.testkit.acme_session import AcmeProtocolError
    from acmegate.testkit.device import DeviceMode, format_result, save_credentials, simulate

    try:
        mode = DeviceMode(args.mode)
    except ValueError as exc:
        choices = ", ".join(m.value for m in DeviceMode)
        raise CliError(f"unknown --mode {args.mode!r}; one of {choices}") from exc
    try:
        result = run_async(
            simulate(
                args.directory,
                serial=args.serial,
                udid=args.udid,
                attestation_ca_dir=Path(args.attestation_ca),
                client_identifier=args.client_identifier,
                mode=mode,
                os=args.os,
            )
        )
    except aiohttp.ClientError as exc:
        raise CliError(f"cannot reach {args.directory}: {exc}") from exc
    except (AcmeProtocolError, TimeoutError) as exc:
        print(f"acmegate: the gateway broke the protocol or did not answer: {exc}")
        return EXIT_FAILED
    saved: dict[str, Path] = {}
    if result.ok and (args.key_out or args.cert_out):
        saved = {
            "key": Path(args.key_out or "device.key"),
            "certificate": Path(args.cert_out or "device.pem"),
        }
        try:
            save_credentials(result, key_out=saved["key"], cert_out=saved["certificate"])
        except OSError as exc:
            raise CliError(f"cannot write the device's key or certificate: {exc}") from exc
    print(format_result(result, saved=saved))
    return 0 if result.ok else EXIT_FAILED


def register(commands: Any) -> None:
    p = commands.add_parser("simulate-device", help="enroll a simulated Apple device")
    p.add_argument("--directory", required=True, help="the gateway's ACME directory URL")
    p.add_argument("--serial", required=True)
    p.add_argument("--udid")
    p.add_argument("--client-identifier", help="default: the serial")
    p.add_argument(
        "--attestation-ca",
        default="var/dev/attestation-ca",
        help="directory of the TEST attestation CA the gateway trusts",
    )
    p.add_argument("--mode", default="genuine", help="a negative mode, e.g. wrong-token-hash")
    p.add_argument("--os", default="macos", choices=["macos", "ios"])
    p.add_argument(
        "--key-out",
        metavar="FILE",
        help="write the device's private key here (PEM, 0600) once the certificate is issued; "
        "default with --cert-out: device.key",
    )
    p.add_argument(
        "--cert-out",
        metavar="FILE",
        help="write the certificate and its chain here (PEM, leaf first); "
        "default with --key-out: device.pem",
    )
    p.set_defaults(func=cmd_simulate_device)
