"""A folder of CRLs that OpenSSL-based relying parties (FreeRADIUS ``ca_path``) can read.

OpenSSL's hashed-directory lookup finds a CRL by the hash of its issuer's name: a file (or
link) ``<hash>.r<n>`` (``man openssl-rehash``). :func:`write_crls` writes each CA's CRL as
``<ca>.crl.pem`` and keeps those links current, as ``openssl rehash`` would make them, so a
timer can run ``acmegate crl sync`` without any other tool. Every file is replaced atomically
(written beside, then renamed), so a reader never sees half a CRL, and a CRL is never replaced
by one with a lower CRL number (RFC 5280 §5.2.3: numbers only grow; an older one would bring
back certificates revoked since).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acmegate.signer import der
from acmegate.signer.setup.files import replace_file

SUFFIX = ".crl.pem"
_LINK = re.compile(r"^[0-9a-f]{8}\.r[0-9]+$")

# The string types OpenSSL canonicalises for name hashes (x_name.c, ASN1_MASK_CANON), by their
# universal tag, and how each is decoded (T61String is read as Latin-1, as OpenSSL does).
_DECODE = {
    12: "utf-8",  # UTF8String
    19: "latin-1",  # PrintableString
    20: "latin-1",  # T61String
    22: "latin-1",  # IA5String
    26: "latin-1",  # VisibleString
    28: "utf-32-be",  # UniversalString
    30: "utf-16-be",  # BMPString
}
_UTF8_STRING = 12
_SET = 0x31
_SPACES = " \t\n\v\f\r"
_RUNS_OF_SPACE = re.compile(f"[{re.escape(_SPACES)}]+")


class CrlSyncError(Exception):
    """A CRL that must not be written (wrong issuer, bad signature, older than the one kept)."""


def _canonical_value(tag: int, content: bytes) -> bytes:
    """A name's attribute value as OpenSSL canonicalises it for hashing: a UTF8String without
    leading and trailing white space, inner runs of it collapsed to one space, ASCII letters
    lower-cased; values of other types are kept as they are."""
    encoding = _DECODE.get(tag)
    if encoding is None:
        return der.tlv(tag, content)
    text = _RUNS_OF_SPACE.sub(" ", content.decode(encoding).strip(_SPACES))
    folded = "".join(c.lower() if c.isascii() else c for c in text)
    return der.tlv(_UTF8_STRING, folded.encode("utf-8"))


def name_hash(name: x509.Name) -> str:
    """OpenSSL's ``X509_NAME_hash`` (``openssl x509 -hash``, ``openssl crl -hash``): the first
    four octets of SHA-1 over the canonical RDNs (without the outer SEQUENCE), little-endian,
    as 8 hex digits."""
    data = name.public_bytes()
    canonical = b""
    for rdn in der.children(data, der.read_tlv(data)):
        members = []
        for pair in der.children(data, rdn):
            oid, value = der.children(data, pair)
            members.append(
                der.sequence(oid.whole(data), _canonical_value(value.tag, value.value(data)))
            )
        # DER orders the members of a SET OF by their encodings (X.690 §11.6).
        canonical += der.tlv(_SET, b"".join(sorted(members)))
    digest = hashlib.sha1(canonical, usedforsecurity=False).digest()
    return format(int.from_bytes(digest[:4], "little"), "08x")


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def check_crl(ca: str, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    """``CrlSyncError`` unless ``crl`` is ``issuer``'s, signed by it."""
    if crl.issuer != issuer.subject:
        raise CrlSyncError(
            f"{ca}: the CRL was issued by {crl.issuer.rfc4514_string()}, "
            f"not by the CA {issuer.subject.rfc4514_string()}"
        )
    public_key = issuer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or (
        not crl.is_signature_valid(public_key)
    ):
        raise CrlSyncError(f"{ca}: the CRL's signature does not verify with the CA certificate")


@dataclass(frozen=True)
class Written:
    """What :func:`write_crl` did for one CA."""

    path: Path
    number: int | None
    replaced: bool  # False: the file already held this very CRL


def write_crl(directory: Path, ca: str, crl: x509.CertificateRevocationList) -> Written:
    """Write ``crl`` as ``<directory>/<ca>.crl.pem`` unless that file holds a newer one."""
    path = directory / f"{ca}{SUFFIX}"
    pem = crl.public_bytes(serialization.Encoding.PEM)
    number = crl_number(crl)
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current == pem:
        return Written(path, number, replaced=False)
    if current is not None:
        try:
            kept = crl_number(x509.load_pem_x509_crl(current))
        except ValueError:
            kept = None  # a damaged file: replace it
        if kept is not None and number is not None and kept > number:
            raise CrlSyncError(
                f"{ca}: {path} holds CRL number {kept}, newer than number {number} from the "
                "source; kept it (is the source a replica that lags?)"
            )
    replace_file(path, pem)
    return Written(path, number, replaced=True)


def rehash(directory: Path) -> dict[str, str]:
    """Make ``<hash>.r<n>`` links for every ``*.crl.pem`` in ``directory`` (as ``openssl
    rehash`` does for CRLs) and drop links that no longer fit; returns link → file."""
    wanted: dict[str, str] = {}
    by_hash: dict[str, list[str]] = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            crl = x509.load_pem_x509_crl(path.read_bytes())
        except ValueError:
            continue
        by_hash.setdefault(name_hash(crl.issuer), []).append(path.name)
    for digest, names in by_hash.items():
        for index, name in enumerate(names):
            wanted[f"{digest}.r{index}"] = name
    for link, target in wanted.items():
        path = directory / link
        if path.is_symlink() and os.readlink(path) == target:
            continue
        temporary = directory / f".{link}.tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target)
        os.replace(temporary, path)
    for path in directory.iterdir():
        if _LINK.match(path.name) and path.is_symlink() and path.name not in wanted:
            path.unlink()
    return wanted


def write_crls(
    directory: Path, crls: Sequence[tuple[str, x509.CertificateRevocationList]]
) -> list[Written]:
    """Write each CA's CRL (see :func:`write_crl`), then the hash links."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [write_crl(directory, ca, crl) for ca, crl in crls]
    rehash(directory)
    return written
