"""Which names an account may order (the enrollment policy's ``server_names``), and that a
device enrollment never yields a server certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from acme import messages

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import Gateway, gateway_config, running_gateway
from tests.support.server_certs import account, add_server_policy

URN = "urn:ietf:params:acme:error:"


def _order_error(acme: Any, identifiers: list[tuple[str, str]]) -> messages.Error:
    directory: Any = acme.directory
    order = messages.NewOrder(
        identifiers=tuple(
            messages.Identifier(typ=messages.IdentifierType(typ), value=value)
            for typ, value in identifiers
        )
    )
    with pytest.raises(messages.Error) as caught:
        acme.net.post(directory["newOrder"], order, new_nonce_url=directory["newNonce"])
    return caught.value


@pytest.mark.parametrize(
    ("identifiers", "why"),
    [
        ([("dns", "www.other.test")], "www.other.test is not an allowed name"),
        ([("ip", "192.0.2.7")], "192.0.2.7 is in no allowed network"),
        ([("dns", "example.test")], "example.test is not an allowed name"),
        ([("dns", "Upper.example.test")], "lower case"),
        ([("dns", "under_score.example.test")], "not a valid DNS name"),
        ([("ip", "2001:DB8:0::1")], "write the address as"),
        (
            [("permanent-identifier", "C02ZC2QYLVDL"), ("dns", "a.example.test")],
            "never both",
        ),
    ],
)
async def test_names_outside_the_policy_are_rejected_identifiers(
    server_gateway: Gateway, identifiers: list[tuple[str, str]], why: str
) -> None:
    acme = await asyncio.to_thread(account, server_gateway.directory_url)
    error = await asyncio.to_thread(_order_error, acme, identifiers)
    assert error.typ == URN + "rejectedIdentifier", error
    assert why in (error.detail or ""), error.detail


async def test_each_refused_name_is_its_own_subproblem(server_gateway: Gateway) -> None:
    acme = await asyncio.to_thread(account, server_gateway.directory_url)
    error = await asyncio.to_thread(
        _order_error,
        acme,
        [("dns", "ok.example.test"), ("dns", "a.other.test"), ("dns", "b.other.test")],
    )
    assert error.typ == URN + "rejectedIdentifier"
    assert [s.identifier.value for s in error.subproblems] == ["a.other.test", "b.other.test"]


async def test_wildcards_need_a_policy_that_allows_them(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(tmp_path / "gateway", attestation_ca)
    add_server_policy(files.config_path, None, wildcards=False)
    async with running_gateway(files, database_url) as gateway:
        acme = await asyncio.to_thread(account, gateway.directory_url)
        error = await asyncio.to_thread(_order_error, acme, [("dns", "*.a.example.test")])
    assert error.typ == URN + "rejectedIdentifier"
    assert "wildcards are not allowed" in (error.detail or "")


async def test_without_a_server_policy_dns_identifiers_are_unsupported(
    gateway: Gateway,
) -> None:
    acme = await asyncio.to_thread(account, gateway.directory_url)
    error = await asyncio.to_thread(_order_error, acme, [("dns", "a.example.test")])
    assert error.typ == URN + "unsupportedIdentifier"
    assert "server_names" in (error.detail or "")
