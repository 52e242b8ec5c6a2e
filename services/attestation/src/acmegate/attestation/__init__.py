"""acmegate's attestation service: verifies Apple Managed Device Attestation (device-attest-01)
and binds the finalize CSR to the attested key.

- :mod:`.device_attest` — the challenge payload → attestation object → format registry;
- :mod:`.apple` — the ``apple`` format (x5c chain, freshness code, device properties);
- :mod:`.roots` — trust roots per provider (Apple's real root ships in ``data/``);
- :mod:`.csr` — the finalize checks (signature, attested key, names);
- :mod:`.service` — the bus consumer.
"""

from acmegate.attestation.roots import dev_providers, validate_config
from acmegate.attestation.service import AttestationService

__all__ = ["AttestationService", "dev_providers", "validate_config"]
