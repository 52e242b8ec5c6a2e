"""``acmegate enrollments`` and ``acmegate admin …``: the admin API for a person at a terminal.

``enrollments`` lists finished enrollments (completed and failed, with the reason), read
locally from the frontend's database (``--config``) or through a running gateway's admin API
(``--admin-url``). ``admin …`` calls the admin API of a running gateway for everything else:
CAs, templates, platforms (profile, token rotation), signal sources and lookup policies
(validation), certificates (search, show, revoke). The token comes from
``ACMEGATE_ADMIN_TOKEN``; the URL from ``--admin-url`` or ``ACMEGATE_ADMIN_URL``.

Exit codes: 0 done; 1 the operation failed (the gateway is unreachable or a service did not
answer, a validation failed); 2 bad usage (a wrong token, an unknown name or serial, a bad
value: the message says which).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from acmegate.cli.certificates import utc
from acmegate.cli.commands import pki
from acmegate.cli.errors import EXIT_FAILED, CliError, OperationFailed, env_secret, load, run_async

if TYPE_CHECKING:
    from acmegate.frontend.db.enrollments import EnrollmentOutcome

TOKEN_ENV = "ACMEGATE_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
URL_ENV = "ACMEGATE_ADMIN_URL"
API = "/api/v1"
TIMEOUT = 30.0


class AdminApi:
    """A small client of the admin API (urllib: no event loop for one request)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._token = token

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[bytes, str]:
        """The response body and its content type; problems become CLI errors."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        url = self.url + API + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        if not url.startswith(("http://", "https://")):
            raise CliError(f"--admin-url must be an http(s) URL, not {self.url!r}")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                return response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as error:
            raise _problem(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise OperationFailed(
                f"cannot reach the admin API at {self.url} ({reason}); check --admin-url "
                f"({URL_ENV}) and that the gateway runs with admin.enabled"
            ) from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        body, _ = self.request(method, path, **kwargs)
        return json.loads(body)


def _problem(error: urllib.error.HTTPError) -> Exception:
    try:
        detail = str(json.loads(error.read()).get("detail") or error.reason)
    except (ValueError, AttributeError):
        detail = str(error.reason)
    if error.code == 401:
        return CliError(f"the admin API refused the token in {TOKEN_ENV}: {detail}")
    if 400 <= error.code < 500:
        return CliError(detail)
    return OperationFailed(f"the admin API answered {error.code}: {detail}")


def api_client(args: argparse.Namespace) -> AdminApi:
    """The admin API the command line names (``--admin-url`` or ``ACMEGATE_ADMIN_URL``)."""
    url = args.admin_url or os.environ.get(URL_ENV)
    if not url:
        raise CliError(f"give the admin API's URL with --admin-url or {URL_ENV}")
    return AdminApi(url, env_secret(TOKEN_ENV, "the admin token"))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    everything = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in everything
    )


def _print(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text())


# --- enrollments -----------------------------------------------------------------------------


def _event_rows(events: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            utc(e["at"]),
            e["outcome"],
            e["device_serial"] or e["identifier"] or "-",
            e["platform"] or "-",
            e["enrollment_policy"] or "-",
            e["certificate_serial"] or "-",
            e["reason"] or "",
        ]
        for e in events
    ]


def _local_events(
    config_path: str, outcome: EnrollmentOutcome | None, limit: int
) -> list[dict[str, Any]]:
    import msgspec

    from acmegate.cli.database import state_pool
    from acmegate.frontend.db.enrollments import recent_events

    config = load(config_path)

    async def main() -> list[dict[str, Any]]:
        async with state_pool(config, ["frontend"]) as pool:
            events = await recent_events(pool, outcome=outcome, limit=limit)
        # The same JSON as the admin API's (datetimes as RFC 3339).
        found: list[dict[str, Any]] = msgspec.json.decode(msgspec.json.encode(events))
        return found

    result: list[dict[str, Any]] = run_async(main())
    return result


def cmd_enrollments(args: argparse.Namespace) -> int:
    outcome: EnrollmentOutcome | None = (
        "failed" if args.failed else "completed" if args.completed else None
    )
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000")
    if args.config:
        events = _local_events(args.config, outcome, args.limit)
    elif args.admin_url or os.environ.get(URL_ENV):
        events = api_client(args).json(
            "GET", "/enrollments", params={"outcome": outcome, "limit": args.limit}
        )["enrollments"]
    else:
        raise CliError(
            f"give --config (read the database) or --admin-url (ask a gateway; or {URL_ENV})"
        )
    if args.json:
        print(json.dumps(events, indent=2))
    elif not events:
        print("no enrollment has finished yet" if outcome is None else f"no {outcome} enrollment")
    else:
        header = ("TIME (UTC)", "OUTCOME", "DEVICE", "PLATFORM", "POLICY", "CERTIFICATE", "REASON")
        print(_table(header, _event_rows(events)))
    return 0


# --- admin … --------------------------------------------------------------------------------


def cmd_ca_list(args: argparse.Namespace) -> int:
    cas = api_client(args).json("GET", "/certificate-authorities")["certificate_authorities"]

    def text() -> str:
        blocks = []
        for ca in cas:
            lines = [f"{ca['name']}: {ca['subject']}"]
            lines += [f"  issued by: {issuer}" for issuer in ca["chain"][1:]]
            lines.append(f"  valid:     {utc(ca['not_before'])} → {utc(ca['not_after'])} UTC")
            lines.append(f"  key:       {ca['key_algorithm']}, {ca['key_storage']}")
            if ca["crl_url"]:
                lines.append(f"  CRL:       {ca['crl_url']}")
            if ca["ocsp_url"]:
                lines.append(f"  OCSP:      {ca['ocsp_url']}")
            blocks.append("\n".join(lines))
        return "\n".join(blocks) or "no certificate authority is configured"

    _print(args, cas, text)
    return 0


def cmd_template_list(args: argparse.Namespace) -> int:
    templates = api_client(args).json("GET", "/templates")["templates"]
    rows = [
        [
            t["name"],
            t["subject"],
            f"{t['validity_seconds'] // 86400}d",
            ",".join(t["extended_key_usage"]),
        ]
        for t in templates
    ]
    _print(args, templates, lambda: _table(("NAME", "SUBJECT", "VALIDITY", "EKU"), rows))
    return 0


def cmd_platform_list(args: argparse.Namespace) -> int:
    platforms = api_client(args).json("GET", "/platforms")["platforms"]
    rows = [
        [
            p["name"],
            p["vendor"],
            p["client_identifier"],
            "signed" if p["signed"] else "unsigned",
            utc(p["token_created_at"]) if p["token_created_at"] else "no token yet",
        ]
        for p in platforms
    ]
    header = ("NAME", "VENDOR", "CLIENT IDENTIFIER", "PROFILE", "TOKEN MINTED")
    _print(args, platforms, lambda: _table(header, rows) or "no platform is configured")
    return 0


def cmd_platform_profile(args: argparse.Namespace) -> int:
    path = f"/platforms/{urllib.parse.quote(args.name, safe='')}/profile"
    data, _ = api_client(args).request("GET", path)
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"profile for platform {args.name!r} written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_platform_rotate(args: argparse.Namespace) -> int:
    path = f"/platforms/{urllib.parse.quote(args.name, safe='')}/token/rotate"
    token = api_client(args).json("POST", path)
    _print(
        args,
        token,
        lambda: (
            f"new token for {token['platform']}: {token['token']}\n"
            "previous tokens are revoked; download and push the profile again"
        ),
    )
    return 0


# --- External Account Binding keys (RFC 8555 §7.3.4) ----------------------------------------


def cmd_eab_list(args: argparse.Namespace) -> int:
    keys = api_client(args).json("GET", "/eab-keys")["eab_keys"]
    rows = [
        [
            k["key_id"],
            k["status"],
            utc(k["created_at"]),
            k["account_id"] or "-",
            k["description"] or "-",
        ]
        for k in keys
    ]
    header = ("KEY ID", "STATUS", "CREATED (UTC)", "ACCOUNT", "DESCRIPTION")
    _print(args, keys, lambda: _table(header, rows) or "no EAB key has been created")
    return 0


def cmd_eab_create(args: argparse.Namespace) -> int:
    key = api_client(args).json("POST", "/eab-keys", body={"description": args.description})
    _print(
        args,
        key,
        lambda: (
            f"key id:   {key['key_id']}\n"
            f"HMAC key: {key['hmac_key']}\n"
            "the HMAC key is shown only now; give both to the ACME client "
            "(certbot --eab-kid ... --eab-hmac-key ...)"
        ),
    )
    return 0


def cmd_eab_revoke(args: argparse.Namespace) -> int:
    path = f"/eab-keys/{urllib.parse.quote(args.key_id, safe='')}/revoke"
    reply = api_client(args).json("POST", path)
    key = reply["eab_key"]
    _print(
        args,
        reply,
        lambda: (
            f"EAB key {key['key_id']} "
            + ("revoked" if reply["revoked_now"] else "was already revoked")
            + (f"; account {key['account_id']} it bound keeps working" if key["account_id"] else "")
        ),
    )
    return 0


def cmd_source_list(args: argparse.Namespace) -> int:
    sources = api_client(args).json("GET", "/signal-sources")["signal_sources"]
    rows = [[s["name"], s["type"], s["url"] or "-", s["description"]] for s in sources]
    _print(args, sources, lambda: _table(("NAME", "TYPE", "URL", "DESCRIPTION"), rows))
    return 0


def cmd_source_validate(args: argparse.Namespace) -> int:
    path = f"/signal-sources/{urllib.parse.quote(args.name, safe='')}/validate"
    result = api_client(args).json("POST", path)
    state = "OK" if result["ok"] else "FAILED"
    _print(args, result, lambda: f"{result['name']}: {state}: {result['message']}")
    return 0 if result["ok"] else EXIT_FAILED


def cmd_lookup_list(args: argparse.Namespace) -> int:
    lookups = api_client(args).json("GET", "/lookup-policies")["lookup_policies"]
    rows = [[p["name"], p["purpose"], p["signal_source"], p["identity"]] for p in lookups]
    _print(args, lookups, lambda: _table(("NAME", "PURPOSE", "SIGNAL SOURCE", "IDENTITY"), rows))
    return 0


def cmd_lookup_validate(args: argparse.Namespace) -> int:
    path = f"/lookup-policies/{urllib.parse.quote(args.name, safe='')}/validate"
    result = api_client(args).json("POST", path, body={"identity": args.identity})

    def text() -> str:
        lines = [result["message"]]
        if result["reason"]:
            lines.append(f"  reason: {result['reason']}")
        lines += [f"  {k}: {v}" for k, v in sorted(result["attributes"].items())]
        if result["groups"]:
            lines.append(f"  groups: {', '.join(result['groups'])}")
        return "\n".join(lines)

    _print(args, result, text)
    return 0 if result["ok"] else EXIT_FAILED


# --- the parser ------------------------------------------------------------------------------

# `admin cert …`: the same commands as `acmegate cert …`, always through the admin API.
CERT_COMMANDS: tuple[
    tuple[Literal["list", "show", "revoke"], str, Callable[[argparse.Namespace], int]], ...
] = (
    ("list", "search issued certificates", pki.cmd_cert_list),
    ("show", "one certificate and its enrollment record", pki.cmd_cert_show),
    ("revoke", "revoke a certificate", pki.cmd_cert_revoke),
)


def _remote(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(URL_ENV),
        help=f"the gateway's admin listener, e.g. http://127.0.0.1:9443 (or {URL_ENV}); "
        f"the token comes from {TOKEN_ENV}",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the API's JSON")


def register(commands: Any) -> None:
    p = commands.add_parser(
        "enrollments", help="finished enrollments, completed and failed (with the reason)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only failed enrollments")
    which.add_argument("--completed", action="store_true", help="only completed enrollments")
    p.add_argument("--limit", type=int, default=50, help="at most this many (1..1000)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", help="read them from the gateway's database")
    where.add_argument(
        "--admin-url",
        help=f"ask a running gateway's admin API (token from {TOKEN_ENV}); without either "
        f"option: {URL_ENV}",
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    p.set_defaults(func=cmd_enrollments)

    admin = commands.add_parser("admin", help="a running gateway's admin API (--admin-url)")
    areas = admin.add_subparsers(dest="admin_area", required=True, metavar="AREA")

    def command(
        parent: Any, name: str, helptext: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=helptext)
        _remote(parser)
        parser.set_defaults(func=func)
        return parser

    ca = areas.add_parser("ca", help="certificate authorities").add_subparsers(
        dest="admin_command", required=True
    )
    command(ca, "list", "the CAs the signer has loaded", cmd_ca_list)

    template = areas.add_parser("template", help="certificate templates").add_subparsers(
        dest="admin_command", required=True
    )
    command(template, "list", "the certificate templates", cmd_template_list)

    platform = areas.add_parser("platform", help="device management platforms").add_subparsers(
        dest="admin_command", required=True
    )
    command(platform, "list", "platforms and their tokens", cmd_platform_list)
    p = command(platform, "profile", "download a platform's .mobileconfig", cmd_platform_profile)
    p.add_argument("name")
    p.add_argument("--out", help="write the profile to this file instead of stdout")
    p = command(platform, "rotate-token", "a new enrollment token", cmd_platform_rotate)
    p.add_argument("name")

    eab = areas.add_parser("eab", help="External Account Binding keys").add_subparsers(
        dest="admin_command", required=True
    )
    command(eab, "list", "the EAB keys and the accounts they bound", cmd_eab_list)
    p = command(eab, "create", "a new key id and HMAC key (shown once)", cmd_eab_create)
    p.add_argument("--description", default="", help="who or what the key is for")
    p = command(eab, "revoke", "revoke a key: it binds no account any more", cmd_eab_revoke)
    p.add_argument("key_id")

    source = areas.add_parser("signal-source", help="signal sources").add_subparsers(
        dest="admin_command", required=True
    )
    command(source, "list", "the signal sources", cmd_source_list)
    p = command(source, "validate", "validate a signal source", cmd_source_validate)
    p.add_argument("name")

    lookup = areas.add_parser("lookup", help="lookup policies").add_subparsers(
        dest="admin_command", required=True
    )
    command(lookup, "list", "the lookup policies", cmd_lookup_list)
    p = command(lookup, "validate", "look a device up as the policy would", cmd_lookup_validate)
    p.add_argument("name")
    p.add_argument("identity", help="device serial number, UDID or DNS name")

    cert = areas.add_parser("cert", help="issued certificates").add_subparsers(
        dest="admin_command", required=True
    )
    for name, helptext, func in CERT_COMMANDS:
        p = cert.add_parser(name, help=helptext)
        pki.certificate_options(p, name, local=False)
        p.set_defaults(func=func)
