"""Builders for policy tests: a configuration, attestation claims, verified CSR info, orders."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.common.config import Config, parse_config
from acmegate.common.messages import (
    CsrInfo,
    DeviceClaims,
    FinalizeOrder,
    Identifier,
    PermanentIdentifierName,
)
from acmegate.common.x509names import spki_der

SERIAL = "C02XK1AAJGH5"
UDID = "00008103-001A2B3C4D5E6F70"

# A complete policy configuration: one static inventory, one workflow, one device role.
BASE_CONFIG = """
certificate_authorities:
  - name: devices-ca
    certificate: ca.pem
    key: {type: file, path: ca.key, passphrase: {env: ACMEGATE_TEST_CA_PASSPHRASE}}
certificate_templates:
  - name: device
    subject: "CN=${/csr/subject/commonname},O=Example\\\\, Inc.,OU=${/source/department}"
    san:
      dns: ["${/csr/san/dnsname}"]
      rfc822: ["${/source/email}"]
      permanent_identifier: ["${/device/serialnumber}"]
    csr_rules:
      /csr/san/dnsname: {matches: '[a-z0-9-]+\\.example\\.com'}
    required: [subject.CN]
    validity: 30d
device_management_platforms:
  - name: jamf
signal_sources:
  - type: static
    name: inventory
    devices:
      - serial_number: C02XK1AAJGH5
        udid: 00008103-001A2B3C4D5E6F70
        attributes: {department: IT, email: alice@example.com}
        groups: [All Managed Clients, Cert-Eligible]
      - serial_number: C02UNMANAGED
        managed: false
        attributes: {department: IT}
        groups: [Cert-Eligible]
      - serial_number: C02SALES0001
        attributes: {department: Sales}
        groups: [Cert-Eligible]
      - serial_number: C02NOGROUP01
        attributes: {department: IT}
        groups: [Lab]
lookup_policies:
  - name: by-serial
    signal_source: inventory
    revoke_on_failure: true
policy_workflows:
  - name: eligible
    conditions:
      lookup_policy: by-serial
      groups: [Cert-Eligible]
      attributes: {department: [IT]}
device_roles:
  - name: modern-apple
    conditions: {attestation_provider: apple, min_os_version: "14.0"}
enrollment_policies:
  - name: managed-devices
    role: eligible
    device_role: modern-apple
    certificate_authority: devices-ca
    certificate_template: device
"""


def make_config(text: str = BASE_CONFIG, base_dir: Path | None = None) -> Config:
    return parse_config(textwrap.dedent(text), base_dir=base_dir or Path("/nonexistent"))


def public_key() -> bytes:
    """A real P-256 SubjectPublicKeyInfo (the device's Secure Enclave key in production)."""
    return spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())


def claims(
    serial: str | None = SERIAL, *, os_version: str | None = "17.4.1", **changes: object
) -> DeviceClaims:
    values: dict[str, object] = {
        "provider": "apple",
        "format": "apple",
        "attested_key": public_key(),
        "serial_number": serial,
        "udid": UDID if serial == SERIAL else None,
        "os_version": os_version,
        "sepos_version": "17.4",
        "software_update_device_id": "J514sAP",
    }
    values.update(changes)
    return DeviceClaims(**values)  # type: ignore[arg-type]


def csr(
    common_name: str | None = SERIAL,
    *,
    dns: list[str] | None = None,
    emails: list[str] | None = None,
    upns: list[str] | None = None,
    permanent_identifiers: list[str] | None = None,
    key: bytes | None = None,
) -> CsrInfo:
    return CsrInfo(
        public_key=key or public_key(),
        subject=[("2.5.4.3", common_name)] if common_name else [],
        common_name=common_name,
        dns_names=dns if dns is not None else [],
        emails=emails or [],
        upns=upns or [],
        permanent_identifiers=[PermanentIdentifierName(v) for v in permanent_identifiers or []],
    )


def order(
    serial: str | None = SERIAL,
    *,
    device: DeviceClaims | None = None,
    info: CsrInfo | None = None,
    platform: str | None = None,
    order_id: str = "order-1",
) -> FinalizeOrder:
    device = device or claims(serial)
    info = info or csr(serial, key=device.attested_key)
    return FinalizeOrder(
        correlation_id=f"corr-{order_id}",
        order_id=order_id,
        account_id="acct-1",
        identifiers=[Identifier("permanent-identifier", serial or "unknown")],
        csr_der=b"\x30\x00",
        claims=[device],
        platform=platform,
        csr=info,
    )


def jamf_config_text(url: str, *, source: str = "", extra: str = "") -> str:
    """:data:`BASE_CONFIG` with its static inventory swapped for a Jamf Pro source at ``url``.

    The source's secret is the file ``secret`` next to the configuration; ``source`` adds
    settings to the source (YAML lines indented by four spaces), ``extra`` top-level keys.
    """
    jamf = textwrap.dedent(
        f"""
        signal_sources:
          - name: jamf
            type: jamf_pro
            url: {url}
            auth:
              type: client_credentials
              client_id: acmegate-gateway
              client_secret: {{file: secret}}
            attribute_mapping:
              department: userAndLocation.department
              email: userAndLocation.email
            groups: [Cert-Eligible]
            timeout: 2s
            retries: 0
        """
    ).lstrip()
    if source:
        jamf += textwrap.indent(textwrap.dedent(source).strip(), "    ") + "\n"
    jamf += textwrap.dedent(
        """
        lookup_policies:
          - name: by-serial
            signal_source: jamf
            revoke_on_failure: true
        """
    ).lstrip()
    # The fake's devices are in Engineering and Sales: no department condition.
    base = textwrap.dedent(BASE_CONFIG).replace("      attributes: {department: [IT]}\n", "")
    start, end = base.index("signal_sources:"), base.index("policy_workflows:")
    return base[:start] + jamf + base[end:] + textwrap.dedent(extra)


def jamf_policy_config(url: str, folder: Path, *, source: str = "", extra: str = "") -> Config:
    """A parsed :func:`jamf_config_text` (the fake's client secret written to ``folder``)."""
    from tests.support.fake_jamf import CLIENT_SECRET

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret").write_text(CLIENT_SECRET)
    return parse_config(jamf_config_text(url, source=source, extra=extra), base_dir=folder)
