"""A simulated Apple device enrolling over ACME ``device-attest-01``.

It behaves like the OS client driven by a ``com.apple.security.acme`` payload
(docs/apple-attestation.md §1, §11): the device key (P-384 or P-256, "Secure Enclave") exists before
the server is contacted; the account key is P-256 / ES256, ``jwk`` on newAccount then ``kid``;
newOrder carries exactly one ``permanent-identifier`` = ClientIdentifier; the ``device-attest-01``
challenge is answered with ``{"attObj": base64url(canonical CBOR)}`` whose leaf, minted by the test
attestation CA, has freshness = SHA-256(token) (docs/apple-attestation.md §7); the CSR is signed by
the device key, CN = ClientIdentifier by default. :class:`DeviceMode` turns on one misbehaviour of
docs/apple-attestation.md §12 so negative tests can see the server refuse it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from acmegate.common import x509names
from acmegate.testkit.acme_session import (
    PEM_CHAIN_CONTENT_TYPE,
    AcmeProblem,
    AcmeProtocolError,
    AcmeResponse,
    AcmeSession,
)
from acmegate.testkit.apple_ca import (
    AttestationCA,
    ForeignKeyType,
    LeafClaims,
    foreign_public_key,
    write_file,
)
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from acmegate.testkit.csr import (
    SubjectAltNames,
    SubjectSpec,
    build_csr,
    subject_name,
)
from acmegate.testkit.jws import JwsSigner, LeadingZeros, b64url, key_authorization

_T = TypeVar("_T")

DEVICE_ATTEST_01 = "device-attest-01"
PERMANENT_IDENTIFIER = "permanent-identifier"
# Timing keys of the device's own work (EnrollmentResult.timings), besides the Stage values.
DEVICE_ATTESTATION = "device-attestation"
DEVICE_CSR = "device-csr"
DEFAULT_ERROR_MESSAGE = "attestation failed: device could not obtain an attestation"


class DeviceMode(enum.Enum):
    """What the device does differently from a genuine, healthy Apple device."""

    GENUINE = "genuine"
    """Everything as a real device does it (docs/apple-attestation.md §12)."""
    WRONG_TOKEN_HASH = "wrong-token-hash"  # noqa: S105 - a mode name, not a secret
    """Freshness = SHA-256 of the key authorization instead of the token (the confusion of
    docs/apple-attestation.md §7)."""
    STALE_ATTESTATION = "stale-attestation"
    """Freshness from a previous token: the last token this device saw, else that of a
    throw-away order created first (docs/apple-attestation.md §7)."""
    MISSING_FRESHNESS = "missing-freshness"
    """The leaf has no freshness OID 1.2.840.113635.100.8.11.1."""
    WRONG_ROOT = "wrong-root"
    """The leaf and intermediate come from another test "Apple" CA the gateway does not trust."""
    IDENTIFIER_MISMATCH = "identifier-mismatch"
    """The leaf attests another serial number and UDID than the ClientIdentifier."""
    CSR_KEY_MISMATCH = "csr-key-mismatch"
    """The attestation is genuine but the CSR carries (and is signed by) another key."""
    EMPTY_ATT_STMT = "empty-att-stmt"
    """``{"fmt":"apple","attStmt":{}}``, as a device that got no attestation may send
    (docs/apple-attestation.md §10)."""
    ERROR_PAYLOAD = "error-payload"
    """``{"error": "..."}`` instead of ``attObj`` (iOS 16 beta behaviour, docs/apple-attestation.md
    §3)."""
    REUSE_PREVIOUS_ATTESTATION = "reuse-previous-attestation"
    """The first enrollment is genuine; later ones resend its key and attestation
    (docs/apple-attestation.md §7)."""
    FOREIGN_KEY_TYPE = "foreign-key-type"
    """The leaf attests a key no Secure Enclave holds (``foreign_key_type``: RSA, DSA,
    Ed25519, Ed448, X25519, P-224 or P-521) instead of the device's P-256/P-384 key."""
    LEAF_FROM_ROOT = "leaf-from-root"
    """The leaf is signed by the root itself, not by the Sub CA (Apple's chain is always
    leaf → Enterprise Attestation Sub CA → root); x5c still carries the intermediate."""


class Stage(enum.StrEnum):
    """The step of an enrollment, in protocol order."""

    DIRECTORY = "directory"
    NEW_ACCOUNT = "newAccount"
    NEW_ORDER = "newOrder"
    AUTHORIZATION = "authorization"
    CHALLENGE = "challenge"
    FINALIZE = "finalize"
    ORDER = "order"
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class Attestation:
    """What the device answers a challenge with."""

    payload: dict[str, Any]
    """The JSON payload of the challenge POST."""
    att_obj: bytes | None = None
    """The CBOR attestation object (``None`` in the ``{"error": …}`` mode)."""
    leaf: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()
    """The ``x5c`` certificates (leaf, intermediate)."""
    token: str | None = None
    """The challenge token this answer was first made for."""
    freshness: bytes | None = None
    """The freshness code in the leaf (OID …8.11.1), ``None`` when absent."""


@dataclass
class EnrollmentResult:
    """Everything an enrollment saw: URLs, objects, the certificate chain or the problem."""

    client_identifier: str
    mode: DeviceMode
    account_url: str | None = None
    order_url: str | None = None
    authorization_url: str | None = None
    challenge_url: str | None = None
    finalize_url: str | None = None
    certificate_url: str | None = None
    token: str | None = None
    order: dict[str, Any] | None = None
    """The last order object seen."""
    authorization: dict[str, Any] | None = None
    challenge: dict[str, Any] | None = None
    """The challenge object the server answered the challenge POST with (or found later)."""
    attestation: Attestation | None = None
    csr: x509.CertificateSigningRequest | None = None
    certificate_chain_pem: str | None = None
    chain: list[x509.Certificate] = field(default_factory=list)
    problem: AcmeProblem | None = None
    """The problem that ended the enrollment (HTTP error or a challenge's/order's ``error``)."""
    failed_stage: Stage | None = None
    key: ec.EllipticCurvePrivateKey | None = None
    """The private key the CSR carried (the certificate's key once issued)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each step: a :class:`Stage` value (its requests, polls included) or
    the device's own work (``device-attestation``, ``device-csr``)."""

    @property
    def ok(self) -> bool:
        """True when a certificate was issued and downloaded."""
        return self.problem is None and bool(self.chain)

    @property
    def certificate(self) -> x509.Certificate | None:
        """The issued (leaf) certificate."""
        return self.chain[0] if self.chain else None

    @property
    def problems(self) -> list[AcmeProblem]:
        """The problem and its subproblems' documents, for assertions on either."""
        if self.problem is None:
            return []
        subs = [AcmeProblem.from_document(sub) for sub in self.problem.subproblems]
        return [self.problem, *subs]


class _EnrollmentFailed(Exception):
    """Internal: a problem ended the enrollment at ``stage``."""

    def __init__(self, stage: Stage, problem: AcmeProblem) -> None:
        super().__init__(f"{stage}: {problem}")
        self.stage = stage
        self.problem = problem


def random_serial() -> str:
    """A random Apple-looking 10-character serial number (unique per test device)."""
    alphabet = "0123456789CDFGHJKLMNPQRTVWXY"  # Apple avoids vowels and look-alikes
    return "".join(secrets.choice(alphabet) for _ in range(10))


def _other_identifier(current: str | None) -> str:
    other = random_serial()
    return other if other != current else other[::-1]


class SimulatedDevice:
    """One Apple device with its profile; :meth:`enroll` runs the whole ACME flow."""

    def __init__(
        self,
        directory_url: str,
        client_identifier: str,
        claims: LeafClaims,
        attestation_ca: AttestationCA,
        *,
        key_size: Literal[256, 384] = 384,
        subject: SubjectSpec | None = None,
        subject_alt_name: SubjectAltNames | Mapping[str, str | Sequence[str]] | None = None,
        usage_flags: int | None = None,
        extended_key_usage: Sequence[str] = (),
        strip_leading_zeros: bool | LeadingZeros = False,
        session: aiohttp.ClientSession | None = None,
        mode: DeviceMode = DeviceMode.GENUINE,
        wrong_ca: AttestationCA | None = None,
        error_message: str = DEFAULT_ERROR_MESSAGE,
        clock: Callable[[], datetime] | None = None,
        poll_interval: float = 0.2,
        poll_timeout: float = 30.0,
        foreign_key_type: ForeignKeyType = "rsa-2048",
        device_key: ec.EllipticCurvePrivateKey | None = None,
        account: JwsSigner | None = None,
        csr: x509.CertificateSigningRequest | None = None,
    ) -> None:
        """``subject`` defaults to CN = ``client_identifier``; ``subject_alt_name`` takes a
        :class:`SubjectAltNames` or an Apple-profile dict; ``strip_leading_zeros=True``
        reproduces Apple's JWS bug when it happens (``LeadingZeros.FORCE_*`` forces it);
        ``wrong_ca`` is the CA used in :attr:`DeviceMode.WRONG_ROOT` (generated if omitted);
        ``clock`` dates the attestation leaf; ``foreign_key_type`` is the key type the leaf
        attests in :attr:`DeviceMode.FOREIGN_KEY_TYPE`. ``device_key``, ``account`` and
        ``csr`` hand in what a device makes before it talks to the server (a load generator
        precomputes them); by default they are generated here (the CSR at finalize)."""
        if key_size not in (256, 384):
            raise ValueError(
                "Apple hardware-bound keys are P-256 or P-384 (docs/apple-attestation.md §10)"
            )
        self.directory_url = directory_url
        self.client_identifier = client_identifier
        self.claims = claims
        self.attestation_ca = attestation_ca
        self.mode = mode
        self.error_message = error_message
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.subject = subject_name(subject) if subject is not None else _cn(client_identifier)
        if isinstance(subject_alt_name, Mapping):
            subject_alt_name = SubjectAltNames.from_profile(subject_alt_name)
        self.subject_alt_name = subject_alt_name
        self.usage_flags = usage_flags
        self.extended_key_usage = tuple(extended_key_usage)
        # Apple generates the key first, then talks to the server (docs/apple-attestation.md §1,
        # §12).
        curve: ec.EllipticCurve = ec.SECP384R1() if key_size == 384 else ec.SECP256R1()
        if device_key is not None and device_key.curve.name != curve.name:
            raise ValueError(f"device_key is not a P-{key_size} key")
        self.device_key: ec.EllipticCurvePrivateKey = device_key or ec.generate_private_key(curve)
        self._csr = csr
        self._curve = curve
        self._wrong_ca = wrong_ca
        self.foreign_key_type = foreign_key_type
        self._csr_key: ec.EllipticCurvePrivateKey | None = None
        if isinstance(strip_leading_zeros, LeadingZeros):
            leading_zeros = strip_leading_zeros
        else:
            leading_zeros = LeadingZeros.STRIP if strip_leading_zeros else LeadingZeros.KEEP
        # Apple's account key is ES256 / P-256 (docs/apple-attestation.md §10).
        self.account = account or JwsSigner.generate(leading_zeros=leading_zeros)
        self.session = AcmeSession(
            directory_url, self.account, http=session, poll_interval=poll_interval
        )
        self._last_token: str | None = None
        self._previous: Attestation | None = None

    # -- what the device sends, computable without a server -----------------------------------

    @property
    def csr_key(self) -> ec.EllipticCurvePrivateKey:
        """The key the CSR carries: the device key, except in CSR_KEY_MISMATCH mode."""
        if self.mode is not DeviceMode.CSR_KEY_MISMATCH:
            return self.device_key
        if self._csr_key is None:
            self._csr_key = ec.generate_private_key(self._curve)
        return self._csr_key

    def build_csr(self) -> x509.CertificateSigningRequest:
        """The finalize CSR (docs/apple-attestation.md §11, §12)."""
        return build_csr(
            self.csr_key,
            self.subject,
            sans=self.subject_alt_name,
            usage_flags=self.usage_flags,
            extended_key_usage=self.extended_key_usage,
        )

    def attestation_for(self, token: str, *, stale_token: str | None = None) -> Attestation:
        """The challenge answer for ``token`` in this device's mode.

        ``stale_token`` is the earlier token used by :attr:`DeviceMode.STALE_ATTESTATION`.
        In :attr:`DeviceMode.REUSE_PREVIOUS_ATTESTATION` the first answer is remembered and
        returned again for every later token.
        """
        mode = self.mode
        if mode is DeviceMode.ERROR_PAYLOAD:
            return Attestation(payload={"error": self.error_message}, token=token)
        if mode is DeviceMode.EMPTY_ATT_STMT:
            att_obj = attestation_object([], att_stmt={})
            return Attestation(challenge_payload(att_obj), att_obj, token=token)
        if mode is DeviceMode.REUSE_PREVIOUS_ATTESTATION and self._previous is not None:
            return self._previous

        ca = self.attestation_ca
        claims = self.claims
        freshness_token = token
        freshness: bytes | None
        if mode is DeviceMode.STALE_ATTESTATION:
            if stale_token is None:
                raise ValueError("STALE_ATTESTATION needs the earlier token (stale_token)")
            freshness_token = stale_token
        freshness = freshness_code(freshness_token)
        if mode is DeviceMode.WRONG_TOKEN_HASH:
            freshness = freshness_code(key_authorization(token, self.account.jwk))
        elif mode is DeviceMode.MISSING_FRESHNESS:
            freshness = None
        elif mode is DeviceMode.WRONG_ROOT:
            if self._wrong_ca is None:
                self._wrong_ca = AttestationCA.generate()
            ca = self._wrong_ca
        elif mode is DeviceMode.IDENTIFIER_MISMATCH:
            claims = dataclasses.replace(
                claims,
                serial_number=_other_identifier(claims.serial_number),
                udid=f"00006030-{secrets.token_hex(8).upper()}",
            )
        attested_key: CertificatePublicKeyTypes = self.device_key.public_key()
        if mode is DeviceMode.FOREIGN_KEY_TYPE:
            attested_key = foreign_public_key(self.foreign_key_type)
        leaf = ca.mint_leaf(
            attested_key,
            claims,
            freshness=freshness,
            now=self.clock() if self.clock else None,
            signed_by_root=mode is DeviceMode.LEAF_FROM_ROOT,
        )
        chain = tuple(ca.chain_for(leaf))
        att_obj = attestation_object(chain)
        attestation = Attestation(
            challenge_payload(att_obj), att_obj, leaf, chain, token=token, freshness=freshness
        )
        if mode is DeviceMode.REUSE_PREVIOUS_ATTESTATION:
            self._previous = attestation
        return attestation

    # -- the protocol --------------------------------------------------------------------------

    async def enroll(self) -> EnrollmentResult:
        """Run newAccount → newOrder → challenge → finalize → certificate download.

        Problems the server answers with end the enrollment and are returned in the result
        (``problem``, ``failed_stage``); a server that breaks the protocol raises
        :class:`AcmeProtocolError`, a poll that never ends raises ``TimeoutError``.
        """
        result = EnrollmentResult(self.client_identifier, self.mode, key=self.csr_key)
        try:
            await self._enroll(result)
        except _EnrollmentFailed as failure:
            result.problem = failure.problem
            result.failed_stage = failure.stage
        return result

    async def close(self) -> None:
        """Close the HTTP session if the device created it."""
        await self.session.close()

    async def _call(self, stage: Stage, request: Awaitable[_T]) -> _T:
        try:
            response = await request
        except AcmeProblem as problem:
            raise _EnrollmentFailed(stage, problem) from None
        return response

    async def _enroll(self, result: EnrollmentResult) -> None:
        session = self.session
        with _timed(result, Stage.DIRECTORY):
            await self._call(Stage.DIRECTORY, session.directory())
        with _timed(result, Stage.NEW_ACCOUNT):
            await self._call(Stage.NEW_ACCOUNT, session.new_account())
        result.account_url = session.account_url

        stale_token: str | None = None
        if self.mode is DeviceMode.STALE_ATTESTATION:
            stale_token = self._last_token or await self._throwaway_token()

        with _timed(result, Stage.NEW_ORDER):
            order_response = await self._new_order(result)
        order = order_response.json_object()
        authorizations = order.get("authorizations")
        if not isinstance(authorizations, list) or len(authorizations) != 1:
            raise AcmeProtocolError(f"order has authorizations {authorizations!r}, expected one")
        result.authorization_url = str(authorizations[0])
        with _timed(result, Stage.AUTHORIZATION):
            response = await self._call(
                Stage.AUTHORIZATION, session.post_as_get(result.authorization_url)
            )
        authz = response.json_object()
        result.authorization = authz

        if authz.get("status") != "valid":
            await self._answer_challenge(result, authz, stale_token)

        await self._finalize(result)
        with _timed(result, Stage.CERTIFICATE):
            await self._download(result)

    async def _new_order(self, result: EnrollmentResult) -> AcmeResponse:
        # Exactly one permanent-identifier = ClientIdentifier (docs/apple-attestation.md §2, §11).
        payload = {"identifiers": [{"type": PERMANENT_IDENTIFIER, "value": self.client_identifier}]}
        url = await self.session.url_of("newOrder")
        response = await self._call(Stage.NEW_ORDER, self.session.post(url, payload))
        if response.status != 201 or not response.location:
            raise AcmeProtocolError(f"newOrder answered {response.status} (Location missing?)")
        result.order_url = response.location
        result.order = response.json_object()
        finalize = result.order.get("finalize")
        if not isinstance(finalize, str):
            raise AcmeProtocolError("order has no finalize URL")
        result.finalize_url = finalize
        return response

    async def _throwaway_token(self) -> str:
        """A token from an order the device then abandons (for STALE_ATTESTATION)."""
        scratch = EnrollmentResult(self.client_identifier, self.mode)
        order = (await self._new_order(scratch)).json_object()
        authz_url = str(order["authorizations"][0])
        authz = (
            await self._call(Stage.AUTHORIZATION, self.session.post_as_get(authz_url))
        ).json_object()
        return str(_device_attest_challenge(authz)["token"])

    async def _answer_challenge(
        self, result: EnrollmentResult, authz: dict[str, Any], stale_token: str | None
    ) -> None:
        challenge = _device_attest_challenge(authz)
        token = str(challenge["token"])
        if stale_token is not None and stale_token == token:
            raise AcmeProtocolError(
                "the server handed out the same token again, so a stale attestation cannot be "
                "simulated (did it reuse the pending authorization?)"
            )
        result.token = token
        result.challenge_url = str(challenge["url"])
        with _timed(result, DEVICE_ATTESTATION):
            attestation = self.attestation_for(token, stale_token=stale_token)
        self._last_token = token
        result.attestation = attestation
        with _timed(result, Stage.CHALLENGE):
            await self._post_challenge(result, attestation)

    async def _post_challenge(self, result: EnrollmentResult, attestation: Attestation) -> None:
        response = await self._call(
            Stage.CHALLENGE, self.session.post(result.challenge_url or "", attestation.payload)
        )
        result.challenge = response.json_object()
        status = result.challenge.get("status")
        if status == "invalid":
            raise _EnrollmentFailed(Stage.CHALLENGE, _embedded_problem(result.challenge))
        if status == "valid":
            return
        # Validation runs asynchronously: poll the authorization (RFC 8555 §7.5.1).
        try:
            polled = await self.session.poll(
                result.authorization_url or "", max_seconds=self.poll_timeout, first=response
            )
        except AcmeProblem as problem:
            raise _EnrollmentFailed(Stage.AUTHORIZATION, problem) from None
        authz = polled.json_object()
        result.authorization = authz
        if "challenges" in authz:
            result.challenge = _device_attest_challenge(authz)
        if authz.get("status") != "valid":
            raise _EnrollmentFailed(Stage.CHALLENGE, _embedded_problem(result.challenge))

    async def _finalize(self, result: EnrollmentResult) -> None:
        with _timed(result, DEVICE_CSR):
            csr = self._csr or self.build_csr()
        result.csr = csr
        der = csr.public_bytes(serialization.Encoding.DER)
        with _timed(result, Stage.FINALIZE):
            await self._post_finalize(result, der)

    async def _post_finalize(self, result: EnrollmentResult, der: bytes) -> None:
        response = await self._call(
            Stage.FINALIZE, self.session.post(result.finalize_url or "", {"csr": b64url(der)})
        )
        order = response.json_object()
        result.order = order
        if order.get("status") == "processing":
            try:
                polled = await self.session.poll(
                    result.order_url or "", max_seconds=self.poll_timeout, first=response
                )
            except AcmeProblem as problem:
                raise _EnrollmentFailed(Stage.ORDER, problem) from None
            order = polled.json_object()
            result.order = order
        status = order.get("status")
        if status == "invalid":
            raise _EnrollmentFailed(Stage.ORDER, _embedded_problem(order))
        if status != "valid" or not isinstance(order.get("certificate"), str):
            raise AcmeProtocolError(f"order is {status!r} after finalize, without a certificate")
        result.certificate_url = str(order["certificate"])

    async def _download(self, result: EnrollmentResult) -> None:
        response = await self._call(
            Stage.CERTIFICATE,
            self.session.post_as_get(result.certificate_url or "", accept=PEM_CHAIN_CONTENT_TYPE),
        )
        if response.content_type != PEM_CHAIN_CONTENT_TYPE:
            raise AcmeProtocolError(
                f"certificate served as {response.content_type!r}, not {PEM_CHAIN_CONTENT_TYPE}"
            )
        result.certificate_chain_pem = response.text
        result.chain = x509.load_pem_x509_certificates(response.body)


@contextlib.contextmanager
def _timed(result: EnrollmentResult, step: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        result.timings[step] = result.timings.get(step, 0.0) + time.perf_counter() - began


def _cn(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, value)])


def _device_attest_challenge(authz: Mapping[str, Any]) -> dict[str, Any]:
    # "For compatibility, the ACME server needs to respond with a challenge type of
    # device-attest-01" (Apple's ACMECertificate documentation, docs/apple-attestation.md §11): a
    # device knows no other.
    for challenge in authz.get("challenges") or []:
        if isinstance(challenge, dict) and challenge.get("type") == DEVICE_ATTEST_01:
            if not isinstance(challenge.get("token"), str) or not challenge.get("url"):
                raise AcmeProtocolError("device-attest-01 challenge without token or url")
            return challenge
    raise AcmeProtocolError(f"authorization offers no {DEVICE_ATTEST_01} challenge")


def _embedded_problem(obj: Mapping[str, Any] | None) -> AcmeProblem:
    error = (obj or {}).get("error")
    if isinstance(error, Mapping):
        return AcmeProblem.from_document(error)
    status = (obj or {}).get("status")
    return AcmeProblem(0, "about:blank", f"object became {status!r} without an error", [], {})


async def simulate(
    directory_url: str,
    *,
    serial: str,
    udid: str | None = None,
    attestation_ca_dir: Path,
    client_identifier: str | None = None,
    mode: DeviceMode = DeviceMode.GENUINE,
    os: Literal["macos", "ios"] = "macos",
    key_size: Literal[256, 384] = 384,
    subject: SubjectSpec | None = None,
    subject_alt_name: SubjectAltNames | Mapping[str, str | Sequence[str]] | None = None,
    user_enrollment: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> EnrollmentResult:
    """One enrollment of a simulated device, for ``acmegate simulate-device``.

    The attestation CA is loaded from ``attestation_ca_dir`` (generated and saved there on
    first use — point the gateway's attestation provider ``roots`` at its ``root.pem``).
    ``client_identifier`` defaults to ``serial``.
    """
    ca = AttestationCA.load_or_generate(attestation_ca_dir)
    claims = LeafClaims.ios(serial, udid) if os == "ios" else LeafClaims.macos(serial, udid)
    if user_enrollment:
        claims = claims.user_enrollment()
    device = SimulatedDevice(
        directory_url,
        client_identifier or serial,
        claims,
        ca,
        key_size=key_size,
        subject=subject,
        subject_alt_name=subject_alt_name,
        session=session,
        mode=mode,
    )
    try:
        return await device.enroll()
    finally:
        await device.close()


def save_credentials(result: EnrollmentResult, *, key_out: Path, cert_out: Path) -> None:
    """Write an issued certificate's private key (unencrypted PKCS#8 PEM, 0600) and its chain
    (leaf first, PEM) where EAP-TLS tools (eapol_test, wpa_supplicant) can read them."""
    if not result.ok or result.key is None:
        raise ValueError("no certificate was issued")
    key_out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_out.parent.mkdir(parents=True, exist_ok=True)
    write_file(
        key_out,
        result.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    write_file(cert_out, (result.certificate_chain_pem or "").encode(), 0o644)


_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.4.1.311.20.2.2": "smartcardLogon",
    "1.3.6.1.5.2.3.4": "pkinitKDC",
}


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def format_result(result: EnrollmentResult, *, saved: Mapping[str, Path] | None = None) -> str:
    """A human-readable report: the certificate's serial, subject, SANs and EKUs plus the PEM
    chain on success, else the stage and the problem (with subproblems). ``saved`` names the
    files the key and certificate were written to."""
    lines = [f"device {result.client_identifier} (mode {result.mode.value})"]
    if result.order_url:
        lines.append(f"  order:       {result.order_url}")
    cert = result.certificate
    if result.problem is None and cert is not None:
        sans = x509names.describe_subject_alt_names(cert)
        ekus = _extension(cert, x509.ExtendedKeyUsage)
        lines.append("  enrolled:    certificate issued")
        lines += [f"  {what + ':':<12} {path}" for what, path in (saved or {}).items()]
        lines += [
            f"  serial:      {cert.serial_number:x}",
            f"  subject:     {cert.subject.rfc4514_string()}",
            f"  issuer:      {cert.issuer.rfc4514_string()}",
            f"  not before:  {cert.not_valid_before_utc.isoformat()}",
            f"  not after:   {cert.not_valid_after_utc.isoformat()}",
            "  SANs:        " + (", ".join(sans) if sans else "(none)"),
            "  EKUs:        "
            + (
                ", ".join(_EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in ekus)
                if ekus
                else "(none)"
            ),
            "",
            (result.certificate_chain_pem or "").rstrip("\n"),
        ]
        return "\n".join(lines)
    problem = result.problem
    stage = result.failed_stage.value if result.failed_stage else "?"
    lines.append(f"  FAILED at {stage}")
    if problem is not None:
        status = f" (HTTP {problem.status})" if problem.status else ""
        lines.append(f"  problem:     {problem.type}{status}")
        lines.append(f"  detail:      {problem.detail}")
        for sub in problem.subproblems:
            identifier = sub.get("identifier")
            where = ""
            if isinstance(identifier, Mapping):
                where = f" [{identifier.get('type')}={identifier.get('value')}]"
            lines.append(f"  subproblem:  {sub.get('type')}{where}: {sub.get('detail', '')}")
    return "\n".join(lines)
