"""``acmegate ca``: the guide's "Creating an Intermediate CA".

``init`` (a root and an issuing CA, or an issuing CA under an existing root), ``import`` (an
issuing CA made elsewhere), ``csr`` + ``install`` (an issuing CA signed by an enterprise root
such as AD CS), ``list`` (each configured CA: chain, validity, key, key storage). The issuing
CA's key is an encrypted file, or with ``--pkcs11-module``/``--token-label``/``--key-label``
a non-extractable key generated inside a PKCS#11 token (PIN from ``ACMEGATE_PKCS11_PIN``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acmegate.cli.errors import EXIT_FAILED, CliError, env_secret, load

if TYPE_CHECKING:
    from acmegate.signer.setup.files import TokenKey
    from acmegate.signer.setup.report import CaReport

KEY_TYPES = ["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]

ROOT_KEY_ONLINE = """\
NOTE: the root CA's key {root_key} is online, next to the issuing CA's key. acmegate never
uses it: move it offline (copy it, with its passphrase kept apart, to an encrypted medium in a
safe or an offline machine, then delete it here). You need it again only to make another
issuing CA under this root (`acmegate ca init --root-cert {out}/root.pem --root-key ...`) or to
sign a renewal of this one. Keep {out}/root.pem: it is the trust anchor that devices and RADIUS
servers install."""


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


def _token(args: argparse.Namespace) -> TokenKey | None:
    """The PKCS#11 key the options name, or None for a file key."""
    from acmegate.signer.setup.files import TokenKey

    given = [args.pkcs11_module, args.token_label, args.key_label]
    if not any(given):
        return None
    if not all(given):
        raise CliError("--pkcs11-module, --token-label and --key-label go together")
    pin = env_secret(args.pin_env, "the PKCS#11 user PIN")
    return TokenKey(args.pkcs11_module, args.token_label, args.key_label, pin, args.pin_env)


def _key_protection(args: argparse.Namespace) -> tuple[TokenKey | None, str | None]:
    """(the PKCS#11 token options, or None) and the file key's passphrase when not a token."""
    token = _token(args)
    if token is not None:
        return token, None
    return None, env_secret(args.passphrase_env, "the CA key passphrase")


def _print_entry(what: str, config_yaml: str) -> None:
    print(what)
    print("add this to your configuration:\n")
    print(config_yaml)


def cmd_ca_init(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.create import ExistingRoot, init_ca
    from acmegate.signer.setup.files import CaSetupError

    token = _token(args)
    root = None
    if args.root_cert or args.root_key:
        if not (args.root_cert and args.root_key):
            raise CliError("--root-cert and --root-key go together")
        root = ExistingRoot(
            _read(args.root_cert, "root certificate"),
            _read(args.root_key, "root key"),
            os.environ.get(args.root_key_password_env) if args.root_key_password_env else None,
        )
    # A passphrase protects the new root's key and a file key; a token CA under an
    # existing root needs none.
    if root is None or token is None:
        passphrase = env_secret(args.passphrase_env, "the CA key passphrase")
    else:
        passphrase = ""
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
            token=token,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    key = str(files.key) if files.key is not None else token.describe() if token else "?"
    _print_entry(f"created {files.certificate} and {key}", files.config_yaml)
    if files.root_key is not None:
        # On stderr: stdout stays the configuration entry, for pasting or piping.
        print(ROOT_KEY_ONLINE.format(root_key=files.root_key, out=args.out), file=sys.stderr)
    return 0


def cmd_ca_import(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.create import import_ca
    from acmegate.signer.setup.files import CaSetupError

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
    _print_entry(f"imported {files.certificate} and {files.key}", files.config_yaml)
    return 0


def cmd_ca_csr(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.csr import create_csr
    from acmegate.signer.setup.files import CaSetupError

    token, passphrase = _key_protection(args)
    try:
        files = create_csr(
            args.out,
            name=args.name,
            common_name=args.common_name,
            subject=_subject(args.subject),
            key_type=args.key_type,
            hash=args.hash,
            passphrase=passphrase,
            token=token,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    print(f"created the key ({files.key_description}) and the request {files.csr}")
    print(
        "have your root CA sign the request as a CA certificate (basicConstraints CA:TRUE, "
        "pathlen 0; keyUsage keyCertSign, cRLSign, digitalSignature), then:\n"
        f"  acmegate ca install --out {args.out} --name {args.name} "
        "--certificate SIGNED.pem --chain ROOT.pem"
        + (
            f" --pkcs11-module {args.pkcs11_module} --token-label {args.token_label} "
            f"--key-label {args.key_label}"
            if token
            else ""
        )
    )
    return 0


def cmd_ca_install(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.csr import install_ca
    from acmegate.signer.setup.files import CaSetupError

    token, passphrase = _key_protection(args)
    try:
        files = install_ca(
            args.out,
            name=args.name,
            certificate_pem=_read(args.certificate, "signed certificate"),
            chain_pems=[_read(p, "chain certificate") for p in args.chain],
            passphrase=passphrase,
            token=token,
            passphrase_env=args.passphrase_env,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    _print_entry(f"installed {files.certificate} (chain {files.chain[0]})", files.config_yaml)
    return 0


def _report_lines(report: CaReport) -> list[str]:
    title = report.name + (f" ({report.description})" if report.description else "")
    lines = [title]
    if report.chain:
        lines.append(f"  chain:     {' → '.join(report.chain)}")
    if report.not_before and report.not_after:
        lines.append(
            f"  validity:  {report.not_before:%Y-%m-%d %H:%M} → "
            f"{report.not_after:%Y-%m-%d %H:%M} UTC"
        )
    if report.key_algorithm:
        lines.append(f"  key:       {report.key_algorithm}")
    lines.append(f"  storage:   {report.key_storage}")
    match report.key_matches:
        case True:
            lines.append("  key check: the key matches the certificate")
        case False:
            lines.append("  key check: THE KEY DOES NOT MATCH THE CERTIFICATE")
        case None:
            lines.append("  key check: not done")
    if report.crl_url:
        lines.append(f"  CRL:       {report.crl_url}")
    if report.ocsp_url:
        lines.append(f"  OCSP:      {report.ocsp_url}")
    lines.extend(f"  problem:   {problem}" for problem in report.problems)
    return lines


def cmd_ca_list(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.report import report_authorities

    config = load(args.config)
    reports = report_authorities(config, check_keys=not args.no_key_check)
    if args.json:
        print(json.dumps([_report_json(r) for r in reports], indent=2))
    elif not reports:
        print("no certificate authorities are configured")
    else:
        print("\n\n".join("\n".join(_report_lines(r)) for r in reports))
    failed = any(r.problems or r.key_matches is False for r in reports)
    return EXIT_FAILED if failed else 0


def _report_json(report: CaReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "description": report.description,
        "chain": report.chain,
        "not_before": report.not_before.isoformat() if report.not_before else None,
        "not_after": report.not_after.isoformat() if report.not_after else None,
        "key_algorithm": report.key_algorithm,
        "key_storage": report.key_storage,
        "key_matches": report.key_matches,
        "crl_url": report.crl_url,
        "ocsp_url": report.ocsp_url,
        "problems": report.problems,
    }


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passphrase-env", default="ACMEGATE_CA_PASSPHRASE")
    p.add_argument("--pkcs11-module", help="keep the CA key in a PKCS#11 token: the module (.so)")
    p.add_argument("--token-label", help="the token's label")
    p.add_argument("--key-label", help="the key pair's label in the token")
    p.add_argument("--pin-env", default="ACMEGATE_PKCS11_PIN", help="env var with the user PIN")


def register(commands: Any) -> None:
    ca = commands.add_parser("ca", help="certificate authorities")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    p = ca_commands.add_parser("init", help="create an issuing CA (and a root unless given)")
    p.add_argument("--out", required=True, help="directory for the certificates and keys")
    p.add_argument("--name", required=True, help="the CA's name in the configuration")
    p.add_argument("--common-name", required=True)
    p.add_argument("--subject", action="append", default=[], help="extra RDN, e.g. O=Example")
    p.add_argument("--key-type", default="ec-p384", choices=KEY_TYPES)
    p.add_argument("--hash", default="sha384", choices=["sha256", "sha384"])
    p.add_argument("--root-validity-years", type=int, default=20)
    p.add_argument("--validity-years", type=int, default=10)
    p.add_argument("--root-cert", help="put the new CA under this existing root (PEM)")
    p.add_argument("--root-key", help="the existing root's key (PEM)")
    p.add_argument("--root-key-password-env", help="env var holding the root key's password")
    _key_options(p)
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

    p = ca_commands.add_parser(
        "csr", help="create an issuing CA key and a CSR for an enterprise root to sign"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--common-name", required=True)
    p.add_argument("--subject", action="append", default=[], help="extra RDN, e.g. O=Example")
    p.add_argument("--key-type", default="ec-p384", choices=KEY_TYPES)
    p.add_argument("--hash", default="sha384", choices=["sha256", "sha384"])
    _key_options(p)
    p.set_defaults(func=cmd_ca_csr)

    p = ca_commands.add_parser("install", help="install the certificate the root signed")
    p.add_argument("--out", required=True, help="the directory `ca csr` wrote to")
    p.add_argument("--name", required=True)
    p.add_argument("--certificate", required=True, help="the signed CA certificate (PEM)")
    p.add_argument(
        "--chain", action="append", required=True, help="its issuer(s) up to the root (PEM)"
    )
    _key_options(p)
    p.set_defaults(func=cmd_ca_install)

    p = ca_commands.add_parser("list", help="show the configured CAs and check their keys")
    p.add_argument("--config", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-key-check", action="store_true", help="do not open the keys")
    p.set_defaults(func=cmd_ca_list)
