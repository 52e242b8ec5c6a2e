"""The Jamf Pro source, lookup policies and the RADIUS endpoint in the YAML configuration:
what is refused at load and at start, and the guide's "Validate Configuration" over Jamf."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from acmegate.common.config import ConfigError, parse_config
from acmegate.policy.validation import (
    ACCOUNT_INVALID,
    ACCOUNT_VALID,
    validate_config,
    validate_lookup,
)
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import DUPLICATE_SERIAL, MAC_SERIAL, PHONE_SERIAL
from tests.unit.policy.builders import BASE_CONFIG

JAMF = """
signal_sources:
  - name: jamf
    type: jamf_pro
    url: {url}
    auth: {{type: client_credentials, client_id: acmegate-gateway, client_secret: {{file: secret}}}}
    attribute_mapping:
      department: userAndLocation.department
      email: userAndLocation.email
    groups: [Cert-Eligible]
    timeout: 2s
lookup_policies:
  - name: by-serial
    signal_source: jamf
    revoke_on_failure: true
"""


def config_text(url: str = "https://example.jamfcloud.com", extra: str = "") -> str:
    # The base configuration with its static inventory swapped for a Jamf source.
    base = textwrap.dedent(BASE_CONFIG)
    start = base.index("signal_sources:")
    end = base.index("policy_workflows:")
    return base[:start] + textwrap.dedent(JAMF.format(url=url)).lstrip() + base[end:] + extra


def load(text: str, folder: Path) -> object:
    (folder / "secret").write_text("jamf-client-s3cret-DO-NOT-PRINT")
    return parse_config(text, base_dir=folder)


def test_a_jamf_source_configuration_is_valid(tmp_path: Path) -> None:
    config = load(config_text(), tmp_path)
    assert validate_config(config) == []  # type: ignore[arg-type]


def test_conditions_a_jamf_source_can_never_meet_are_refused_at_start(tmp_path: Path) -> None:
    text = (
        config_text()
        .replace("department: userAndLocation.department", "team: nowhere.department")
        .replace("groups: [Cert-Eligible]\n    timeout: 2s", "groups: [VPN]\n    timeout: 2s")
        .replace("timeout: 2s", "timeout: 2s\n    ca_bundle: missing.pem")
    )
    problems = validate_config(load(text, tmp_path))  # type: ignore[arg-type]
    assert problems[0].startswith(
        "$.signal_sources[0].attribute_mapping.team: 'nowhere.department' is in no Jamf"
    )
    assert problems[1].startswith(f"$.signal_sources[0].ca_bundle: cannot load {tmp_path}/missing")
    assert (
        "$.policy_workflows[0].conditions.groups[0]: signal source 'jamf' does not report group "
        "'Cert-Eligible' (add it to the source's groups)"
    ) in problems
    assert (
        "$.policy_workflows[0].conditions.attributes.department: signal source 'jamf' maps no "
        "attribute 'department' (add it to the source's attribute_mapping)"
    ) in problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("max_connections: 6", "max_connections must be between 1 and 5"),
        ("on_unavailable: later", "on_unavailable"),
        ("retries: 11", "retries must be between 0 and 10"),
        ("batch_size: 1001", "batch_size must be between 0"),
        ("batch_window_ms: -1", "batch_window_ms must be between 0 and 1000"),
    ],
)
def test_jamf_source_settings_are_checked_at_load(
    tmp_path: Path, change: str, message: str
) -> None:
    text = config_text().replace("timeout: 2s", f"timeout: 2s\n    {change}")
    with pytest.raises(ConfigError, match=message):
        load(text, tmp_path)


@pytest.mark.parametrize(
    ("webhooks", "message"),
    [
        ("{enabled: true}", "auth is required"),
        ("{enabled: true, auth: {type: basic, username: j}}", "password"),
        ("{enabled: true, port: 0, auth: {type: header, value: {env: W}}}", "port must be"),
        ("{enabled: true, rate_limit: 0, auth: {type: header, value: {env: W}}}", "rate_limit"),
    ],
)
def test_the_webhook_receiver_configuration_is_checked(
    tmp_path: Path, webhooks: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config_text(extra=f"\njamf_webhooks: {webhooks}\n"), tmp_path)


RADIUS_POLICY = """lookup_policies:
  - name: radius-check
    purpose: radius_authentication
    signal_source: jamf
    identity: {identity}
"""
RADIUS = """
radius:
  enabled: true
  lookup_policy: radius-check
  {token}
  certificate_authorities: [{ca}]
"""


@pytest.mark.parametrize(
    ("identity", "token", "ca", "message"),
    [
        ("attested_serial", "token: {env: T}", "devices-ca", "RADIUS presents a certificate"),
        ("certificate_common_name", "", "devices-ca", "radius.token: required"),
        ("certificate_san_dns", "token: {env: T}", "nope", "no certificate authority named"),
    ],
)
def test_the_radius_endpoint_configuration_is_checked(
    tmp_path: Path, identity: str, token: str, ca: str, message: str
) -> None:
    text = config_text(extra=RADIUS.format(token=token, ca=ca)).replace(
        "lookup_policies:\n", RADIUS_POLICY.format(identity=identity), 1
    )
    with pytest.raises(ConfigError, match=message):
        load(text, tmp_path)


def test_a_radius_endpoint_with_a_certificate_identity_loads(tmp_path: Path) -> None:
    text = config_text(extra=RADIUS.format(token="token: {env: T}", ca="devices-ca")).replace(
        "lookup_policies:\n", RADIUS_POLICY.format(identity="certificate_common_name"), 1
    )
    assert validate_config(load(text, tmp_path)) == []  # type: ignore[arg-type]


async def test_validate_configuration_over_jamf_prints_attributes_and_groups(
    fake_jamf: FakeJamf, tmp_path: Path
) -> None:
    config = load(config_text(fake_jamf.url), tmp_path)
    mac = await validate_lookup(config, "by-serial", MAC_SERIAL)  # type: ignore[arg-type]
    assert (mac.ok, mac.message) == (True, ACCOUNT_VALID)
    assert dict(mac.attributes) == {"department": "Engineering", "email": "llama@example.com"}
    assert list(mac.groups) == ["Cert-Eligible"]
    phone = await validate_lookup(config, "by-serial", PHONE_SERIAL)  # type: ignore[arg-type]
    assert phone.ok and phone.attributes["department"] == "Sales"
    unknown = await validate_lookup(config, "by-serial", "C02NOSUCH000")  # type: ignore[arg-type]
    assert (unknown.ok, unknown.message) == (False, ACCOUNT_INVALID)
    assert unknown.reason == "device C02NOSUCH000 is not known to signal source 'jamf'"
    twice = await validate_lookup(config, "by-serial", DUPLICATE_SERIAL)  # type: ignore[arg-type]
    assert twice.reason is not None and "(ambiguous)" in twice.reason
    fake_jamf.faults.error_rate = 1.0
    down = await validate_lookup(config, "by-serial", MAC_SERIAL)  # type: ignore[arg-type]
    assert down.message == ACCOUNT_INVALID
    assert down.reason == (
        "signal source 'jamf' is unavailable: Jamf Pro server error: "
        "POST /api/oauth/token answered HTTP 503"
    )


@pytest.mark.parametrize(
    ("publish", "message"),
    [
        ("{source: nope, computer_groups: [A]}", "no jamf_pro signal source named 'nope'"),
        ("{source: jamf}", "publish needs computer_groups and/or mobile_device_groups"),
        ("{source: jamf, name: ' ', computer_groups: []}", "publish name must not be empty"),
    ],
)
def test_a_platform_publish_section_is_checked(tmp_path: Path, publish: str, message: str) -> None:
    platform = f"\ndevice_management_platforms:\n  - name: macs\n    publish: {publish}\n"
    with pytest.raises(ConfigError, match=message):
        load(config_text(extra=platform), tmp_path)


def test_a_renewal_window_must_be_a_positive_duration(tmp_path: Path) -> None:
    text = config_text().replace(
        "certificate_template:", "renewal_window: 0s\n    certificate_template:", 1
    )
    with pytest.raises(ConfigError, match="renewal_window must be positive"):
        load(text, tmp_path)
