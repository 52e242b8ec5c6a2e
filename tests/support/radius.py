"""A whole gateway with the RADIUS endpoint, its devices in the fake Jamf Pro."""

from __future__ import annotations

from pathlib import Path

import yaml

from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import jamf_overrides
from tests.support.gateway import Gateway, GatewayFiles, free_port, gateway_config

RADIUS_TOKEN = "radius-bearer-token-of-the-tests"


def radius_config(
    folder: Path,
    attestation_ca: AttestationCA,
    fake_jamf: FakeJamf,
    *,
    identity: str = "certificate_permanent_identifier",
    revoke_on_failure: bool = True,
    any_csr_dns_name: bool = False,
) -> GatewayFiles:
    """A gateway issuing through Jamf and answering ``/radius/authorize`` with the lookup
    policy ``radius-check`` (the token is :data:`RADIUS_TOKEN`); start it with
    :func:`~tests.support.gateway.running_gateway`. ``any_csr_dns_name``: the template's
    rule admits every dNSName a CSR asks for (``matches: '.*'``), as a careless administrator
    may write it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "radius-token").write_text(RADIUS_TOKEN)
    overrides = jamf_overrides(fake_jamf.url, folder)
    overrides["lookup_policies"].append(
        {
            "name": "radius-check",
            "purpose": "radius_authentication",
            "signal_source": "jamf",
            "identity": identity,
            "revoke_on_failure": revoke_on_failure,
        }
    )
    overrides["radius"] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": free_port(),
        "lookup_policy": "radius-check",
        "token": {"file": "radius-token"},
    }
    files = gateway_config(folder, attestation_ca, overrides=overrides)
    if any_csr_dns_name:
        config = yaml.safe_load(files.config_path.read_text())
        config["certificate_templates"][0]["csr_rules"]["/csr/san/dnsname"] = {"matches": ".*"}
        files.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return files


def radius_base_url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.config.radius.port}"
