"""What every handler and consumer of the frontend works with, built once at start."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from aiohttp import web

from acmegate.common.bus import Bus
from acmegate.common.clock import Clock
from acmegate.common.config import Config, seconds
from acmegate.common.outages import OutageLog
from acmegate.frontend.client_address import TrustedProxies
from acmegate.frontend.db.accounts import Account
from acmegate.frontend.eab import EabSecret
from acmegate.frontend.jws import PublicKey, public_key_from_jwk
from acmegate.frontend.linker import Linker
from acmegate.frontend.nonces import NonceService
from acmegate.frontend.rate_limits import Limits
from acmegate.frontend.waiters import Waiters


@dataclass(frozen=True)
class Timing:
    """Lifetimes and budgets from ``acme:`` and ``server:`` (seconds → timedelta)."""

    order_lifetime: timedelta
    authorization_lifetime: timedelta
    processing_budget: timedelta
    republish_after: timedelta
    sweep_interval: float
    finalize_wait: float
    challenge_wait: float

    @classmethod
    def from_config(cls, config: Config) -> Timing:
        acme, server = config.acme, config.server
        return cls(
            order_lifetime=timedelta(seconds=seconds(acme.order_lifetime)),
            authorization_lifetime=timedelta(seconds=seconds(acme.authorization_lifetime)),
            processing_budget=timedelta(seconds=seconds(acme.processing_budget)),
            republish_after=timedelta(seconds=seconds(acme.republish_after)),
            sweep_interval=float(seconds(acme.sweep_interval)),
            finalize_wait=float(seconds(server.finalize_wait)),
            challenge_wait=float(seconds(server.challenge_wait)),
        )


@dataclass
class KnownAccounts:
    """Accounts seen recently, with their parsed keys: a ``kid`` request whose signature
    verifies with one skips the account read (its validity is re-checked in the request's
    first statement, db/gate.py). An entry can be stale: whoever finds out forgets it."""

    capacity: int = 50_000
    _accounts: OrderedDict[str, tuple[Account, PublicKey]] = field(default_factory=OrderedDict)

    def get(self, account_id: str) -> tuple[Account, PublicKey] | None:
        return self._accounts.get(account_id)

    def remember(self, account: Account, key: PublicKey | None = None) -> PublicKey:
        """Cache ``account`` and return its parsed key (``key``: already parsed from the
        same JWK, as newAccount's ``jwk`` header is)."""
        cached = self._accounts.get(account.id)
        if cached is not None and cached[0] == account:
            return cached[1]
        if key is None:
            key = public_key_from_jwk(account.jwk)
        self._accounts[account.id] = (account, key)
        if len(self._accounts) > self.capacity:
            self._accounts.popitem(last=False)
        return key

    def forget(self, account_id: str) -> None:
        self._accounts.pop(account_id, None)


@dataclass
class Frontend:
    config: Config
    pool: asyncpg.Pool
    bus: Bus
    clock: Clock
    linker: Linker
    nonces: NonceService
    timing: Timing
    limits: Limits
    # Whose X-Forwarded-* the ACME listener believes (server.trusted_proxies).
    proxies: TrustedProxies
    # What EAB HMAC keys are derived from (RFC 8555 §7.3.4, eab.py); loaded at start.
    eab: EabSecret = field(default_factory=EabSecret)
    waiters: Waiters = field(default_factory=Waiters)
    accounts: KnownAccounts = field(default_factory=KnownAccounts)
    # Broadcast WorkDone to other replicas (pointless on the in-process bus).
    broadcast_results: bool = True
    # One log line per database/broker outage the ACME listener sees (common/outages.py).
    outages: OutageLog = field(default_factory=lambda: OutageLog("acme"))


FRONTEND = web.AppKey("frontend", Frontend)
