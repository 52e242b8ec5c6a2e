"""What every handler and consumer of the frontend works with, built once at start."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web

from acmegate.common.bus import Bus
from acmegate.common.clock import Clock
from acmegate.common.config import Config, seconds
from acmegate.frontend.jws import PublicKey, public_key_from_jwk
from acmegate.frontend.linker import Linker
from acmegate.frontend.nonces import NonceService
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
class AccountKeys:
    """Parsed account public keys by thumbprint: a JWK is parsed once, not per request."""

    capacity: int = 50_000
    _keys: OrderedDict[str, PublicKey] = field(default_factory=OrderedDict)

    def get(self, thumbprint: str, jwk: dict[str, Any]) -> PublicKey:
        key = self._keys.get(thumbprint)
        if key is None:
            key = public_key_from_jwk(jwk)
            self._keys[thumbprint] = key
            if len(self._keys) > self.capacity:
                self._keys.popitem(last=False)
        return key


@dataclass
class Frontend:
    config: Config
    pool: asyncpg.Pool
    bus: Bus
    clock: Clock
    linker: Linker
    nonces: NonceService
    timing: Timing
    waiters: Waiters = field(default_factory=Waiters)
    keys: AccountKeys = field(default_factory=AccountKeys)
    # Broadcast WorkDone to other replicas (pointless on the in-process bus).
    broadcast_results: bool = True


FRONTEND = web.AppKey("frontend", Frontend)
