"""The two ways the attestation stage turns a client down.

Every client-caused failure of a challenge is ``badAttestationStatement``
(draft-ietf-acme-device-attest §5: "If any of the steps fail, then the Server MUST respond …
with a badAttestationStatement error"), and every finalize failure of this stage is ``badCSR``
(RFC 8555 §7.4). Details say what is wrong, never secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import DeviceClaims


def bad_attestation(detail: str) -> AcmeError:
    """The attestation statement is unacceptable (the challenge becomes ``invalid``)."""
    return AcmeError(ErrorKind.BAD_ATTESTATION_STATEMENT, detail)


def bad_csr(detail: str) -> AcmeError:
    """The finalize CSR is unacceptable (the order becomes ``invalid``)."""
    return AcmeError(ErrorKind.BAD_CSR, detail)


@dataclass
class AttestedFailure(AcmeError):
    """A challenge that failed after Apple's chain verified (a stale freshness code, or the
    attested device is not the one the order names): ``attested`` is who Apple vouched for.

    Only such a failure can be charged to a device's failed-validations limit: anyone can send
    a forged statement naming a serial number, and charging those to the serial would let an
    attacker lock a managed device out (docs/configuration.md, ``rate_limits``).
    """

    attested: DeviceClaims | None = None

    @classmethod
    def wrap(cls, error: AcmeError, attested: DeviceClaims) -> AttestedFailure:
        return cls(error.kind, error.detail, error.subproblems, error.identifier, attested=attested)
