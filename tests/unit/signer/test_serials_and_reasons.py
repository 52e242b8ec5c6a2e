"""Serial numbers and revocation reasons as the CLI and other services write them."""

from __future__ import annotations

import pytest

from acmegate.signer.revocation import parse_reason
from acmegate.signer.serials import new_serial, parse_serial, serial_hex


def test_serials_print_as_32_lower_case_hex_digits() -> None:
    text = serial_hex(new_serial())
    assert len(text) == 32 and text == text.lower() and int(text, 16) > 0


@pytest.mark.parametrize(
    "given", ["8f3a00000000000000000000000000c1", "8F:3A:00:00:00:00:00:00:00:00:00:00:00:00:00:C1",
              "0x8f3a00000000000000000000000000c1", "008f3a00000000000000000000000000c1"],
)  # fmt: skip
def test_a_serial_is_found_however_it_is_written(given: str) -> None:
    assert parse_serial(given) == "8f3a00000000000000000000000000c1"


@pytest.mark.parametrize("given", ["", "xyz", "12 34", "-1"])
def test_a_serial_that_is_not_hex_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not a hexadecimal serial"):
        parse_serial(given)


@pytest.mark.parametrize(
    ("given", "name"),
    [("keyCompromise", "keyCompromise"), ("key_compromise", "keyCompromise"),
     ("1", "keyCompromise"), ("superseded", "superseded"), ("0", "unspecified"),
     ("CESSATION_OF_OPERATION", "cessationOfOperation")],
)  # fmt: skip
def test_revocation_reasons_are_rfc_5280_names(given: str, name: str) -> None:
    assert parse_reason(given) == name


@pytest.mark.parametrize("given", ["certificateHold", "6", "removeFromCRL", "8", "lost", "7"])
def test_holds_and_unknown_reasons_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match="unsupported revocation reason"):
        parse_reason(given)
