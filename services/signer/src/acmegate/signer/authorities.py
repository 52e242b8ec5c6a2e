"""The configured certificate authorities, loaded and checked once at start.

Everything a signature needs that does not depend on the request is prepared here (issuer
name, AKI, the chain PEM that follows each leaf), so per-message work is build + sign only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from acmegate.common.clock import Clock, SystemClock
from acmegate.common.config import Config
from acmegate.common.config.model import CertificateAuthorityConfig, FileKey, Pkcs11Key
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.signer.ca_key import CaKey, CaKeyError, HashName, signature_hash_for
from acmegate.signer.chains import (
    ChainError,
    authority_key_identifier,
    check_issuer_chain,
    check_issuing_ca,
    describe,
    issuer_chain,
    load_pem_certificates,
    pem,
    same_public_key,
)
from acmegate.signer.keys import open_ca_key

# How a key entry becomes a CaKey: open_ca_key, or a wrapper of it (tests count signatures).
KeyOpener = Callable[[str, FileKey | Pkcs11Key], CaKey]


class AuthorityError(Exception):
    """A configured CA cannot be used; each line names its ``$.certificate_authorities`` key."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class PublicationUrls:
    """Where relying parties find a CA's revocation data and certificate (``pki.base_url``)."""

    crl: str | None  # RFC 5280 §4.2.1.13 CRL distribution point
    ocsp: str | None  # RFC 5280 §4.2.2.1 AIA id-ad-ocsp
    issuer: str  # RFC 5280 §4.2.2.1 AIA id-ad-caIssuers (DER certificate)

    @classmethod
    def for_ca(cls, base_url: str, config: CertificateAuthorityConfig) -> PublicationUrls:
        base = base_url.rstrip("/")
        return cls(
            crl=f"{base}/crl/{config.name}.crl" if config.crl.enabled else None,
            ocsp=f"{base}/ocsp/{config.name}" if config.ocsp else None,
            issuer=f"{base}/ca/{config.name}.cer",
        )


@dataclass(frozen=True, eq=False)
class Authority:
    """One issuing CA, ready to sign."""

    name: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: CaKey
    # RFC 8555 §7.4.2: the PEM that follows the leaf: this CA, then its non-root issuers.
    issuer_chain_pem: str
    authority_key_identifier: x509.AuthorityKeyIdentifier
    config: CertificateAuthorityConfig
    # None without `pki.base_url`: certificates then carry no CDP and no AIA.
    urls: PublicationUrls | None = None

    @property
    def signature_hash(self) -> HashName:
        """The hash of this CA's CRL and OCSP signatures (by the strength of its key)."""
        return signature_hash_for(self.key.public_key())

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


class Authorities(Mapping[str, Authority]):
    """The loaded CAs by name."""

    def __init__(self, authorities: Sequence[Authority]) -> None:
        self._by_name = {a.name: a for a in authorities}

    def __getitem__(self, name: str) -> Authority:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def require(self, name: str) -> Authority:
        """The CA ``name``; a ``serverInternal`` error if this signer has none by that name."""
        try:
            return self._by_name[name]
        except KeyError:
            # The policy stage named a CA the signer was not configured with: the two run
            # different configurations (a rollout in progress), not the client's fault.
            raise AcmeError(
                ErrorKind.SERVER_INTERNAL,
                f"certificate authority {name!r} is not configured on the signer",
            ) from None

    async def close(self) -> None:
        for authority in self._by_name.values():
            await authority.key.close()


def load_authority(
    index: int,
    config: CertificateAuthorityConfig,
    *,
    clock: Clock | None = None,
    open_key: KeyOpener = open_ca_key,
    base_url: str | None = None,
) -> Authority:
    """Read, check and open CA number ``index`` of the configuration."""
    where = f"$.certificate_authorities[{index}]"
    certificate = _read_certificates(f"{where}.certificate", config.certificate, single=True)[0]
    chain: list[x509.Certificate] = []
    for j, path in enumerate(config.chain):
        chain.extend(_read_certificates(f"{where}.chain[{j}]", path, single=False))
    now = (clock or SystemClock()).now()
    # The chain as relying parties will validate it (chains.py): a CA whose certificates
    # nobody would accept does not start.
    try:
        check_issuing_ca(certificate, now=now)
    except ChainError as exc:
        raise AuthorityError([f"{where}.certificate: {exc}"]) from exc
    try:
        check_issuer_chain(certificate, chain, now=now)
    except ChainError as exc:
        raise AuthorityError([f"{where}.chain: {exc}"]) from exc
    try:
        key = open_key(config.name, config.key)
    except CaKeyError as exc:
        raise AuthorityError([f"{where}.key: {exc}"]) from exc
    if not same_public_key(key.public_key(), certificate.public_key()):
        # A token key stays open otherwise (its worker thread and session).
        close_key(key)
        raise AuthorityError(
            [
                f"{where}.key: certificate authority {config.name!r}: the key ({key.description}) "
                f"does not match the certificate {config.certificate} ({describe(certificate)})"
            ]
        )
    return Authority(
        name=config.name,
        certificate=certificate,
        chain=tuple(chain),
        key=key,
        issuer_chain_pem="".join(pem(c) for c in issuer_chain(certificate, chain)),
        authority_key_identifier=authority_key_identifier(certificate),
        config=config,
        urls=PublicationUrls.for_ca(base_url, config) if base_url else None,
    )


def load_authorities(
    configs: Sequence[CertificateAuthorityConfig],
    *,
    clock: Clock | None = None,
    open_key: KeyOpener = open_ca_key,
    base_url: str | None = None,
) -> Authorities:
    """Every configured CA; ``AuthorityError`` listing every problem if any is unusable."""
    loaded: list[Authority] = []
    problems: list[str] = []
    for index, config in enumerate(configs):
        try:
            loaded.append(
                load_authority(index, config, clock=clock, open_key=open_key, base_url=base_url)
            )
        except AuthorityError as exc:
            problems.extend(exc.problems)
    if problems:
        for authority in loaded:
            close_key(authority.key)
        raise AuthorityError(problems)
    return Authorities(loaded)


def close_key(key: CaKey) -> None:
    """Close a key from synchronous code, with or without a running event loop.

    ``CaKey.close`` is a coroutine for the protocol's sake, but no key waits in it (a token
    key shuts its worker thread and session down synchronously), so one step runs it to the
    end. A key that did wait would be left to the garbage collector rather than block here.
    """
    coroutine = key.close()
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()


def validate_config(config: Config, *, clock: Clock | None = None) -> list[str]:
    """Problems with ``config.certificate_authorities`` (empty if each CA loads and matches)."""
    try:
        authorities = load_authorities(config.certificate_authorities, clock=clock)
    except AuthorityError as exc:
        return exc.problems
    _close_all(authorities)
    return []


def _close_all(authorities: Authorities) -> None:
    for authority in authorities.values():
        close_key(authority.key)


def _read_certificates(where: str, path: str, *, single: bool) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuthorityError([f"{where}: cannot read {path}: {exc.strerror}"]) from exc
    try:
        certificates = load_pem_certificates(data, what=path)
    except ChainError as exc:
        raise AuthorityError([f"{where}: {exc}"]) from exc
    if single and len(certificates) != 1:
        raise AuthorityError(
            [f"{where}: {path} holds {len(certificates)} certificates; put its issuers in `chain`"]
        )
    return certificates
