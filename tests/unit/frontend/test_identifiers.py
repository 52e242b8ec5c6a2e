"""newOrder identifiers: the device-attest draft's ABNF and one device per order."""

from __future__ import annotations

import pytest

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier
from acmegate.frontend.identifiers import parse_identifiers


@pytest.mark.parametrize(
    "value", ["C02ZC2QYLVDL", "ABCDEF123456/1.2.3.4", "X/2.999", "tok-en_1", "X/0.39"]
)
def test_conforming_permanent_identifiers_are_accepted(value: str) -> None:
    assert parse_identifiers([{"type": "permanent-identifier", "value": value}]) == [
        Identifier("permanent-identifier", value)
    ]


@pytest.mark.parametrize(
    "value", ["", "/1.2.3", "X/", "X/1.2.03", "X/3.1", "X/1.40", "X/1.2/3", "a/b"]
)
def test_values_outside_the_abnf_are_malformed(value: str) -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers([{"type": "permanent-identifier", "value": value}])
    assert caught.value.kind is ErrorKind.MALFORMED


def test_other_identifier_types_are_unsupported() -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers([{"type": "email", "value": "a@example.com"}])
    assert caught.value.kind is ErrorKind.UNSUPPORTED_IDENTIFIER
    assert caught.value.identifier == Identifier("email", "a@example.com")


def test_server_names_are_parsed_and_deduplicated() -> None:
    raw = [
        {"type": "dns", "value": "a.example.com"},
        {"type": "ip", "value": "192.0.2.1"},
        {"type": "dns", "value": "a.example.com"},
    ]
    assert parse_identifiers(raw) == [
        Identifier("dns", "a.example.com"),
        Identifier("ip", "192.0.2.1"),
    ]


def test_a_device_and_a_server_name_never_share_an_order() -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers(
            [
                {"type": "permanent-identifier", "value": "C02ZC2QYLVDL"},
                {"type": "dns", "value": "a.example.com"},
            ]
        )
    assert caught.value.kind is ErrorKind.REJECTED_IDENTIFIER
    assert "never both" in caught.value.detail


def test_an_order_names_one_device() -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers(
            [
                {"type": "permanent-identifier", "value": "A"},
                {"type": "permanent-identifier", "value": "B"},
            ]
        )
    assert caught.value.kind is ErrorKind.MALFORMED


@pytest.mark.parametrize("raw", [None, [], {}, [{"type": "permanent-identifier"}], ["x"]])
def test_missing_or_odd_identifiers_are_malformed(raw: object) -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers(raw)
    assert caught.value.kind is ErrorKind.MALFORMED


def test_control_characters_are_rejected() -> None:
    with pytest.raises(AcmeError) as caught:
        parse_identifiers([{"type": "permanent-identifier", "value": "AB\nC"}])
    assert caught.value.kind is ErrorKind.REJECTED_IDENTIFIER
