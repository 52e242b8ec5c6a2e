"""Certificate serial numbers: how they are drawn and how they are written.

RFC 5280 §4.1.2.2: positive, unique per CA, at most 20 octets; the CA/Browser Forum asks for at
least 64 bits from a CSPRNG. Boulder draws 136 random bits (its ``ca`` package's serial generation);
we draw 127 and set bit 128, so every serial is 128 bits long (17 DER octets with the sign byte),
always positive, and its hex form always has 32 digits, which keeps text comparisons sound.
"""

from __future__ import annotations

import secrets

SERIAL_BITS = 128


def new_serial() -> int:
    """A fresh random serial: 127 random bits below a fixed top bit."""
    return (1 << (SERIAL_BITS - 1)) | secrets.randbits(SERIAL_BITS - 1)


def serial_hex(serial: int) -> str:
    """The stored and published form: lower-case hex without separators."""
    return format(serial, "x")


def parse_serial(text: str) -> str:
    """Normalise a serial given as hex (any case, optional ``:`` separators, ``0x``, leading
    zeros) to :func:`serial_hex` form; ``ValueError`` if it is not one."""
    cleaned = text.strip().replace(":", "").lower().removeprefix("0x")
    if not cleaned or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError(f"not a hexadecimal serial number: {text!r}")
    return serial_hex(int(cleaned, 16))
