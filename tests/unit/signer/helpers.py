"""Small helpers of the signer's unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PASSPHRASE = "correct horse battery staple"


def openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with ``args``; its output tells why when it fails."""
    return subprocess.run(["openssl", "verify", *args], capture_output=True, text=True, check=False)


def pkilint(tool: str, *args: str) -> str:
    """The findings a pkilint tool (``lint_pkix_cert``, ``lint_crl``, ``lint_ocsp_response``)
    reports; installed next to this interpreter."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / tool), "lint", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def serious_findings(report: str) -> list[str]:
    """pkilint findings above INFO/NOTICE (ERROR, WARNING, FATAL)."""
    return [
        line.strip()
        for line in report.splitlines()
        if any(f"({level})" in line for level in ("ERROR", "WARNING", "FATAL"))
    ]


def lint_certificate(der: bytes) -> list[str]:
    """pkilint's RFC 5280 ("PKIX") certificate validations, in process (what
    ``lint_pkix_cert`` runs): the findings of severity WARNING and above."""
    from pkilint import loader
    from pkilint.pkix import certificate, extension, name
    from pkilint.validation import ValidationFindingSeverity

    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
    serious = {
        ValidationFindingSeverity.WARNING,
        ValidationFindingSeverity.ERROR,
        ValidationFindingSeverity.FATAL,
    }
    return [
        f"{description.finding.code} ({description.finding.severity.name}): "
        f"{description.message or ''} @ {result.node.path}"
        for result in validator.validate(document.root)
        for description in result.finding_descriptions
        if description.finding.severity in serious
    ]
