"""Just enough DER (X.690 §8, §10) to put a signature made elsewhere into a signed structure.

Certificates, CRLs and CSRs (RFC 5280 §4.1, §5.1; RFC 2986 §4) and the BasicOCSPResponse of
RFC 6960 §4.2.1 share one outer shape::

    SEQUENCE { tbs, signatureAlgorithm AlgorithmIdentifier, signature BIT STRING, ... }

so replacing the signature of a structure signed by a stand-in key is a matter of re-encoding
that outer SEQUENCE with a new BIT STRING; the TBS part is kept byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
BIT_STRING = 0x03
OCTET_STRING = 0x04
CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


@dataclass(frozen=True)
class Tlv:
    """One tag-length-value element inside a byte string."""

    tag: int
    start: int  # offset of the tag
    content: int  # offset of the first content byte
    end: int  # offset just past the content

    def value(self, data: bytes) -> bytes:
        return data[self.content : self.end]

    def whole(self, data: bytes) -> bytes:
        return data[self.start : self.end]


def read_tlv(data: bytes, offset: int = 0) -> Tlv:
    """The element starting at ``offset`` (single-byte tags only, definite lengths only)."""
    if offset + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags do not occur in these structures")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or position + count > len(data):
            raise DerError("unsupported or truncated DER length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > len(data):
        raise DerError("DER element runs past the end of the data")
    return Tlv(tag, offset, position, position + length)


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    """The elements inside a constructed element."""
    found = []
    position = parent.content
    while position < parent.end:
        child = read_tlv(data, position)
        found.append(child)
        position = child.end
    if position != parent.end:
        raise DerError("DER children overrun their parent")
    return found


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + encode_length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


def bit_string(data: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits), as signatures are."""
    return tlv(BIT_STRING, b"\x00" + data)


@dataclass(frozen=True)
class SignedParts:
    """The parts of a ``SEQUENCE { tbs, algorithm, signature, ...rest }``."""

    tbs: bytes
    algorithm: bytes
    signature: bytes
    rest: bytes  # whatever follows the signature (the `certs` of a BasicOCSPResponse)


def split_signed(der: bytes) -> SignedParts:
    """Take a signed structure apart (each part as its complete DER encoding)."""
    outer = read_tlv(der)
    if outer.tag != SEQUENCE or outer.end != len(der):
        raise DerError("a signed structure is one SEQUENCE")
    parts = children(der, outer)
    if len(parts) < 3 or parts[0].tag != SEQUENCE or parts[1].tag != SEQUENCE:
        raise DerError("expected SEQUENCE { tbs, algorithm, signature, ... }")
    if parts[2].tag != BIT_STRING:
        raise DerError("the signature is not a BIT STRING")
    signature = parts[2].value(der)
    if not signature or signature[0] != 0:
        raise DerError("a signature BIT STRING has no unused bits")
    return SignedParts(
        tbs=parts[0].whole(der),
        algorithm=parts[1].whole(der),
        signature=signature[1:],
        rest=b"".join(p.whole(der) for p in parts[3:]),
    )


def with_signature(der: bytes, signature: bytes) -> bytes:
    """``der`` (a signed structure) with its signature replaced; everything else unchanged."""
    parts = split_signed(der)
    return sequence(parts.tbs, parts.algorithm, bit_string(signature), parts.rest)


def ocsp_with_signature(der: bytes, signature: bytes) -> bytes:
    """An OCSPResponse (RFC 6960 §4.2.1) whose BasicOCSPResponse gets ``signature``.

    ``OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT
    SEQUENCE { responseType OID, response OCTET STRING } }``; ``response`` holds the DER of
    the BasicOCSPResponse, which is the signed structure.
    """
    outer = read_tlv(der)
    parts = children(der, outer)
    if outer.tag != SEQUENCE or len(parts) != 2 or parts[1].tag != CONTEXT_0:
        raise DerError("not a successful OCSPResponse")
    explicit = children(der, parts[1])
    if len(explicit) != 1 or explicit[0].tag != SEQUENCE:
        raise DerError("OCSPResponse responseBytes is not a SEQUENCE")
    response_bytes = children(der, explicit[0])
    if len(response_bytes) != 2 or response_bytes[1].tag != OCTET_STRING:
        raise DerError("OCSPResponse response is not an OCTET STRING")
    basic = with_signature(response_bytes[1].value(der), signature)
    return sequence(
        parts[0].whole(der),
        tlv(
            CONTEXT_0,
            sequence(response_bytes[0].whole(der), tlv(OCTET_STRING, basic)),
        ),
    )
