"""Issued certificates at the terminal: one story for listing, showing and revoking them.

``acmegate cert list|show|revoke`` reach the certificate inventory one of two ways:

- ``--admin-url URL`` (or ``ACMEGATE_ADMIN_URL``; token from ``ACMEGATE_ADMIN_TOKEN``): through
  a running gateway's admin API. The way for day-to-day work: the signer that answers renews
  its CRL at once after a revocation, and nothing but the admin listener needs to be reachable;
- ``--config FILE``: on the database itself (the standalone's embedded one too). The way for
  maintenance — the gateway stopped, a restored backup, a site without an admin listener; a
  running signer puts a revocation made here into its next CRL within
  ``pki.crl_check_interval``, and OCSP answers it at once either way.

Both ways give the admin API's JSON (``--json``), and the text is made from that JSON here,
so the two print the same. ``acmegate admin cert …`` is the same command with ``--admin-url``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec

from acmegate.cli.errors import CliError, load
from acmegate.common.vocabulary import CertificateState, RevocationReason

if TYPE_CHECKING:
    import asyncpg

    from acmegate.cli.commands.admin import AdminApi
    from acmegate.common.config import Config

T = TypeVar("T")
Certificate = dict[str, Any]
URL_ENV = "ACMEGATE_ADMIN_URL"


class Inventory(Protocol):
    """Where the certificates come from; every answer is the admin API's JSON."""

    def search(self, filters: dict[str, Any]) -> list[Certificate]:
        """The newest certificates matching ``filters`` (device, account, ca, status, limit)."""

    def show(self, serial: str) -> Certificate:
        """One certificate with its names, chain and enrollment record."""

    def revoke(self, serial: str, reason: RevocationReason) -> dict[str, Any]:
        """``{"certificate": …, "revoked_now": bool}``."""


def inventory(args: argparse.Namespace) -> Inventory:
    """The inventory the command line names: ``--config`` (database) or the admin API."""
    config_path = getattr(args, "config", None)
    if config_path:
        return DatabaseInventory(load(config_path))
    if getattr(args, "admin_url", None) or os.environ.get(URL_ENV):
        from acmegate.cli.commands.admin import api_client

        return GatewayInventory(api_client(args))
    raise CliError(
        f"give --admin-url (a running gateway's admin API; or {URL_ENV}) or --config (the "
        "gateway's database, for maintenance)"
    )


class GatewayInventory:
    """A running gateway's admin API (``docs/admin-api.md``)."""

    def __init__(self, api: AdminApi) -> None:
        self._api = api

    def search(self, filters: dict[str, Any]) -> list[Certificate]:
        found: list[Certificate] = self._api.json("GET", "/certificates", params=filters)[
            "certificates"
        ]
        return found

    def show(self, serial: str) -> Certificate:
        shown: Certificate = self._api.json("GET", _serial_path(serial))["certificate"]
        return shown

    def revoke(self, serial: str, reason: RevocationReason) -> dict[str, Any]:
        result: dict[str, Any] = self._api.json(
            "POST", _serial_path(serial) + "/revoke", body={"reason": reason}
        )
        return result


def _serial_path(serial: str) -> str:
    import urllib.parse

    return f"/certificates/{urllib.parse.quote(serial, safe='')}"


class DatabaseInventory:
    """The ``pki`` schema of the gateway's database, answered as the signer answers the API."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def _run(self, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        from acmegate.cli.database import with_state_pool

        return with_state_pool(self._config, ["signer"], work)

    def search(self, filters: dict[str, Any]) -> list[Certificate]:
        from acmegate.signer.db.inventory import list_certificates
        from acmegate.signer.rpc import certificate_summary

        records = self._run(
            lambda pool: list_certificates(
                pool,
                device_serial=filters.get("device"),
                account_id=filters.get("account"),
                ca_name=filters.get("ca"),
                status=filters.get("status"),
                limit=filters.get("limit", 100),
            )
        )
        now = datetime.now(UTC)
        return [_as_json(certificate_summary(r, now, full=False)) for r in records]

    def show(self, serial: str) -> Certificate:
        from acmegate.signer.db.inventory import find_certificate
        from acmegate.signer.rpc import certificate_summary

        normalised = _serial(serial)
        record = self._run(lambda pool: find_certificate(pool, normalised))
        if record is None:
            raise _unknown(serial)
        return _as_json(certificate_summary(record, datetime.now(UTC), full=True))

    def revoke(self, serial: str, reason: RevocationReason) -> dict[str, Any]:
        from acmegate.signer.db.revocations import revoke_certificate
        from acmegate.signer.rpc import certificate_summary

        normalised = _serial(serial)
        outcome = self._run(
            lambda pool: revoke_certificate(pool, normalised, reason=reason, at=datetime.now(UTC))
        )
        if outcome is None:
            raise _unknown(serial)
        summary = certificate_summary(outcome.certificate, datetime.now(UTC), full=True)
        return {"certificate": _as_json(summary), "revoked_now": outcome.revoked_now}


def _as_json(value: object) -> Certificate:
    # Through JSON, so datetimes and bytes look exactly as the admin API sends them.
    decoded: Certificate = msgspec.json.decode(msgspec.json.encode(value))
    return decoded


def _serial(text: str) -> str:
    from acmegate.signer.serials import parse_serial

    try:
        return parse_serial(text)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _unknown(serial: str) -> CliError:
    return CliError(f"no certificate with serial {serial} was issued by this gateway")


def revocation_reason(text: str) -> RevocationReason:
    """The RFC 5280 name of a reason given by name or code; a clear error otherwise."""
    from acmegate.signer.revocation import parse_reason

    try:
        return parse_reason(text)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


# --- the text, from the JSON ------------------------------------------------------------------


def utc(value: str | None) -> str:
    """RFC 3339 as the API writes it → ``2025-06-01 12:00:00`` (UTC); ``-`` for none."""
    return value[:19].replace("T", " ") if value else "-"


def status(certificate: Certificate) -> CertificateState:
    """valid, expired or revoked."""
    return CertificateState.of(certificate["status"], expired=certificate["expired"])


def table(certificates: list[Certificate]) -> str:
    """One line per certificate under a header; a sentence when there is none."""
    if not certificates:
        return "no certificates match"
    rows = [["SERIAL", "STATUS", "CA", "DEVICE", "NOT AFTER", "TEMPLATE", "ACCOUNT"]]
    rows += [
        [
            c["serial"],
            status(c),
            c["ca"],
            c["device_serial"] or "-",
            utc(c["not_after"])[:10],
            c["template"],
            c["account_id"],
        ]
        for c in certificates
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def details(c: Certificate) -> list[str]:
    """One certificate and its enrollment record (the guide's "completed" view)."""
    state = str(status(c))
    if c["revoked_at"]:
        state += f" on {utc(c['revoked_at'])} UTC ({c['revocation_reason']})"
    lines = [
        f"serial:       {c['serial']}",
        f"status:       {state}",
        f"subject:      {c['subject'] or '(empty)'}",
        *[f"  {name}" for name in c["subject_alt_names"]],
        f"validity:     {utc(c['not_before'])} → {utc(c['not_after'])} UTC",
        f"issued:       {utc(c['issued_at'])} UTC by CA {c['ca']}, template {c['template']}",
        f"order:        {c['order_id']} (account {c['account_id']})",
    ]
    if c["identifier"]:
        lines.append(f"identifier:   {c['identifier']['type']} {c['identifier']['value']}")
    record = c.get("record")
    if not record:
        return [*lines, "enrollment record: none"]
    lines.append("enrollment record:")
    device = record.get("device")
    if device:
        claims = {
            "serial number": device.get("serial_number"),
            "UDID": device.get("udid"),
            "OS version": device.get("os_version"),
            "sepOS version": device.get("sepos_version"),
            "LLB version": device.get("llb_version"),
            "SIP enabled": device.get("sip_enabled"),
            "secure boot": device.get("secure_boot"),
            "third-party kexts": device.get("third_party_kexts_allowed"),
        }
        lines.append(f"  attested device ({device.get('provider')}, {device.get('format')}):")
        lines += [f"    {k}: {v}" for k, v in claims.items() if v is not None]
    for label, key in (
        ("platform", "platform"),
        ("signal source", "signal_source"),
        ("lookup policy", "lookup_policy"),
        ("policy workflow", "workflow"),
        ("device role", "device_role"),
        ("enrollment policy", "enrollment_policy"),
    ):
        if record.get(key):
            lines.append(f"  {label}: {record[key]}")
    if record.get("source_attributes"):
        lines.append("  signal-source attributes:")
        lines += [f"    {k}: {v}" for k, v in sorted(record["source_attributes"].items())]
    if record.get("source_groups"):
        lines.append(f"  groups: {', '.join(record['source_groups'])}")
    if record.get("revoke_on_failure"):
        lines.append("  revoke on failure: yes")
    return lines


def revocation(result: dict[str, Any]) -> str:
    """What a revocation did."""
    c = result["certificate"]
    if not result["revoked_now"]:
        return (
            f"{c['serial']} was already revoked on {utc(c['revoked_at'])} UTC "
            f"({c['revocation_reason']}); nothing changed"
        )
    return (
        f"revoked {c['serial']} ({c['revocation_reason']}), issued by CA {c['ca']}\n"
        "OCSP reports it now; the CA's next CRL, within seconds, lists it"
    )
