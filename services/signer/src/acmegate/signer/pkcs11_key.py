"""CA keys inside a PKCS#11 token (SoftHSM2, an HSM): the private key never enters the process.

The token signs the TBS bytes that :mod:`acmegate.signer.external_signing` prepares: ECDSA as
CKM_ECDSA over a digest computed here (its raw r‖s is turned into DER), RSA as CKM_RSA_PKCS
over a DigestInfo (RSASSA-PKCS1-v1_5). Only digests go to the token, which every token
supports, rather than the hash-and-sign mechanisms that not all of them implement.

Token calls block, so each key signs in its own worker thread; a key's session is used by
that thread alone.

PIN attempts are precious: an HSM locks its user PIN after a few refused attempts (SoftHSM2
does not count them). PKCS#11 logs in per application, so a process logs in once per token
whatever the number of CAs on it; a PIN the token refused is remembered (as a hash) and never
tried again by this process, and no attempt is made when the token says the next refused one
would lock it (CKF_USER_PIN_FINAL_TRY) or it is locked. A signer that restarts in a loop with
a wrong PIN still spends one attempt per start: docs/pki.md says how to avoid that.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from acmegate.common.config import SecretUnavailable
from acmegate.common.config.model import Pkcs11Key
from acmegate.signer.ca_key import CaKeyError, CaPublicKey, HashName
from acmegate.signer.external_signing import (
    ExternalSigner,
    digest,
    ecdsa_der_signature,
    rsa_digest_info,
)

# A PKCS#11 module is process-global state: it is initialised once per process (python-pkcs11
# keeps one instance per module path), and python-pkcs11 initialises it without locking
# arguments, which tells the module (SoftHSM2 among them) that calls never overlap. Keys of
# several CAs may live in one module, so calls into a module are serialised by a lock of the
# same, process-wide, scope.
_MODULE_LOCKS: dict[str, threading.Lock] = {}
_MODULE_LOCKS_GUARD = threading.Lock()

_CURVES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}

# Per token (label, serial): the SHA-256 of each PIN it refused in this process.
_REFUSED_PINS: dict[tuple[str, str], set[bytes]] = {}
_REFUSED_PINS_GUARD = threading.Lock()


def module_lock(module: str) -> threading.Lock:
    """The lock every call into ``module`` holds (see above)."""
    with _MODULE_LOCKS_GUARD:
        return _MODULE_LOCKS.setdefault(module, threading.Lock())


def open_token(module: str, token_label: str) -> Any:
    """The token labelled ``token_label`` of ``module``; ``CaKeyError`` saying what is wrong."""
    try:
        library = pkcs11.lib(module)
    except (pkcs11.PKCS11Error, OSError) as exc:
        raise CaKeyError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
    try:
        return library.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        labels = sorted(t.label for t in library.get_tokens() if t.label)
        raise CaKeyError(
            f"the PKCS#11 module {module} has no token labelled {token_label!r} "
            f"(tokens: {', '.join(labels) or 'none'}; a token initialised after this process "
            "loaded the module is seen after a restart)"
        ) from None
    except pkcs11.MultipleTokensReturned:
        raise CaKeyError(f"several tokens of {module} are labelled {token_label!r}") from None


def log_in(token: Any, pin: str, *, rw: bool) -> Any:
    """One C_OpenSession + C_Login with ``pin`` (every login attempt goes through here)."""
    return token.open(rw=rw, user_pin=pin)


def open_session(token: Any, pin: str, *, rw: bool = False) -> Any:
    """A session logged in as the user, spending PIN attempts as sparingly as the module doc
    says.

    PKCS#11 logs in per application, not per session: while another session of this process
    is logged in to the token, the module accepts the new session without looking at the PIN.
    """
    label = token.label
    identity = (str(label), str(getattr(token, "serial", "")))
    fingerprint = hashlib.sha256(pin.encode("utf-8")).digest()
    with _REFUSED_PINS_GUARD:
        refused_before = fingerprint in _REFUSED_PINS.get(identity, set())
    if refused_before:
        raise CaKeyError(
            f"the PIN of token {label!r} was refused before in this process; not trying it "
            "again (each refused attempt counts toward the token's PIN lockout)"
        )
    flags = TokenFlag(token.flags)
    if flags & TokenFlag.USER_PIN_LOCKED:
        raise CaKeyError(f"the PIN of token {label!r} is locked")
    if flags & TokenFlag.USER_PIN_FINAL_TRY:
        raise CaKeyError(
            f"token {label!r} has one PIN attempt left before it locks: acmegate does not spend "
            "it; check the PIN by hand (e.g. pkcs11-tool --login --test), a right one resets "
            "the counter"
        )
    try:
        return log_in(token, pin, rw=rw)
    except pkcs11.UserAlreadyLoggedIn:
        return token.open(rw=rw)
    except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as exc:
        with _REFUSED_PINS_GUARD:
            _REFUSED_PINS.setdefault(identity, set()).add(fingerprint)
        low = " (the token says few attempts are left)" if _count_low(token) else ""
        raise CaKeyError(f"the PIN of token {label!r} was refused{low}") from exc
    except pkcs11.PinLocked as exc:
        raise CaKeyError(f"the PIN of token {label!r} is locked") from exc


def _count_low(token: Any) -> bool:
    try:
        return bool(TokenFlag(token.flags) & TokenFlag.USER_PIN_COUNT_LOW)
    except (pkcs11.PKCS11Error, ValueError):
        return False


def _public_key(session: Any, label: str) -> CaPublicKey:
    try:
        handle = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    except pkcs11.NoSuchKey:
        raise CaKeyError(f"the token holds no public key labelled {label!r}") from None
    if handle.key_type == KeyType.EC:
        key = serialization.load_der_public_key(encode_ec_public_key(handle))
    elif handle.key_type == KeyType.RSA:
        key = rsa.RSAPublicNumbers(
            int.from_bytes(handle[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(handle[Attribute.MODULUS], "big"),
        ).public_key()
    else:
        raise CaKeyError(f"the key {label!r} is {handle.key_type.name}; a CA key is RSA or EC")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CaKeyError(f"the key {label!r} is neither RSA nor EC")
    return key


def _private_key(session: Any, label: str) -> Any:
    try:
        return session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
    except pkcs11.NoSuchKey:
        raise CaKeyError(f"the token holds no private key labelled {label!r}") from None
    except pkcs11.MultipleObjectsReturned:
        raise CaKeyError(f"the token holds several private keys labelled {label!r}") from None


class Pkcs11CaKey:
    """A CA key in a PKCS#11 token: satisfies :class:`~acmegate.signer.ca_key.CaKey`."""

    def __init__(
        self, *, module: str, token_label: str, key_label: str, session: Any, private_key: Any
    ) -> None:
        self._module = module
        self._token_label = token_label
        self._key_label = key_label
        self._session = session
        self._private_key = private_key
        self._is_rsa = private_key.key_type == KeyType.RSA
        self._lock = module_lock(module)
        public_key = _public_key(session, key_label)
        self._signer = ExternalSigner(public_key, self._sign_tbs)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pkcs11-{key_label}")

    @classmethod
    def open(cls, ca_name: str, config: Pkcs11Key) -> Pkcs11CaKey:
        """Log in to the token and find the key pair labelled ``config.key_label``."""
        where = f"certificate authority {ca_name!r}"
        try:
            pin = config.pin.reveal()
        except SecretUnavailable as exc:
            raise CaKeyError(f"{where}: no PIN for token {config.token_label!r}: {exc}") from exc
        return cls.open_with_pin(
            module=config.module,
            token_label=config.token_label,
            key_label=config.key_label,
            pin=pin,
            where=where,
        )

    @classmethod
    def open_with_pin(
        cls, *, module: str, token_label: str, key_label: str, pin: str, where: str = "CA key"
    ) -> Pkcs11CaKey:
        lock = module_lock(module)
        try:
            with lock:
                token = open_token(module, token_label)
                session = open_session(token, pin)
                try:
                    private_key = _private_key(session, key_label)
                    return cls(
                        module=module,
                        token_label=token_label,
                        key_label=key_label,
                        session=session,
                        private_key=private_key,
                    )
                except BaseException:
                    session.close()
                    raise
        except CaKeyError as exc:
            raise CaKeyError(f"{where}: {exc}") from exc
        except pkcs11.PKCS11Error as exc:
            raise CaKeyError(f"{where}: token {token_label!r}: {type(exc).__name__} {exc}") from exc

    @property
    def description(self) -> str:
        return f"PKCS#11 token {self._token_label!r} key {self._key_label!r} ({self._module})"

    def public_key(self) -> CaPublicKey:
        return self._signer.public_key

    def _sign_tbs(self, tbs: bytes, hash_name: HashName) -> bytes:
        with self._lock:
            if self._is_rsa:
                return bytes(
                    self._private_key.sign(
                        rsa_digest_info(tbs, hash_name), mechanism=Mechanism.RSA_PKCS
                    )
                )
            raw = self._private_key.sign(digest(tbs, hash_name), mechanism=Mechanism.ECDSA)
        return ecdsa_der_signature(bytes(raw))

    async def _run(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def sign_certificate(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        certificate: x509.Certificate = await self._run(
            self._signer.certificate, builder, hash_name
        )
        return certificate

    async def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, hash_name: HashName
    ) -> x509.CertificateRevocationList:
        crl: x509.CertificateRevocationList = await self._run(self._signer.crl, builder, hash_name)
        return crl

    async def sign_ocsp_response(
        self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, hash_name: HashName
    ) -> ocsp.OCSPResponse:
        response: ocsp.OCSPResponse = await self._run(
            self._signer.ocsp_response, builder, responder, hash_name
        )
        return response

    def sign_csr(self, subject: x509.Name, hash_name: HashName) -> x509.CertificateSigningRequest:
        """A CSR for this key (blocking; for ``acmegate ca csr``)."""
        return self._signer.csr(subject, hash_name)

    def sign_certificate_blocking(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        """:meth:`sign_certificate` for command-line tools without an event loop."""
        return self._signer.certificate(builder, hash_name)

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            self._session.close()


def generate_token_key(
    *, module: str, token_label: str, key_label: str, pin: str, key_type: str
) -> CaPublicKey:
    """Generate a CA key pair inside the token; the private half is sensitive, never
    extractable and may only sign. Refuses a label that is already taken."""
    if key_type not in _CURVES and key_type not in ("rsa2048", "rsa3072", "rsa4096"):
        raise CaKeyError(f"unknown key type {key_type!r}")
    with module_lock(module):
        token = open_token(module, token_label)
        session = open_session(token, pin, rw=True)
        try:
            existing = list(session.get_objects({Attribute.LABEL: key_label}))
            if existing:
                raise CaKeyError(
                    f"token {token_label!r} already holds objects labelled {key_label!r}"
                )
            # The same CKA_ID on both halves, as pkcs11-tool and p11-kit expect.
            key_id = secrets.token_bytes(8)
            # Sign and verify only (PKCS#11 §4.8-4.9 usage attributes): a CA key never
            # decrypts, derives (ECDH) or (un)wraps keys, whatever the token's defaults.
            private_template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.SIGN_RECOVER: False,
                Attribute.DECRYPT: False,
                Attribute.DERIVE: False,
                Attribute.UNWRAP: False,
                Attribute.ID: key_id,
            }
            public_template = {
                Attribute.TOKEN: True,
                Attribute.VERIFY: True,
                Attribute.VERIFY_RECOVER: False,
                Attribute.ENCRYPT: False,
                Attribute.DERIVE: False,
                Attribute.WRAP: False,
                Attribute.ID: key_id,
            }
            if key_type in _CURVES:
                parameters = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type])},
                    local=True,
                )
                parameters.generate_keypair(
                    store=True,
                    label=key_label,
                    public_template=public_template,
                    private_template=private_template,
                )
            else:
                session.generate_keypair(
                    KeyType.RSA,
                    int(key_type[3:]),
                    store=True,
                    label=key_label,
                    public_template=public_template,
                    private_template=private_template,
                )
            return _public_key(session, key_label)
        except pkcs11.PKCS11Error as exc:
            raise CaKeyError(
                f"token {token_label!r}: cannot generate {key_type}: {type(exc).__name__} {exc}"
            ) from exc
        finally:
            session.close()
