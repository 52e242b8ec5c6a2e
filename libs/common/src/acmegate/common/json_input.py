"""Decoding JSON that came from outside: the one decoder every edge uses, with its guards.

msgspec decodes fast, but on hostile input it raises what no caller expects from a decoder:
``UnicodeDecodeError`` for bytes that are not UTF-8 (RFC 8259 §8.1: JSON exchanged between
systems is UTF-8) and ``RecursionError`` for arrays or objects nested deeper than the
interpreter's recursion limit. :func:`decode_json` refuses both, documents larger than a size
limit and nesting deeper than a depth limit, always as :class:`JsonInputError`, so the ACME
JWS parser, the admin API and the RADIUS endpoint each turn one exception into their own 4xx.

No honest client nests deeper than a handful of levels (a JWS header with its ``jwk``, an
rlm_rest attribute list), so the depth limit is far from anything legitimate.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload

import msgspec

T = TypeVar("T")

MAX_DEPTH = 32
MAX_BYTES = 1024 * 1024

# A string (skipped whole, escapes included; an unterminated one runs to the end, so the scan
# stays linear) or one bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)
_OPENING = frozenset(b"[{")
_CLOSING = frozenset(b"]}")


class JsonInputError(ValueError):
    """The input is not acceptable JSON; the message says why, for a client to read."""


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than ``limit`` levels."""
    # Fewer opening brackets than the limit cannot nest deeper: the usual case costs two
    # C-speed counts and no scan.
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(data):
        first = data[match.start()]
        if first in _OPENING:
            depth += 1
            if depth > limit:
                return True
        elif first in _CLOSING:
            depth -= 1
    return False


@overload
def decode_json(data: bytes, *, max_depth: int = ..., max_bytes: int = ...) -> Any: ...


@overload
def decode_json(data: bytes, *, type: type[T], max_depth: int = ..., max_bytes: int = ...) -> T: ...


def decode_json(
    data: bytes,
    *,
    type: Any = Any,
    max_depth: int = MAX_DEPTH,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """``data`` decoded (as ``type`` when given); :class:`JsonInputError` if unacceptable.

    A ``type`` mismatch is reported with msgspec's message, which names the key
    (``Expected `str`, got `int` - at `$.reason```).
    """
    if len(data) > max_bytes:
        raise JsonInputError(f"larger than {max_bytes} bytes")
    if nesting_exceeds(data, max_depth):
        raise JsonInputError(f"arrays or objects nested deeper than {max_depth} levels")
    try:
        return msgspec.json.decode(data, type=type)
    except UnicodeDecodeError:
        raise JsonInputError("not UTF-8 (RFC 8259 §8.1)") from None
    except msgspec.ValidationError as exc:
        raise JsonInputError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise JsonInputError(f"not JSON ({exc})") from None
    except RecursionError:  # the guard above makes this unreachable; kept as a backstop
        raise JsonInputError("arrays or objects nested too deep") from None
