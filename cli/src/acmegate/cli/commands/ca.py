"""``acmegate ca``: the guide's "Creating an Intermediate CA".

``init`` (a root and an issuing CA, or an issuing CA under an existing root), ``import`` (an
issuing CA made elsewhere), ``csr`` + ``install`` (an issuing CA signed by an enterprise root
such as AD CS), ``list`` (each configured CA: chain, validity, key, key storage). The issuing
CA's key is an encrypted file, or with ``--pkcs11-module``/``--token-label``/``--key-label``
a non-extractable key generated inside a PKCS#11 token (PIN from ``ACMEGATE_PKCS11_PIN``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acmegate.cli.errors import EXIT_FAILED, CliError, load
from acmegate.common.config import Secret, SecretUnavailable

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


def _source(env: str, file: str | None) -> Secret:
    """Where a secret comes from: ``--…-file`` if given, else the ``--…-env`` variable."""
    return Secret(file=str(Path(file).resolve())) if file else Secret(env=env)


def _reveal(source: Secret, what: str, *, option: str, confirm: bool = False) -> str:
    """The secret's value; asked for on the terminal when its variable is unset (twice for a
    new one); otherwise a CliError naming what is missing and the other ways to give it."""
    try:
        return source.reveal()
    except SecretUnavailable as exc:
        if source.env is None or not sys.stdin.isatty():
            raise CliError(
                f"{what}: {exc}; set it, give {option}-file FILE, or run the command in a "
                "terminal to be asked"
            ) from None
    value = getpass.getpass(f"{what[:1].upper()}{what[1:]}: ")
    if confirm and getpass.getpass("Repeat it: ") != value:
        raise CliError("the passphrases differ")
    if not value:
        raise CliError(f"no {what} given")
    print(
        f"(the configuration entry reads it from ${source.env} where the signer runs; "
        f"or change it to {{file: PATH}})",
        file=sys.stderr,
    )
    return value


def _token(args: argparse.Namespace) -> TokenKey | None:
    """The PKCS#11 key the options name, or None for a file key."""
    from acmegate.signer.setup.files import TokenKey

    given = [args.pkcs11_module, args.token_label, args.key_label]
    if not any(given):
        return None
    if not all(given):
        raise CliError("--pkcs11-module, --token-label and --key-label go together")
    source = _source(args.pin_env, args.pin_file)
    pin = _reveal(source, f"user PIN of token {args.token_label!r}", option="--pin")
    return TokenKey(args.pkcs11_module, args.token_label, args.key_label, pin, source)


def _passphrase(args: argparse.Namespace, *, new: bool) -> tuple[str, Secret]:
    """The CA key passphrase (a new one is asked for twice) and where the entry reads it."""
    source = _source(args.passphrase_env, args.passphrase_file)
    what = (
        "passphrase for the new CA keys (12 characters or more)"
        if new
        else (f"passphrase of {Path(args.out) / args.name}.key")
    )
    return _reveal(source, what, option="--passphrase", confirm=new), source


def _key_protection(args: argparse.Namespace, *, new: bool) -> tuple[TokenKey | None, str | None]:
    """(the PKCS#11 token options, or None) and the file key's passphrase when not a token."""
    token = _token(args)
    if token is not None:
        return token, None
    return None, _passphrase(args, new=new)[0]


def _print_entry(what: str, config_yaml: str) -> None:
    print(what)
    print("add this to your configuration:\n")
    print(config_yaml)


def _password(env: str | None, file: str | None, what: str) -> str | None:
    """An optional password (of a key to import or of an existing root): env or file."""
    if file:
        return _reveal(Secret(file=file), what, option="--key-password")
    return os.environ.get(env) if env else None


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
            _password(args.root_key_password_env, args.root_key_password_file, "root key password"),
        )
    # A passphrase protects the new root's key and a file key; a token CA under an
    # existing root needs none.
    source = _source(args.passphrase_env, args.passphrase_file)
    passphrase = _passphrase(args, new=True)[0] if root is None or token is None else ""
    try:
        files = init_ca(
            args.out,
            name=args.name,
            common_name=args.common_name,
            subject=_subject(args.subject),
            key_type=args.key_type,
            hash=None if args.hash == "auto" else args.hash,
            root_validity_years=args.root_validity_years,
            intermediate_validity_years=args.validity_years,
            passphrase=passphrase,
            root=root,
            root_common_name=args.root_common_name,
            passphrase_source=source,
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

    certificate = _read(args.certificate, "certificate")
    key = _read(args.key, "key")
    chain = [_read(p, "chain certificate") for p in args.chain]
    key_password = _password(args.key_password_env, args.key_password_file, "key password")
    passphrase, source = _passphrase(args, new=True)
    try:
        files = import_ca(
            args.out,
            name=args.name,
            certificate_pem=certificate,
            key_pem=key,
            key_password=key_password,
            chain_pems=chain,
            passphrase=passphrase,
            passphrase_source=source,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    _print_entry(f"imported {files.certificate} and {files.key}", files.config_yaml)
    return 0


def cmd_ca_csr(args: argparse.Namespace) -> int:
    from acmegate.signer.setup.csr import create_csr
    from acmegate.signer.setup.files import CaSetupError

    token, passphrase = _key_protection(args, new=True)
    try:
        files = create_csr(
            args.out,
            name=args.name,
            common_name=args.common_name,
            subject=_subject(args.subject),
            key_type=args.key_type,
            hash=None if args.hash == "auto" else args.hash,
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

    certificate = _read(args.certificate, "signed certificate")
    chain = [_read(p, "chain certificate") for p in args.chain]
    token, passphrase = _key_protection(args, new=False)
    try:
        files = install_ca(
            args.out,
            name=args.name,
            certificate_pem=certificate,
            chain_pems=chain,
            passphrase=passphrase,
            token=token,
            passphrase_source=_source(args.passphrase_env, args.passphrase_file),
            force=args.force,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    for path in files.replaced:
        print(f"replaced {path}")
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


def _passphrase_options(p: argparse.ArgumentParser, of: str) -> None:
    p.add_argument(
        "--passphrase-env",
        default="ACMEGATE_CA_PASSPHRASE",
        metavar="VAR",
        help=f"environment variable with the passphrase {of}; asked for on the terminal when "
        "unset (default: %(default)s)",
    )
    p.add_argument(
        "--passphrase-file", metavar="FILE", help="read the passphrase from this file instead"
    )


def _key_options(p: argparse.ArgumentParser) -> None:
    _passphrase_options(p, "of the CA key file")
    p.add_argument(
        "--pkcs11-module",
        metavar="SO",
        help="keep the CA key in a PKCS#11 token: the vendor's module, e.g. "
        "/usr/lib/softhsm/libsofthsm2.so",
    )
    p.add_argument("--token-label", help="the token's label (with --pkcs11-module)")
    p.add_argument("--key-label", help="the key pair's label in the token (with --pkcs11-module)")
    p.add_argument(
        "--pin-env",
        default="ACMEGATE_PKCS11_PIN",
        metavar="VAR",
        help="environment variable with the token's user PIN; asked for on the terminal when "
        "unset (default: %(default)s)",
    )
    p.add_argument("--pin-file", metavar="FILE", help="read the user PIN from this file instead")


def _new_key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--key-type",
        default="ec-p384",
        choices=KEY_TYPES,
        help="the new CA key (default: %(default)s)",
    )
    p.add_argument(
        "--hash",
        default="auto",
        choices=["auto", "sha256", "sha384"],
        help="signature hash of the certificates (and CSR) this command signs; auto: sha384 "
        "for ec-p384, sha256 otherwise. Leaf certificates follow their template, CRLs and "
        "OCSP responses the key (default: %(default)s)",
    )


def _new_ca_options(p: argparse.ArgumentParser, subject: str) -> None:
    """What ``init`` and ``csr`` ask of a new issuing CA: its files, name and key."""
    _naming_options(p)
    p.add_argument("--common-name", required=True, help="the issuing CA's CN (1 to 64 characters)")
    p.add_argument(
        "--subject",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{subject}, e.g. O=Example (repeatable)",
    )
    _new_key_options(p)


def _naming_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the files (created 0700)"
    )
    p.add_argument(
        "--name",
        required=True,
        help="the CA's name in the configuration; names its files <name>.pem, <name>.key",
    )


def register(commands: Any) -> None:
    ca = commands.add_parser("ca", help="certificate authorities")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    p = ca_commands.add_parser("init", help="create an issuing CA (and a root unless given)")
    _new_ca_options(p, "an extra attribute before the CN in both subjects")
    p.add_argument(
        "--validity-years",
        type=int,
        default=10,
        help="the issuing CA's validity, capped at its root's (default: %(default)s)",
    )
    p.add_argument(
        "--root-validity-years",
        type=int,
        default=20,
        help="the new root's validity (default: %(default)s)",
    )
    p.add_argument(
        "--root-common-name",
        help="the new root's CN (default: the issuing CA's CN followed by ' Root')",
    )
    p.add_argument(
        "--root-cert", metavar="PEM", help="put the new CA under this existing root instead"
    )
    p.add_argument("--root-key", metavar="PEM", help="the existing root's private key")
    p.add_argument(
        "--root-key-password-env", metavar="VAR", help="env var with the root key's password"
    )
    p.add_argument(
        "--root-key-password-file", metavar="FILE", help="file with the root key's password"
    )
    _key_options(p)
    p.set_defaults(func=cmd_ca_init)

    p = ca_commands.add_parser("import", help="import an existing issuing CA")
    _naming_options(p)
    p.add_argument("--certificate", required=True, help="the issuing CA's certificate (PEM or DER)")
    p.add_argument(
        "--key", required=True, help="its private key (PEM or DER), re-encrypted on import"
    )
    p.add_argument(
        "--key-password-env", metavar="VAR", help="env var with the key's current password"
    )
    p.add_argument(
        "--key-password-file", metavar="FILE", help="file with the key's current password"
    )
    p.add_argument(
        "--chain",
        action="append",
        default=[],
        metavar="CERT",
        help="the CA's issuer, then its issuers up to the root (PEM or DER; repeatable)",
    )
    _passphrase_options(p, "the key is re-encrypted with")
    p.set_defaults(func=cmd_ca_import)

    p = ca_commands.add_parser(
        "csr", help="create an issuing CA key and a CSR for an enterprise root to sign"
    )
    _new_ca_options(p, "an extra attribute before the CN")
    _key_options(p)
    p.set_defaults(func=cmd_ca_csr)

    p = ca_commands.add_parser("install", help="install the certificate the root signed")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder `ca csr` wrote to")
    p.add_argument("--name", required=True, help="the name given to `ca csr`")
    p.add_argument("--certificate", required=True, help="the signed CA certificate (PEM or DER)")
    p.add_argument(
        "--chain",
        action="append",
        required=True,
        metavar="CERT",
        help="its issuer, then its issuers up to the root (PEM or DER; repeatable)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an installed certificate (a renewal for the same key)",
    )
    _key_options(p)
    p.set_defaults(func=cmd_ca_install)

    p = ca_commands.add_parser("list", help="show the configured CAs and check their keys")
    p.add_argument("--config", required=True, help="the gateway's configuration file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--no-key-check",
        action="store_true",
        help="do not open the keys (no passphrase or PIN needed)",
    )
    p.set_defaults(func=cmd_ca_list)
