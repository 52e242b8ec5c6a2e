"""The one decoder of outside JSON: every way hostile bytes fail is one JsonInputError."""

from __future__ import annotations

import msgspec
import pytest

from acmegate.common.json_input import JsonInputError, decode_json, nesting_exceeds


class Body(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


def test_ordinary_json_decodes_as_msgspec_would() -> None:
    data = b'{"identifiers": [{"type": "permanent-identifier", "value": "C02"}]}'
    assert decode_json(data) == msgspec.json.decode(data)
    assert decode_json(b'{"reason": "x"}', type=Body) == Body("x")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 32 levels"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested deeper than 32 levels"),
        (b"[" * 33 + b"]" * 33, "nested deeper than 32 levels"),
        (b"{", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_hostile_bytes_are_one_error_saying_why(data: bytes, reason: str) -> None:
    with pytest.raises(JsonInputError, match=reason):
        decode_json(data)


def test_a_type_mismatch_names_the_key() -> None:
    with pytest.raises(JsonInputError, match=r"Expected `str`, got `int` - at `\$.reason`"):
        decode_json(b'{"reason": 1}', type=Body)


def test_the_size_limit() -> None:
    with pytest.raises(JsonInputError, match="larger than 10 bytes"):
        decode_json(b'"0123456789"', max_bytes=10)


def test_depth_counts_brackets_outside_strings_only() -> None:
    inside = b'["' + b"[{" * 100 + b'\\"]]"]'
    assert not nesting_exceeds(inside, 4)
    assert decode_json(inside, max_depth=4) == ["[{" * 100 + '"]]']
    assert decode_json(b"[" * 32 + b"]" * 32) is not None
    assert nesting_exceeds(b'[["x", [[[', 4)


@pytest.mark.timeout(10)
def test_the_depth_scan_stays_linear_on_unterminated_strings() -> None:
    # One quote, then escaped quotes: every quote opens a string that never closes. A naive
    # pattern rescans to the end from each of them (quadratic: minutes for this input); this
    # one consumes the rest at once.
    data = b"[" * 40 + b'"' + b'\\"' * 100000
    assert not nesting_exceeds(data, 64)
    with pytest.raises(JsonInputError):
        decode_json(data, max_depth=64)
