"""``acmegate cert`` and ``acmegate crl``: the certificate inventory and revocation.

``cert list`` searches issued certificates (by device serial, account, CA, status), ``cert
show`` prints one with its enrollment record (the guide's "completed" view: attested device
claims, the policies that matched, signal-source attributes), ``cert revoke`` revokes one
with a reason code, ``crl show`` prints (or saves) a CA's current CRL with each entry's
reason, and ``crl sync`` keeps a folder of CRLs current for relying parties that read CRLs
from disk (FreeRADIUS). They work on the database directly (this command is a composition
root, like ``acmegate run``), the embedded one of ``acmegate standalone`` included; the
signers publish a revocation in the CRL within ``pki.crl_check_interval`` and over OCSP at
once. ``crl sync --url`` needs no database: it downloads from the signer's PKI listener.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import asyncpg

from acmegate.cli.errors import EXIT_FAILED, CliError, load
from acmegate.common.vocabulary import CertificateStatus

if TYPE_CHECKING:
    from cryptography import x509

    from acmegate.common.config import Config
    from acmegate.signer.db.crls import StoredCrl

T = TypeVar("T")


def _with_pool(config: Config, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    from acmegate.cli.database import with_state_pool

    return with_state_pool(config, ["signer"], work)


def cmd_cert_list(args: argparse.Namespace) -> int:
    from acmegate.cli import certificates

    filters = {
        "device": args.device,
        "account": args.account,
        "ca": args.ca,
        "status": args.status,
        "limit": args.limit,
    }
    found = certificates.inventory(args).search({k: v for k, v in filters.items() if v})
    print(json.dumps(found, indent=2) if args.json else certificates.table(found))
    return 0


def cmd_cert_show(args: argparse.Namespace) -> int:
    from acmegate.cli import certificates

    certificate = certificates.inventory(args).show(args.serial)
    if args.json:
        print(json.dumps(certificate, indent=2))
    elif args.pem:
        print(certificate["chain_pem"], end="")
    else:
        print("\n".join(certificates.details(certificate)))
    return 0


def cmd_cert_revoke(args: argparse.Namespace) -> int:
    from acmegate.cli import certificates

    reason = certificates.revocation_reason(args.reason)
    result = certificates.inventory(args).revoke(args.serial, reason)
    print(json.dumps(result, indent=2) if args.json else certificates.revocation(result))
    return 0


def cmd_crl_show(args: argparse.Namespace) -> int:
    from cryptography import x509

    from acmegate.signer.db.crls import latest_crl

    config = load(args.config)
    if args.ca not in {ca.name for ca in config.certificate_authorities}:
        raise CliError(f"no certificate authority named {args.ca!r} is configured")
    crl = _with_pool(config, lambda pool: latest_crl(pool, args.ca))
    if crl is None:
        raise CliError(f"no CRL of {args.ca!r} yet: a running signer publishes it")
    if args.out:
        with open(args.out, "wb") as handle:
            handle.write(crl.der)
    parsed = x509.load_der_x509_crl(crl.der)
    print(f"CRL of {args.ca}: number {crl.number}, {crl.entries} revoked certificates")
    print(f"  thisUpdate: {crl.this_update:%Y-%m-%d %H:%M:%S} UTC")
    print(f"  nextUpdate: {crl.next_update:%Y-%m-%d %H:%M:%S} UTC")
    print(f"  issuer:     {parsed.issuer.rfc4514_string()}")
    if config.pki is not None and config.pki.base_url:
        print(f"  URL:        {config.pki.base_url.rstrip('/')}/crl/{args.ca}.crl")
    for entry in parsed:
        print(
            f"  {format(entry.serial_number, 'x')}  {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S}"
            f"  {_reason(entry)}"
        )
    if args.out:
        print(f"written to {args.out} (DER)")
    return 0


def _reason(entry: x509.RevokedCertificate) -> str:
    """The entry's RFC 5280 reason (``unspecified`` when the CRL leaves it out, §5.3.1)."""
    from cryptography import x509

    try:
        return str(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value)
    except x509.ExtensionNotFound:
        return "unspecified"


def cmd_crl_sync(args: argparse.Namespace) -> int:
    """Keep a folder of CRLs current for FreeRADIUS's ``ca_path`` (docs/radius.md)."""
    from acmegate.cli.crl_directory import CrlSyncError, check_crl, write_crls

    out = Path(args.out)
    if args.url:
        if not args.ca:
            raise CliError("--url needs --ca NAME (one per CA whose CRL to keep)")
        fetched = [_download(args.url, name) for name in args.ca]
    elif args.config:
        fetched = _from_database(load(args.config), args.ca)
    else:
        raise CliError("give --url (the signer's pki.base_url) or --config (read the database)")
    good: list[tuple[str, x509.CertificateRevocationList]] = []
    failed = False
    for name, crl, issuer in fetched:
        try:
            check_crl(name, crl, issuer)
        except CrlSyncError as exc:
            print(f"acmegate: {exc}; not written", file=sys.stderr)
            failed = True
            continue
        good.append((name, crl))
    try:
        written = write_crls(out, good)
    except CrlSyncError as exc:
        print(f"acmegate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        raise CliError(f"cannot write to {out}: {exc}") from exc
    now = datetime.now(UTC)
    for (name, crl), done in zip(good, written, strict=True):
        next_update = crl.next_update_utc
        state = "written" if done.replaced else "unchanged"
        print(
            f"{name}: CRL number {done.number}, {len(crl)} revoked, next update "
            f"{next_update:%Y-%m-%d %H:%M:%S} UTC: {state} ({done.path})"
            if next_update is not None
            else f"{name}: CRL number {done.number}: {state} ({done.path})"
        )
        if next_update is not None and next_update <= now:
            # Relying parties refuse every certificate once the CRL is past its nextUpdate.
            print(f"acmegate: {name}: the CRL expired on {next_update:%Y-%m-%d %H:%M} UTC: is a "
                  "signer running?", file=sys.stderr)  # fmt: skip
            failed = True
    return EXIT_FAILED if failed else 0


Fetched = tuple[str, "x509.CertificateRevocationList", "x509.Certificate"]


def _download(base_url: str, name: str) -> Fetched:
    """A CA's CRL and certificate from the signer's PKI listener (docs/pki.md)."""
    import urllib.error
    import urllib.request

    from cryptography import x509

    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CliError(f"--url must be an http(s) URL, not {base_url!r}")
    bodies = []
    for url in (f"{base}/crl/{name}.crl", f"{base}/ca/{name}.cer"):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - scheme checked
                bodies.append(response.read())
        except urllib.error.HTTPError as exc:
            raise CliError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        return name, x509.load_der_x509_crl(bodies[0]), x509.load_der_x509_certificate(bodies[1])
    except ValueError as exc:
        raise CliError(f"{base}: {name}: not a DER CRL and CA certificate: {exc}") from None


def _from_database(config: Config, names: list[str] | None) -> list[Fetched]:
    """Each (or each named) CA's newest CRL from ``pki.crls``, its certificate from its file."""
    from cryptography import x509

    from acmegate.signer.db.crls import latest_crl

    cas = [ca for ca in config.certificate_authorities if ca.crl.enabled]
    unknown = sorted(set(names or []) - {ca.name for ca in cas})
    if unknown:
        raise CliError(f"no certificate authority with CRLs named {', '.join(unknown)}")
    cas = [ca for ca in cas if not names or ca.name in names]

    async def newest(pool: asyncpg.Pool) -> list[StoredCrl | None]:
        return [await latest_crl(pool, ca.name) for ca in cas]

    found: list[Fetched] = []
    for ca, stored in zip(cas, _with_pool(config, newest), strict=True):
        if stored is None:
            raise CliError(f"no CRL of {ca.name!r} yet: a running signer publishes it")
        try:
            issuer = x509.load_pem_x509_certificate(Path(ca.certificate).read_bytes())
        except (OSError, ValueError) as exc:
            raise CliError(f"certificate authority {ca.name!r}: {ca.certificate}: {exc}") from exc
        found.append((ca.name, x509.load_der_x509_crl(stored.der), issuer))
    return found


def register(commands: Any) -> None:
    cert = commands.add_parser(
        "cert",
        help="issued certificates: list, show, revoke (through a running gateway's admin API, "
        "or on its database)",
    )
    cert_commands = cert.add_subparsers(dest="cert_command", required=True)
    p = cert_commands.add_parser("list", help="search issued certificates")
    certificate_options(p, "list")
    p.set_defaults(func=cmd_cert_list)
    p = cert_commands.add_parser("show", help="one certificate and its enrollment record")
    certificate_options(p, "show")
    p.set_defaults(func=cmd_cert_show)
    p = cert_commands.add_parser("revoke", help="revoke a certificate")
    certificate_options(p, "revoke")
    p.set_defaults(func=cmd_cert_revoke)

    crl = commands.add_parser("crl", help="certificate revocation lists")
    crl_commands = crl.add_subparsers(dest="crl_command", required=True)
    p = crl_commands.add_parser("show", help="a CA's current CRL")
    p.add_argument("ca", help="the CA's name")
    p.add_argument("--config", required=True)
    p.add_argument("--out", help="also write the CRL (DER) to this file")
    p.set_defaults(func=cmd_crl_show)

    p = crl_commands.add_parser(
        "sync",
        help="keep a folder of CRLs (PEM + OpenSSL hash links) current, e.g. FreeRADIUS ca_path",
        description="Write each CA's newest CRL as DIR/<ca>.crl.pem with the <hash>.r0 link "
        "`openssl rehash` makes; never replace a CRL by an older one. Run it from a timer "
        "(docs/radius.md). Exit code 1 if a CRL could not be written or has expired.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the folder (created if missing)")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        help="the signer's pki.base_url: download <url>/crl/<ca>.crl and <url>/ca/<ca>.cer",
    )
    source.add_argument("--config", help="read the CRLs from the gateway's database instead")
    p.add_argument(
        "--ca",
        action="append",
        metavar="NAME",
        help="a CA whose CRL to keep (repeatable; required with --url; default: every CA "
        "with crl.enabled)",
    )
    p.set_defaults(func=cmd_crl_sync)


def certificate_options(
    parser: argparse.ArgumentParser,
    command: Literal["list", "show", "revoke"],
    *,
    local: bool = True,
) -> None:
    """The options of ``cert <command>``; ``admin cert <command>`` has them without
    ``--config`` (it always asks the admin API)."""
    from acmegate.cli.certificates import URL_ENV

    if command != "list":
        parser.add_argument("serial", help="hexadecimal serial (colons allowed)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--admin-url",
        default=None,
        help=f"a running gateway's admin listener, e.g. http://127.0.0.1:9443 (default: "
        f"{URL_ENV}); the token comes from ACMEGATE_ADMIN_TOKEN",
    )
    if local:
        where.add_argument("--config", help="work on the gateway's database instead (maintenance)")
    if command == "list":
        parser.add_argument("--device", help="attested device serial number")
        parser.add_argument("--account", help="ACME account id")
        parser.add_argument("--ca", help="issuing CA name")
        parser.add_argument("--status", choices=list(CertificateStatus))
        parser.add_argument("--limit", type=int, default=100)
    if command == "show":
        output = parser.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true", help="print the admin API's JSON")
        output.add_argument("--pem", action="store_true", help="print the certificate chain")
    else:
        parser.add_argument("--json", action="store_true", help="print the admin API's JSON")
    if command == "revoke":
        parser.add_argument(
            "--reason",
            default="unspecified",
            help="RFC 5280 reason: unspecified, keyCompromise, cACompromise, "
            "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, "
            "aACompromise (or its code)",
        )
