"""The validation consumer's work: one ``VerifyChallenge`` of http-01, dns-01 or tls-alpn-01
in, one ``ChallengeVerified`` out.

A failure the client can fix (wrong answer, unreachable, NXDOMAIN, CAA) is a problem stored on
the challenge; only this replica's own faults raise, so the bus redelivers the message. The
whole attempt (lookups, connections, redirects, CAA) is bounded by ``validation.timeout``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from acmegate.attestation.validation import caa, dns01, http01, tls_alpn01
from acmegate.attestation.validation.problems import connection
from acmegate.attestation.validation.resolver import Lookups, connector, make_resolver
from acmegate.common.config.model import ValidationConfig, seconds
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import ChallengeVerified, VerifyChallenge
from acmegate.common.vocabulary import ChallengeType, IdentifierType

log = structlog.get_logger(__name__)


class Validator:
    """Validates standard challenges from this replica's network (one vantage point)."""

    def __init__(self, config: ValidationConfig) -> None:
        self._config = config
        self._timeout = float(seconds(config.timeout))
        self._lookups = Lookups(make_resolver(config.resolver))
        self._rules = http01.HttpRules(
            port=config.http_port,
            tls_port=config.tls_alpn_port,
            max_body_bytes=config.max_body_bytes,
            max_redirects=config.max_redirects,
        )
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=connector(self._lookups),
                # Responders are often minimal: no compression negotiated, no cookies kept.
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": "acmegate-validation", "Accept": "*/*"},
                auto_decompress=False,
            )
        return self._session

    async def validate(self, message: VerifyChallenge) -> ChallengeVerified:
        """The outcome of one challenge."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._validate(message)
        except AcmeError as exc:
            log.info(
                "validation failed",
                challenge_id=message.challenge_id,
                type=str(message.challenge_type),
                identifier=message.identifier.value,
                kind=str(exc.kind),
                detail=exc.detail,
            )
            problem = AcmeError(exc.kind, exc.detail, identifier=message.identifier)
            return ChallengeVerified(
                correlation_id=message.correlation_id,
                challenge_id=message.challenge_id,
                problem=problem.to_problem(),
            )
        except TimeoutError:
            problem = connection(f"validation took longer than {self._timeout:g}s")
            problem.identifier = message.identifier
            return ChallengeVerified(
                correlation_id=message.correlation_id,
                challenge_id=message.challenge_id,
                problem=problem.to_problem(),
            )
        log.info(
            "validation succeeded",
            challenge_id=message.challenge_id,
            type=str(message.challenge_type),
            identifier=message.identifier.value,
        )
        return ChallengeVerified(
            correlation_id=message.correlation_id, challenge_id=message.challenge_id
        )

    async def _validate(self, message: VerifyChallenge) -> None:
        key_authorization = message.key_authorization
        if not key_authorization:
            raise AcmeError(ErrorKind.SERVER_INTERNAL, "the challenge has no key authorization")
        name = message.identifier.value
        is_ip = message.identifier.type == IdentifierType.IP
        kind = message.challenge_type
        if kind == ChallengeType.HTTP_01:
            await http01.validate(
                self._http(),
                self._lookups,
                self._rules,
                host=name,
                token=message.token,
                key_authorization=key_authorization,
            )
        elif kind == ChallengeType.DNS_01:
            await dns01.validate(self._lookups, name=name, key_authorization=key_authorization)
        elif kind == ChallengeType.TLS_ALPN_01:
            await tls_alpn01.validate(
                self._lookups,
                name=name,
                is_ip=is_ip,
                port=self._config.tls_alpn_port,
                key_authorization=key_authorization,
            )
        else:
            raise AcmeError(ErrorKind.SERVER_INTERNAL, f"{kind} is not validated here")
        caa_config = self._config.caa
        if caa_config.enabled and not is_ip:
            # Checked once control is proven, as Boulder does at validation (RFC 8659 §3).
            await caa.check(
                self._lookups,
                name=name,
                wildcard=bool(message.wildcard),
                identities=caa_config.identities,
            )
