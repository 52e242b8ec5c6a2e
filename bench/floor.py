"""The cryptographic floor of one enrollment, measured in this process at the start of a run.

The gateway must do, per enrollment, at least: one JWS verification per signed request (ES256,
RFC 8555 §6.2; the load generator counts them), two P-384 ECDSA verifications (the attestation
leaf's signature by Apple's intermediate, draft-ietf-acme-device-attest §5, and the CSR's
self-signature, RFC 2986 §3), and one signature of the certificate with the issuing CA's key.
Verifying Apple's intermediate against the root is left out: it is the same certificate for
every device, so it need not be verified per enrollment. Everything else the gateway spends is
overhead to compare with this floor (``floor ÷ gateway CPU``, measured side by side).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

# Sizes of what is signed, close to the gateway's inputs: a JWS signing input, an attestation
# leaf's TBSCertificate, a CSR's CertificationRequestInfo, a device certificate's TBS.
_JWS_INPUT = os.urandom(600)
_LEAF_TBS = os.urandom(900)
_CSR_INFO = os.urandom(250)
_CERT_TBS = os.urandom(700)


@dataclass(frozen=True)
class Floor:
    """Microseconds per operation and the resulting floor per enrollment."""

    es256_verify_us: float
    p384_verify_us: float
    ca_sign_us: float
    jws_per_enrollment: float
    ca_key_type: str

    @property
    def ms_per_enrollment(self) -> float:
        """The signature work no implementation can skip, in CPU milliseconds."""
        micro = (
            self.jws_per_enrollment * self.es256_verify_us
            + 2 * self.p384_verify_us
            + self.ca_sign_us
        )
        return micro / 1000

    def as_dict(self) -> dict[str, float | str]:
        """The figures for the JSON report."""
        return {
            "es256_verify_us": round(self.es256_verify_us, 1),
            "p384_verify_us": round(self.p384_verify_us, 1),
            "ca_sign_us": round(self.ca_sign_us, 1),
            "ca_key_type": self.ca_key_type,
            "jws_per_enrollment": round(self.jws_per_enrollment, 2),
            "ms_per_enrollment": round(self.ms_per_enrollment, 3),
        }


def _per_call_us(call: Callable[[], object], iterations: int) -> float:
    """The best of three batches, in µs per call: a floor, so the least disturbed batch."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(iterations):
            call()
        best = min(best, time.process_time() - began)
    return best / iterations * 1e6


def _ca_signer(key_type: str) -> Callable[[], object]:
    if key_type == "ec-p256":
        p256 = ec.generate_private_key(ec.SECP256R1())
        return lambda: p256.sign(_CERT_TBS, ec.ECDSA(hashes.SHA256()))
    if key_type == "ec-p384":
        p384 = ec.generate_private_key(ec.SECP384R1())
        return lambda: p384.sign(_CERT_TBS, ec.ECDSA(hashes.SHA384()))
    if key_type.startswith("rsa-"):
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
        return lambda: rsa_key.sign(_CERT_TBS, PKCS1v15(), hashes.SHA256())
    if key_type == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        return lambda: ed_key.sign(_CERT_TBS)
    raise ValueError(f"unknown CA key type {key_type!r}")


def measure(jws_per_enrollment: float, *, ca_key_type: str, iterations: int = 200) -> Floor:
    """Time the floor's operations with ``cryptography`` (OpenSSL), as the gateway does them."""
    account = ec.generate_private_key(ec.SECP256R1())
    jws_signature = account.sign(_JWS_INPUT, ec.ECDSA(hashes.SHA256()))
    account_public = account.public_key()
    intermediate = ec.generate_private_key(ec.SECP384R1())
    leaf_signature = intermediate.sign(_LEAF_TBS, ec.ECDSA(hashes.SHA384()))
    intermediate_public = intermediate.public_key()
    device = ec.generate_private_key(ec.SECP384R1())
    csr_signature = device.sign(_CSR_INFO, ec.ECDSA(hashes.SHA384()))
    device_public = device.public_key()

    def verify_p384_pair() -> None:
        intermediate_public.verify(leaf_signature, _LEAF_TBS, ec.ECDSA(hashes.SHA384()))
        device_public.verify(csr_signature, _CSR_INFO, ec.ECDSA(hashes.SHA384()))

    es256 = _per_call_us(
        lambda: account_public.verify(jws_signature, _JWS_INPUT, ec.ECDSA(hashes.SHA256())),
        iterations,
    )
    p384 = _per_call_us(verify_p384_pair, iterations // 2) / 2
    sign = _per_call_us(_ca_signer(ca_key_type), iterations)
    return Floor(es256, p384, sign, jws_per_enrollment, ca_key_type)
