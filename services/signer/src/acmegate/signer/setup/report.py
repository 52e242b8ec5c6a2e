"""``acmegate ca list``: what each configured CA is, where its key lives, and whether it works.

Unlike start-up loading (:mod:`acmegate.signer.authorities`), a report never stops at the
first problem: each CA is described as far as its files allow, and what is wrong is said
next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acmegate.common.clock import Clock, SystemClock
from acmegate.common.config import Config
from acmegate.common.config.model import CertificateAuthorityConfig
from acmegate.signer.authorities import KeyOpener, PublicationUrls, close_key
from acmegate.signer.ca_key import CaKeyError, describe_public_key
from acmegate.signer.chains import (
    ChainError,
    check_issuer_chain,
    check_issuing_ca,
    describe,
    load_pem_certificates,
    same_public_key,
)
from acmegate.signer.keys import describe_key_storage, open_ca_key


@dataclass
class CaReport:
    """One CA as ``ca list`` shows it."""

    name: str
    description: str
    # Subjects from the CA up to the root, as the configured chain has them.
    chain: list[str] = field(default_factory=list)
    not_before: datetime | None = None
    not_after: datetime | None = None
    key_algorithm: str | None = None
    key_storage: str = ""
    # True: the key opened and matches the certificate; False: it does not match; None:
    # it could not be checked (see problems).
    key_matches: bool | None = None
    crl_url: str | None = None
    ocsp_url: str | None = None
    problems: list[str] = field(default_factory=list)


def report_ca(
    config: CertificateAuthorityConfig,
    *,
    base_url: str | None = None,
    check_key: bool = True,
    open_key: KeyOpener = open_ca_key,
    clock: Clock | None = None,
) -> CaReport:
    """Describe one configured CA; opens its key only with ``check_key``."""
    report = CaReport(config.name, config.description, key_storage=describe_key_storage(config))
    if base_url:
        urls = PublicationUrls.for_ca(base_url, config)
        report.crl_url, report.ocsp_url = urls.crl, urls.ocsp
    certificate = _read_one(config.certificate, report)
    if certificate is None:
        return report
    chain: list[x509.Certificate] = []
    for path in config.chain:
        chain.extend(_read_all(path, report))
    report.chain = [describe(c) for c in (certificate, *chain)]
    report.not_before = certificate.not_valid_before_utc
    report.not_after = certificate.not_valid_after_utc
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        report.key_algorithm = describe_public_key(public_key)
    else:
        report.key_algorithm = type(public_key).__name__
        report.problems.append("a CA key must be RSA or EC")
    now = (clock or SystemClock()).now()
    try:
        check_issuing_ca(certificate, now=now)
    except ChainError as exc:
        report.problems.append(f"certificate: {exc}")
    try:
        check_issuer_chain(certificate, chain, now=now)
    except ChainError as exc:
        report.problems.append(f"chain: {exc}")
    if check_key:
        try:
            key = open_key(config.name, config.key)
        except CaKeyError as exc:
            report.problems.append(f"key: {exc}")
        else:
            try:
                report.key_matches = same_public_key(key.public_key(), public_key)
                if not report.key_matches:
                    report.problems.append(f"key: {key.description} does not match the certificate")
            finally:
                close_key(key)
    return report


def report_authorities(
    config: Config, *, check_keys: bool = True, clock: Clock | None = None
) -> list[CaReport]:
    """A report per configured CA, in configuration order."""
    base_url = config.pki.base_url if config.pki is not None else None
    return [
        report_ca(ca, base_url=base_url, check_key=check_keys, clock=clock)
        for ca in config.certificate_authorities
    ]


def _read_all(path: str, report: CaReport) -> list[x509.Certificate]:
    try:
        return load_pem_certificates(Path(path).read_bytes(), what=path)
    except OSError as exc:
        report.problems.append(f"cannot read {path}: {exc.strerror}")
    except ChainError as exc:
        report.problems.append(str(exc))
    return []


def _read_one(path: str, report: CaReport) -> x509.Certificate | None:
    certificates = _read_all(path, report)
    if len(certificates) > 1:
        report.problems.append(f"{path} holds {len(certificates)} certificates")
    return certificates[0] if certificates else None
