"""Certificates, CRLs, OCSP responses and CSRs signed by a key that is not in this process.

``cryptography`` builds and encodes only with a private key object in hand. For a key in a
token we let it sign with a *stand-in* key of the same algorithm: the TBS part it encodes names
the signature algorithm (``ecdsa-with-SHA384``, ``sha256WithRSAEncryption``) but nothing else
of the signing key, so it is exactly the TBS the real key must sign. The token signs those
bytes, and :mod:`acmegate.signer.der` swaps its signature in. Every result is verified with the
CA's public key before it is returned: a wrong key label or a token fault never yields a
certificate that relying parties would reject.

All functions here block (the token call); callers run them in a worker thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import ocsp

from acmegate.signer import der
from acmegate.signer.ca_key import CaKeyError, CaPrivateKey, CaPublicKey, HashName, hash_algorithm

# Signs TBS bytes with the real key; returns the signature as the BIT STRING carries it
# (DER ECDSA-Sig-Value, or the RSASSA-PKCS1-v1_5 octets).
TbsSigner = Callable[[bytes, HashName], bytes]

# RFC 8017 §9.2 note 1: the DER DigestInfo prefix for each hash, for a raw CKM_RSA_PKCS.
_DIGEST_INFO: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def digest(data: bytes, hash_name: HashName) -> bytes:
    """The hash of ``data`` (what a token's plain ECDSA / RSA mechanism is given)."""
    return hashlib.new(hash_name, data).digest()


def rsa_digest_info(data: bytes, hash_name: HashName) -> bytes:
    """DigestInfo(hash(data)): the input of CKM_RSA_PKCS for a PKCS#1 v1.5 signature."""
    return _DIGEST_INFO[hash_name] + digest(data, hash_name)


def ecdsa_der_signature(raw: bytes) -> bytes:
    """PKCS#11 CKM_ECDSA returns r‖s (each half the length); X.509 wants ECDSA-Sig-Value."""
    if not raw or len(raw) % 2:
        raise CaKeyError(f"the token returned an ECDSA signature of odd length {len(raw)}")
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def verify_signature(
    public_key: CaPublicKey, signature: bytes, data: bytes, hash_name: HashName
) -> None:
    """``CaKeyError`` unless ``signature`` over ``data`` verifies with ``public_key``."""
    algorithm = hash_algorithm(hash_name)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature as exc:
        raise CaKeyError(
            "the token's signature does not verify with the CA public key "
            "(is the key label the one the certificate was issued for?)"
        ) from exc


def stand_in_key(public_key: CaPublicKey) -> CaPrivateKey:
    """A throw-away key of the same algorithm, only ever used to encode TBS structures.

    RSA's AlgorithmIdentifier does not depend on the modulus size, so a 2048-bit stand-in
    serves every RSA CA (and costs a fraction of generating a 4096-bit one).
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(public_key.curve)


class ExternalSigner:
    """Builds signed X.509 structures whose signature comes from ``sign`` (module doc)."""

    def __init__(self, public_key: CaPublicKey, sign: TbsSigner) -> None:
        self._public_key = public_key
        self._sign = sign
        self._stand_in = stand_in_key(public_key)
        self._stand_in_certificates: dict[x509.Name, x509.Certificate] = {}

    @property
    def public_key(self) -> CaPublicKey:
        return self._public_key

    def _signature(self, tbs: bytes, hash_name: HashName) -> bytes:
        signature = self._sign(tbs, hash_name)
        verify_signature(self._public_key, signature, tbs, hash_name)
        return signature

    def certificate(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        draft = builder.sign(self._stand_in, hash_algorithm(hash_name))
        tbs = draft.tbs_certificate_bytes
        signed = der.with_signature(
            draft.public_bytes(serialization.Encoding.DER), self._signature(tbs, hash_name)
        )
        certificate = x509.load_der_x509_certificate(signed)
        # Parsing back and checking again guards the splice itself.
        verify_signature(
            self._public_key, certificate.signature, certificate.tbs_certificate_bytes, hash_name
        )
        return certificate

    def crl(
        self, builder: x509.CertificateRevocationListBuilder, hash_name: HashName
    ) -> x509.CertificateRevocationList:
        draft = builder.sign(self._stand_in, hash_algorithm(hash_name))
        signed = der.with_signature(
            draft.public_bytes(serialization.Encoding.DER),
            self._signature(draft.tbs_certlist_bytes, hash_name),
        )
        crl = x509.load_der_x509_crl(signed)
        if not crl.is_signature_valid(self._public_key):
            raise CaKeyError("the spliced CRL signature does not verify")
        return crl

    def ocsp_response(
        self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, hash_name: HashName
    ) -> ocsp.OCSPResponse:
        """Signed as ``responder``, named by subject (ResponderID byName, RFC 6960 §4.2.1):
        ``cryptography`` wants the responder certificate to hold the signing key, so the
        stand-in signs as a stand-in certificate with the responder's subject, which
        encodes the same ResponderID."""
        stand_in_responder = self._stand_in_certificate(responder.subject)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, stand_in_responder)
        draft = builder.sign(self._stand_in, hash_algorithm(hash_name))
        signed = der.ocsp_with_signature(
            draft.public_bytes(serialization.Encoding.DER),
            self._signature(draft.tbs_response_bytes, hash_name),
        )
        response = ocsp.load_der_ocsp_response(signed)
        verify_signature(
            self._public_key, response.signature, response.tbs_response_bytes, hash_name
        )
        return response

    def _stand_in_certificate(self, subject: x509.Name) -> x509.Certificate:
        cached = self._stand_in_certificates.get(subject)
        if cached is None:
            now = datetime.now(UTC)
            cached = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(self._stand_in.public_key())
                .serial_number(1)
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=1))
                .sign(self._stand_in, hashes.SHA256())
            )
            self._stand_in_certificates[subject] = cached
        return cached

    def csr(self, subject: x509.Name, hash_name: HashName) -> x509.CertificateSigningRequest:
        """A PKCS#10 request (RFC 2986 §4.1) for this key, without attributes.

        The request info holds the *real* public key, so it is encoded here rather than by a
        builder (which would put the stand-in's key in it).
        """
        spki = self._public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        info = der.sequence(
            der.tlv(0x02, b"\x00"),  # version v1(0)
            subject.public_bytes(),
            spki,
            der.tlv(der.CONTEXT_0, b""),  # attributes [0] IMPLICIT SET OF: none
        )
        # The AlgorithmIdentifier exactly as cryptography writes it for this algorithm.
        reference = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(self._stand_in, hash_algorithm(hash_name))
        )
        algorithm = der.split_signed(reference.public_bytes(serialization.Encoding.DER)).algorithm
        signed = der.sequence(info, algorithm, der.bit_string(self._signature(info, hash_name)))
        request = x509.load_der_x509_csr(signed)
        if not request.is_signature_valid:
            raise CaKeyError("the spliced CSR signature does not verify")
        return request
