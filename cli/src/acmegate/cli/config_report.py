"""What ``acmegate config check`` says beyond the errors: gaps and notes.

A configuration can be valid and still issue nothing — the empty file is valid. Such *gaps*
make ``config check`` exit 1 instead of printing OK. *Notes* are things an operator should know
that do not stop a gateway from working (a plain-http directory URL, a non-Apple root).
"""

from __future__ import annotations

from acmegate.common.config import Config


def gaps(config: Config) -> list[str]:
    """Why a gateway with ``config`` could not issue a single certificate."""
    found = []
    if not config.certificate_authorities:
        found.append(
            "certificate_authorities is empty: nothing can be signed (create one with "
            "`acmegate ca init`)"
        )
    if not config.certificate_templates:
        found.append("certificate_templates is empty: no certificate can be described")
    if not config.enrollment_policies:
        found.append("enrollment_policies is empty: every enrollment is refused")
    return found


def notes(config: Config) -> list[str]:
    """What the operator should know about ``config`` although it works."""
    found = []
    if config.server.base_url.startswith("http://"):
        found.append(
            f"the ACME directory is {config.server.base_url}/acme/directory: Apple devices "
            "accept only https:// (set server.tls, or external_url behind a TLS proxy); "
            "simulated devices do not mind"
        )
    dev = [p.name for p in config.attestation_providers if p.roots]
    if dev:
        found.append(
            f"attestation provider(s) {', '.join(dev)} trust roots of their own, not Apple's: "
            "for development and tests only"
        )
    return found
