"""Server names (RFC 8555 §9.7.7, RFC 8738) and the name policy of enrollment policies, and
the configuration checks that keep device and server certificates apart."""

from __future__ import annotations

import msgspec
import pytest

from acmegate.common.config.loader import check_references
from acmegate.common.config.model import (
    CertificateTemplateConfig,
    Config,
    EnrollmentPolicyConfig,
    ServerNamesConfig,
)
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier
from acmegate.common.server_names import check_identifier, choose_policy, refusal

NAMES = ServerNamesConfig(
    domains=["radius.example.org", "*.lab.example.org"], ip_networks=["10.0.0.0/8"]
)


def _policy(name: str, names: ServerNamesConfig) -> EnrollmentPolicyConfig:
    return EnrollmentPolicyConfig(
        name=name, certificate_authority="ca", certificate_template="server", server_names=names
    )


@pytest.mark.parametrize(
    ("kind", "value", "admitted"),
    [
        ("dns", "radius.example.org", True),
        ("dns", "other.example.org", False),
        ("dns", "a.b.lab.example.org", True),
        ("dns", "lab.example.org", False),
        ("dns", "xlab.example.org", False),
        ("ip", "10.1.2.3", True),
        ("ip", "192.0.2.1", False),
    ],
)
def test_domains_and_networks_admit_what_they_say(kind: str, value: str, admitted: bool) -> None:
    name = check_identifier(Identifier(kind, value))
    assert (refusal(NAMES, name, "acct") is None) is admitted


def test_wildcards_need_wildcards_true() -> None:
    name = check_identifier(Identifier("dns", "*.a.lab.example.org"))
    assert name.wildcard and name.value == "a.lab.example.org"
    assert refusal(NAMES, name, "acct") == "wildcards are not allowed"
    allowing = msgspec.structs.replace(NAMES, wildcards=True)
    assert refusal(allowing, name, "acct") is None


def test_accounts_restrict_who_may_order() -> None:
    only = msgspec.structs.replace(NAMES, accounts=["acct-1"])
    name = check_identifier(Identifier("dns", "radius.example.org"))
    assert refusal(only, name, "acct-1") is None
    assert refusal(only, name, "acct-2") == "this account is not allowed server certificates"


@pytest.mark.parametrize(
    "value", ["*.*.example.org", "a..example.org", "-a.example.org", "localhost", "1.2.3.4"]
)
def test_malformed_names_are_rejected(value: str) -> None:
    with pytest.raises(AcmeError) as caught:
        check_identifier(Identifier("dns", value))
    assert caught.value.kind is ErrorKind.REJECTED_IDENTIFIER


def test_one_policy_must_admit_every_name() -> None:
    first = _policy("a", ServerNamesConfig(domains=["a.example.org"]))
    second = _policy("b", ServerNamesConfig(domains=["b.example.org"]))
    names = [check_identifier(Identifier("dns", v)) for v in ("a.example.org", "b.example.org")]
    with pytest.raises(AcmeError) as caught:
        choose_policy([first, second], names, "acct")
    assert "no single enrollment policy" in caught.value.detail
    assert choose_policy([first, second], names[1:], "acct").name == "b"


def _config(*, server_auth_for_devices: bool) -> Config:
    device_eku = ["client_auth", "server_auth"] if server_auth_for_devices else ["client_auth"]
    return Config(
        certificate_templates=[
            CertificateTemplateConfig(name="device", extended_key_usage=device_eku),
            CertificateTemplateConfig(name="server", extended_key_usage=["server_auth"]),
        ],
        enrollment_policies=[
            EnrollmentPolicyConfig(
                name="devices", certificate_authority="ca", certificate_template="device"
            ),
            _policy("servers", NAMES),
        ],
    )


def test_only_server_policies_may_issue_server_auth() -> None:
    problems = list(check_references(_config(server_auth_for_devices=True)))
    assert any("only a policy with server_names may issue" in p for p in problems), problems


def test_caa_needs_this_cas_identity_when_server_policies_exist() -> None:
    problems = list(check_references(_config(server_auth_for_devices=False)))
    assert any("$.validation.caa.identities" in p for p in problems), problems


def test_eab_keys_admit_the_accounts_those_keys_bound() -> None:
    """server_names.eab_keys (RFC 8555 §7.3.4): an account is admitted by the EAB key it was
    created with; with `accounts` too, either list admits it."""
    name = check_identifier(Identifier("dns", "radius.example.org"))
    by_key = msgspec.structs.replace(NAMES, eab_keys=["eab-radius"])
    assert refusal(by_key, name, "acct-1", "eab-radius") is None
    assert refusal(by_key, name, "acct-1", "eab-other") == (
        "this account is not allowed server certificates"
    )
    assert refusal(by_key, name, "acct-1", None) is not None
    both = msgspec.structs.replace(by_key, accounts=["acct-2"])
    assert refusal(both, name, "acct-2", None) is None
    assert refusal(both, name, "acct-3", "eab-radius") is None
    policies = [_policy("keyed", by_key), _policy("open", NAMES)]
    assert choose_policy(policies, [name], "acct-1", "eab-radius").name == "keyed"
    assert choose_policy(policies, [name], "acct-1", None).name == "open"
