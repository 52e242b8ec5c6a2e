"""``acmegate ca init`` and ``acmegate ca import`` (the guide's "Creating an Intermediate CA")."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acmegate.cli.errors import CliError, env_secret


def _subject(pairs: Sequence[str]) -> list[tuple[str, str]]:
    result = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise CliError(f"--subject expects NAME=VALUE, got {pair!r}")
        result.append((name, value))
    return result


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from exc


def cmd_ca_init(args: argparse.Namespace) -> int:
    from acmegate.signer.ca_init import CaSetupError, ExistingRoot, init_ca

    passphrase = env_secret(args.passphrase_env, "the CA key passphrase")
    root = None
    if args.root_cert or args.root_key:
        if not (args.root_cert and args.root_key):
            raise CliError("--root-cert and --root-key go together")
        root = ExistingRoot(
            _read(args.root_cert, "root certificate"),
            _read(args.root_key, "root key"),
            os.environ.get(args.root_key_password_env) if args.root_key_password_env else None,
        )
    try:
        files = init_ca(
            args.out,
            name=args.name,
            common_name=args.common_name,
            subject=_subject(args.subject),
            key_type=args.key_type,
            hash=args.hash,
            root_validity_years=args.root_validity_years,
            intermediate_validity_years=args.validity_years,
            passphrase=passphrase,
            root=root,
            passphrase_env=args.passphrase_env,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    print(f"created {files.certificate} and {files.key}")
    print("add this to your configuration:\n")
    print(files.config_yaml)
    return 0


def cmd_ca_import(args: argparse.Namespace) -> int:
    from acmegate.signer.ca_init import CaSetupError, import_ca

    passphrase = env_secret(args.passphrase_env, "the CA key passphrase")
    key_password = os.environ.get(args.key_password_env) if args.key_password_env else None
    try:
        files = import_ca(
            args.out,
            name=args.name,
            certificate_pem=_read(args.certificate, "certificate"),
            key_pem=_read(args.key, "key"),
            key_password=key_password,
            chain_pems=[_read(p, "chain certificate") for p in args.chain],
            passphrase=passphrase,
            passphrase_env=args.passphrase_env,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    print(f"imported {files.certificate} and {files.key}")
    print("add this to your configuration:\n")
    print(files.config_yaml)
    return 0


def register(commands: Any) -> None:
    ca = commands.add_parser("ca", help="certificate authorities")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    p = ca_commands.add_parser("init", help="create an issuing CA (and a root unless given)")
    p.add_argument("--out", required=True, help="directory for the certificates and keys")
    p.add_argument("--name", required=True, help="the CA's name in the configuration")
    p.add_argument("--common-name", required=True)
    p.add_argument("--subject", action="append", default=[], help="extra RDN, e.g. O=Example")
    p.add_argument(
        "--key-type",
        default="ec-p384",
        choices=["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"],
    )
    p.add_argument("--hash", default="sha384", choices=["sha256", "sha384"])
    p.add_argument("--root-validity-years", type=int, default=20)
    p.add_argument("--validity-years", type=int, default=10)
    p.add_argument("--root-cert", help="put the new CA under this existing root (PEM)")
    p.add_argument("--root-key", help="the existing root's key (PEM)")
    p.add_argument("--root-key-password-env", help="env var holding the root key's password")
    p.add_argument("--passphrase-env", default="ACMEGATE_CA_PASSPHRASE")
    p.set_defaults(func=cmd_ca_init)

    p = ca_commands.add_parser("import", help="import an existing issuing CA")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--certificate", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--key-password-env", help="env var holding the key's current password")
    p.add_argument("--chain", action="append", default=[], help="issuer certificates (PEM)")
    p.add_argument("--passphrase-env", default="ACMEGATE_CA_PASSPHRASE")
    p.set_defaults(func=cmd_ca_import)
