"""Trust roots per attestation provider, and the chain-verification policy built on them once.

A provider trusts the PEM files in ``AttestationProviderConfig.roots`` or, when that is empty,
Apple's real "Apple Enterprise Attestation Root CA" shipped in ``data/`` (docs/apple-attestation.md
§4). A provider that trusts anything else is a *dev* provider (a test CA such as the simulator's):
the gateway says so loudly, because such a root lets anyone mint "Apple" attestations.

Verification follows docs/apple-attestation.md §4: Apple's leaf has no SAN, AKI,
SKI or EKU, so the end-entity policy permits every extension (no EKU requirement, like the
``ExtKeyUsageAny`` of step-ca, nanoca and Fleet); Apple's Sub CA 1 is not public, so the
CA policy asks only what any CA must have (basicConstraints CA:TRUE, keyCertSign if keyUsage is
present) instead of the Web PKI profile.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from acmegate.common.config import Config
from acmegate.common.config.model import AttestationProviderConfig

APPLE_ROOT_RESOURCE = "data/apple-enterprise-attestation-root-ca.pem"
# SHA-256 of the DER of Apple's root, as published (docs/apple-attestation.md §4).
APPLE_ROOT_SHA256 = bytes.fromhex(
    "ccf59ef8fcb3017d97f8b5fa6fa90e7a3f9283f76b55ac6cf6eda8b8b949f05b"
)


class TrustRootError(ValueError):
    """A configured root file cannot be used; the message says why (without the path)."""


class ChainShapeError(ValueError):
    """The chain verified, but it is not shaped as Apple's: leaf → one Sub CA → root."""


def apple_root() -> x509.Certificate:
    """Apple's Enterprise Attestation Root CA from the package data, fingerprint-checked."""
    pem = importlib.resources.files("acmegate.attestation").joinpath(APPLE_ROOT_RESOURCE)
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    if cert.fingerprint(hashes.SHA256()) != APPLE_ROOT_SHA256:
        # The packaged file is part of the code: a different one is a broken install.
        raise RuntimeError(f"{APPLE_ROOT_RESOURCE} is not Apple's root (fingerprint differs)")
    return cert


def is_apple_root(cert: x509.Certificate) -> bool:
    """Whether ``cert`` is Apple's real Enterprise Attestation Root CA."""
    return cert.fingerprint(hashes.SHA256()) == APPLE_ROOT_SHA256


def read_roots(path: str, *, now: datetime | None = None) -> list[x509.Certificate]:
    """The CA certificates of a PEM (or DER) file; :class:`TrustRootError` if unusable."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise TrustRootError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise TrustRootError(f"no readable certificate: {exc}") from exc
    for index, cert in enumerate(certs):
        problem = _ca_problem(cert, now)
        if problem:
            raise TrustRootError(f"certificate {index} ({cert.subject.rfc4514_string()}) {problem}")
    return certs


def _ca_problem(cert: x509.Certificate, now: datetime | None) -> str | None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "is not a CA: it has no basicConstraints"
    except ValueError as exc:
        return f"has malformed extensions: {exc}"
    if not constraints.ca:
        return "is not a CA: basicConstraints has CA:FALSE"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        return "cannot sign certificates: keyUsage lacks keyCertSign"
    if now is not None and not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return (
            f"is not valid now (valid {cert.not_valid_before_utc.isoformat()} "
            f"to {cert.not_valid_after_utc.isoformat()})"
        )
    return None


def _require_key_cert_sign(
    policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("CA keyUsage lacks keyCertSign")


@dataclass(frozen=True, slots=True)
class _VerifiedIntermediate:
    """An intermediate already proven to chain to a root, usable as an anchor in its window."""

    store: Store
    not_before: datetime
    not_after: datetime


# Apple has one Sub CA; a handful of entries covers a rollover. The bound and the
# least-recently-used eviction keep re-encoded variants of a valid intermediate (its unsigned
# envelope is malleable) from pushing the real one out for good.
_MAX_VERIFIED_INTERMEDIATES = 16


@dataclass(frozen=True, slots=True)
class ProviderTrust:
    """One provider's roots with the store and policies to verify chains against them."""

    provider: AttestationProviderConfig
    roots: tuple[x509.Certificate, ...]
    # True unless the provider trusts only Apple's real root.
    is_dev: bool
    store: Store
    ca_policy: ExtensionPolicy
    ee_policy: ExtensionPolicy
    # DER of an intermediate → itself as a trust anchor (see verify_chain).
    _verified: dict[bytes, _VerifiedIntermediate] = field(default_factory=dict)

    def verify_chain(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], at: datetime
    ) -> None:
        """Check that ``leaf`` chains to a root at time ``at``; raises ``VerificationError``.

        Every device sends the same intermediate, and checking its signature by the root is
        half the cost of a verification. So once an intermediate has been verified up to a
        root, it serves as the trust anchor for later leaves while the whole original chain
        above it is valid: the leaf still gets every check (signature, validity, policy).
        """
        if len(intermediates) == 1:
            der = intermediates[0].public_bytes(serialization.Encoding.DER)
            cached = self._verified.pop(der, None)
            if cached is not None:
                self._verified[der] = cached  # most recently used last
            if cached is not None and cached.not_before <= at <= cached.not_after:
                try:
                    self._verify(cached.store, leaf, [], at)
                    return
                except (VerificationError, ValueError):
                    pass  # the full path below gives the complete diagnosis
        chain = self._verify(self.store, leaf, intermediates, at)
        _check_shape(chain)
        self._remember(chain)

    def _verify(
        self,
        store: Store,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
    ) -> list[x509.Certificate]:
        # The validation time changes per call; building a verifier on the prepared store and
        # policies costs microseconds, the signature checks are what costs (~0.7 ms each).
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(at)
            .extension_policies(ca_policy=self.ca_policy, ee_policy=self.ee_policy)
            .build_client_verifier()
        )
        return verifier.verify(leaf, list(intermediates)).chain

    def _remember(self, chain: Sequence[x509.Certificate]) -> None:
        intermediate, root = chain[1], chain[2]
        if _constrains_subordinates(root):
            return  # the root's constraints would not apply below a shortcut anchor
        while len(self._verified) >= _MAX_VERIFIED_INTERMEDIATES:
            del self._verified[next(iter(self._verified))]  # least recently used
        self._verified[intermediate.public_bytes(serialization.Encoding.DER)] = (
            _VerifiedIntermediate(
                store=Store([intermediate]),
                not_before=max(intermediate.not_valid_before_utc, root.not_valid_before_utc),
                not_after=min(intermediate.not_valid_after_utc, root.not_valid_after_utc),
            )
        )


def _check_shape(chain: Sequence[x509.Certificate]) -> None:
    """Apple issues attestation leaves from its Enterprise Attestation Sub CA, which the root
    certifies (docs/apple-attestation.md §4): exactly one intermediate. A leaf the root signed
    itself, or one further down, is not a leaf Apple's attestation servers issued."""
    if len(chain) < 3:
        raise ChainShapeError(
            "the attestation certificate is issued by the root itself, not by an "
            "intermediate CA under it (Apple's chain is leaf → Enterprise Attestation Sub CA "
            "→ root)"
        )
    if len(chain) != 3:
        raise ChainShapeError(
            f"the attestation certificate chains to the root through {len(chain) - 2} "
            "intermediate CAs (Apple's chain is leaf → Enterprise Attestation Sub CA → root)"
        )


def _constrains_subordinates(cert: x509.Certificate) -> bool:
    constraints = (x509.NameConstraints, x509.PolicyConstraints, x509.InhibitAnyPolicy)
    return any(isinstance(extension.value, constraints) for extension in cert.extensions)


def load_provider_trust(
    provider: AttestationProviderConfig, apple: x509.Certificate
) -> ProviderTrust:
    """Read ``provider``'s roots (or take ``apple``); raises :class:`TrustRootError`."""
    roots: list[x509.Certificate] = []
    for path in provider.roots:
        try:
            roots.extend(read_roots(path))
        except TrustRootError as exc:
            raise TrustRootError(f"attestation provider {provider.name!r}: {path}: {exc}") from exc
    if not roots:
        roots = [apple]
    ca_policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _require_key_cert_sign)
    )
    return ProviderTrust(
        provider=provider,
        roots=tuple(roots),
        is_dev=not all(is_apple_root(root) for root in roots),
        store=Store(roots),
        ca_policy=ca_policy,
        ee_policy=ExtensionPolicy.permit_all(),
    )


def load_trust(providers: Iterable[AttestationProviderConfig]) -> list[ProviderTrust]:
    """Every provider's trust, in configuration order (Apple's root is read once)."""
    apple = apple_root()
    return [load_provider_trust(provider, apple) for provider in providers]


def dev_providers(config: Config) -> list[str]:
    """Names of the providers that trust a root other than Apple's (for a loud CLI warning)."""
    return [
        trust.provider.name for trust in load_trust(config.attestation_providers) if trust.is_dev
    ]


def validate_config(config: Config, *, now: datetime | None = None) -> list[str]:
    """Problems with the attestation providers' roots, each prefixed with its YAML path."""
    moment = now if now is not None else datetime.now(UTC)
    problems: list[str] = []
    for i, provider in enumerate(config.attestation_providers):
        for j, path in enumerate(provider.roots):
            try:
                read_roots(path, now=moment)
            except TrustRootError as exc:
                problems.append(f"$.attestation_providers[{i}].roots[{j}]: {path}: {exc}")
    return problems
