"""A CA's certificate revocation list (RFC 5280 §5), built from the stored revocations.

Pure: :func:`build_crl` turns entries into a complete, unsigned CRL; the publisher
(:mod:`acmegate.signer.crl_publisher`) decides when, signs and stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from acmegate.signer.authorities import Authority
from acmegate.signer.db.crls import RevokedEntry
from acmegate.signer.revocation import reason_flag


def build_crl(
    authority: Authority,
    *,
    number: int,
    entries: Sequence[RevokedEntry],
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationListBuilder:
    """A v2 CRL of ``authority``: AKI and CRL number (both required by RFC 5280 §5.2.1,
    §5.2.3), one entry per revoked certificate with its reason code (absent for
    ``unspecified``, §5.3.1)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(authority.authority_key_identifier, critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial, 16))
            # X.509 times have whole seconds; the stored time may have more.
            .revocation_date(entry.revoked_at.replace(microsecond=0))
        )
        flag = reason_flag(entry.reason)
        if flag is not None:
            revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder
