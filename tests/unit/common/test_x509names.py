"""The hand-written DER of otherName values equals pyasn1's, and decodes back."""

from __future__ import annotations

import pytest
from pyasn1.codec.der import encoder
from pyasn1.type import char, univ

from acmegate.common.x509names import (
    _PermanentIdentifier,
    decode_permanent_identifier,
    decode_utf8_string,
    encode_permanent_identifier,
    encode_utf8_string,
)


@pytest.mark.parametrize(
    ("value", "assigner"),
    [
        ("C02ZC2QYLVDL", None),
        ("ABCDEF123456", "1.2.3.4"),
        ("x" * 200, "2.999.1234567"),
        (None, "1.3.6.1.4.1.311.20.2.3"),
        ("é", None),
    ],
)
def test_permanent_identifier_der_matches_pyasn1(value: str | None, assigner: str | None) -> None:
    reference = _PermanentIdentifier()
    if value is not None:
        reference["identifierValue"] = char.UTF8String(value)
    if assigner is not None:
        reference["assigner"] = univ.ObjectIdentifier(assigner)
    expected = bytes(encoder.encode(reference))
    assert encode_permanent_identifier(value, assigner) == expected
    assert decode_permanent_identifier(expected) == (value, assigner)


@pytest.mark.parametrize("value", ["llama@corp", "é" * 100, "x" * 300])
def test_utf8_string_der_matches_pyasn1(value: str) -> None:
    assert encode_utf8_string(value) == bytes(encoder.encode(char.UTF8String(value)))
    assert decode_utf8_string(encode_utf8_string(value)) == value


@pytest.mark.parametrize("assigner", ["3.1", "1.40", "1", "a.b"])
def test_an_invalid_assigner_is_refused(assigner: str) -> None:
    with pytest.raises(ValueError):
        encode_permanent_identifier("X", assigner)
