"""The two ways the attestation stage turns a client down.

Every client-caused failure of a challenge is ``badAttestationStatement``
(draft-ietf-acme-device-attest §5: "If any of the steps fail, then the Server MUST respond …
with a badAttestationStatement error"), and every finalize failure of this stage is ``badCSR``
(RFC 8555 §7.4). Details say what is wrong, never secrets.
"""

from __future__ import annotations

from acmegate.common.errors import AcmeError, ErrorKind


def bad_attestation(detail: str) -> AcmeError:
    """The attestation statement is unacceptable (the challenge becomes ``invalid``)."""
    return AcmeError(ErrorKind.BAD_ATTESTATION_STATEMENT, detail)


def bad_csr(detail: str) -> AcmeError:
    """The finalize CSR is unacceptable (the order becomes ``invalid``)."""
    return AcmeError(ErrorKind.BAD_CSR, detail)
