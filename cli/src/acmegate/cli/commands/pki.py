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
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from acmegate.cli.errors import EXIT_FAILED, CliError, load
from acmegate.common.vocabulary import CertificateState, CertificateStatus

if TYPE_CHECKING:
    from cryptography import x509

    from acmegate.common.config import Config
    from acmegate.signer.db.crls import StoredCrl
    from acmegate.signer.db.inventory import CertificateRecord

T = TypeVar("T")


def _with_pool(config: Config, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run ``work`` on the gateway's database: ``database.url``/``ACMEGATE_DATABASE_URL``, or
    the embedded PostgreSQL of ``acmegate standalone`` (started or joined here)."""
    from acmegate.cli.database import state_pool

    async def run() -> T:
        async with state_pool(config, ["signer"]) as pool:
            return await work(pool)

    return asyncio.run(run())


def _certificate_json(record: CertificateRecord, *, full: bool) -> dict[str, Any]:
    import msgspec

    data: dict[str, Any] = {
        "serial": record.serial,
        "status": record.status,
        "ca": record.ca_name,
        "template": record.template,
        "account_id": record.account_id,
        "order_id": record.order_id,
        "identifier": (
            {"type": record.identifier_type, "value": record.identifier_value}
            if record.identifier_type
            else None
        ),
        "device_serial": record.device_serial,
        "not_before": record.not_before.isoformat(),
        "not_after": record.not_after.isoformat(),
        "issued_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "revocation_reason": record.revocation_reason,
    }
    if full:
        certificate = record.certificate()
        data["subject"] = certificate.subject.rfc4514_string()
        data["subject_alt_names"] = _san_lines(record)
        # bytes (the attested key) become base64, as in the bus messages.
        data["record"] = msgspec.to_builtins(record.record) if record.record else None
        data["chain_pem"] = record.chain_pem
    return data


def _san_lines(record: CertificateRecord) -> list[str]:
    from acmegate.common.x509names import describe_subject_alt_names

    return describe_subject_alt_names(record.certificate())


def _status_text(record: CertificateRecord, now: datetime) -> str:
    return CertificateState.of(record.status, expired=record.not_after <= now)


def cmd_cert_list(args: argparse.Namespace) -> int:
    from acmegate.signer.db.inventory import list_certificates

    config = load(args.config)
    records = _with_pool(
        config,
        lambda pool: list_certificates(
            pool,
            device_serial=args.device,
            account_id=args.account,
            ca_name=args.ca,
            status=args.status,
            limit=args.limit,
        ),
    )
    if args.json:
        print(json.dumps([_certificate_json(r, full=False) for r in records], indent=2))
        return 0
    if not records:
        print("no certificates match")
        return 0
    now = datetime.now(UTC)
    rows = [("SERIAL", "STATUS", "CA", "DEVICE", "NOT AFTER", "TEMPLATE", "ACCOUNT")]
    rows += [
        (
            r.serial,
            _status_text(r, now),
            r.ca_name,
            r.device_serial or "-",
            f"{r.not_after:%Y-%m-%d}",
            r.template,
            r.account_id,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _show_lines(record: CertificateRecord) -> list[str]:
    certificate = record.certificate()
    now = datetime.now(UTC)
    status = _status_text(record, now)
    if record.revoked_at is not None:
        status += f" on {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC ({record.revocation_reason})"
    lines = [
        f"serial:       {record.serial}",
        f"status:       {status}",
        f"subject:      {certificate.subject.rfc4514_string() or '(empty)'}",
    ]
    lines += [f"  {line}" for line in _san_lines(record)]
    lines += [
        f"validity:     {record.not_before:%Y-%m-%d %H:%M:%S} → "
        f"{record.not_after:%Y-%m-%d %H:%M:%S} UTC",
        f"issued:       {record.created_at:%Y-%m-%d %H:%M:%S} UTC by CA {record.ca_name}, "
        f"template {record.template}",
        f"order:        {record.order_id} (account {record.account_id})",
    ]
    if record.identifier_type:
        lines.append(f"identifier:   {record.identifier_type} {record.identifier_value}")
    enrollment = record.record
    if enrollment is None:
        lines.append("enrollment record: none")
        return lines
    lines.append("enrollment record:")
    device = enrollment.device
    if device is not None:
        claims = {
            "serial number": device.serial_number,
            "UDID": device.udid,
            "OS version": device.os_version,
            "sepOS version": device.sepos_version,
            "LLB version": device.llb_version,
            "SIP enabled": device.sip_enabled,
            "secure boot": device.secure_boot,
            "third-party kexts": device.third_party_kexts_allowed,
        }
        lines.append(f"  attested device ({device.provider}, {device.format}):")
        lines += [f"    {k}: {v}" for k, v in claims.items() if v is not None]
    for label, value in (
        ("platform", enrollment.platform),
        ("signal source", enrollment.signal_source),
        ("lookup policy", enrollment.lookup_policy),
        ("policy workflow", enrollment.workflow),
        ("device role", enrollment.device_role),
        ("enrollment policy", enrollment.enrollment_policy),
    ):
        if value:
            lines.append(f"  {label}: {value}")
    if enrollment.source_attributes:
        lines.append("  signal-source attributes:")
        lines += [f"    {k}: {v}" for k, v in sorted(enrollment.source_attributes.items())]
    if enrollment.source_groups:
        lines.append(f"  groups: {', '.join(enrollment.source_groups)}")
    if enrollment.revoke_on_failure:
        lines.append("  revoke on failure: yes")
    return lines


def _find(config: Config, serial: str) -> CertificateRecord:
    from acmegate.signer.db.inventory import find_certificate
    from acmegate.signer.serials import parse_serial

    try:
        parse_serial(serial)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    record = _with_pool(config, lambda pool: find_certificate(pool, serial))
    if record is None:
        raise CliError(f"no certificate with serial {serial} was issued by this gateway")
    return record


def cmd_cert_show(args: argparse.Namespace) -> int:
    config = load(args.config)
    record = _find(config, args.serial)
    if args.json:
        print(json.dumps(_certificate_json(record, full=True), indent=2))
    elif args.pem:
        print(record.chain_pem, end="")
    else:
        print("\n".join(_show_lines(record)))
    return 0


def cmd_cert_revoke(args: argparse.Namespace) -> int:
    from acmegate.signer.db.revocations import revoke_certificate
    from acmegate.signer.revocation import parse_reason
    from acmegate.signer.serials import parse_serial

    config = load(args.config)
    try:
        reason = parse_reason(args.reason)
        parse_serial(args.serial)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    outcome = _with_pool(
        config,
        lambda pool: revoke_certificate(pool, args.serial, reason=reason, at=datetime.now(UTC)),
    )
    if outcome is None:
        raise CliError(f"no certificate with serial {args.serial} was issued by this gateway")
    record = outcome.certificate
    if not outcome.revoked_now:
        assert record.revoked_at is not None
        print(
            f"{record.serial} was already revoked on {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({record.revocation_reason}); nothing changed"
        )
        return 0
    print(f"revoked {record.serial} ({reason}), issued by CA {record.ca_name}")
    print("OCSP reports it now; the next CRL, within seconds, lists it")
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
    cert = commands.add_parser("cert", help="issued certificates: list, show, revoke")
    cert_commands = cert.add_subparsers(dest="cert_command", required=True)
    p = cert_commands.add_parser("list", help="search issued certificates")
    p.add_argument("--config", required=True)
    p.add_argument("--device", help="attested device serial number")
    p.add_argument("--account", help="ACME account id")
    p.add_argument("--ca", help="issuing CA name")
    p.add_argument("--status", choices=list(CertificateStatus))
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cert_list)

    p = cert_commands.add_parser("show", help="one certificate and its enrollment record")
    p.add_argument("serial", help="hexadecimal serial (colons allowed)")
    p.add_argument("--config", required=True)
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--pem", action="store_true", help="print the certificate chain")
    p.set_defaults(func=cmd_cert_show)

    p = cert_commands.add_parser("revoke", help="revoke a certificate")
    p.add_argument("serial", help="hexadecimal serial (colons allowed)")
    p.add_argument("--config", required=True)
    p.add_argument(
        "--reason",
        default="unspecified",
        help="RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, "
        "superseded, cessationOfOperation, privilegeWithdrawn, aACompromise (or its code)",
    )
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
