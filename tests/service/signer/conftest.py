"""The signer on a real PostgreSQL database and the in-process bus, with a real CA on disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from acmegate.common.bus import Delivery, InProcessBus, Queue
from acmegate.common.bus.codec import Message
from acmegate.common.clock import FixedClock
from acmegate.common.config import Config, parse_config
from acmegate.common.config.model import FileKey, Pkcs11Key
from acmegate.common.db import create_pool
from acmegate.common.messages import OrderFinalized
from acmegate.common.migrations import migrate
from acmegate.common.runtime import Runtime
from acmegate.signer.ca_key import CaKey, CaPublicKey, HashName
from acmegate.signer.keys import open_ca_key
from acmegate.signer.service import SignerService, migrations
from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.files import CaFiles

PASSPHRASE = "signer service tests"


class CountingKey:
    """A real CA key that counts its certificate signatures (and can fail the first ones)."""

    def __init__(self, inner: CaKey, ledger: SignatureLedger) -> None:
        self._inner = inner
        self._ledger = ledger

    @property
    def description(self) -> str:
        return self._inner.description

    def public_key(self) -> CaPublicKey:
        return self._inner.public_key()

    async def sign_certificate(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        self._ledger.attempts += 1
        if self._ledger.delay:
            await asyncio.sleep(self._ledger.delay)  # a slow HSM: the reservation stays open
        if self._ledger.failures_left > 0:
            self._ledger.failures_left -= 1
            raise RuntimeError("simulated HSM failure")
        certificate = await self._inner.sign_certificate(builder, hash_name)
        self._ledger.signed.append(certificate)
        return certificate

    async def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, hash_name: HashName
    ) -> x509.CertificateRevocationList:
        return await self._inner.sign_crl(builder, hash_name)

    async def sign_ocsp_response(
        self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, hash_name: HashName
    ) -> ocsp.OCSPResponse:
        self._ledger.ocsp_signatures += 1
        return await self._inner.sign_ocsp_response(builder, responder, hash_name)

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class SignatureLedger:
    """Every signature made by the CA keys of one test, across every signer replica."""

    attempts: int = 0
    failures_left: int = 0
    delay: float = 0.0
    signed: list[x509.Certificate] = field(default_factory=list)
    ocsp_signatures: int = 0

    def opener(self) -> Callable[[str, FileKey | Pkcs11Key], CaKey]:
        return lambda name, config: CountingKey(open_ca_key(name, config), self)


@dataclass
class Results:
    """What the signer sent to ``Queue.FRONTEND_RESULTS``."""

    queue: asyncio.Queue[OrderFinalized] = field(default_factory=asyncio.Queue)

    async def handler(self, message: Message, delivery: Delivery) -> None:
        assert isinstance(message, OrderFinalized)
        self.queue.put_nowait(message)

    async def next(self) -> OrderFinalized:
        return await asyncio.wait_for(self.queue.get(), 10)


@dataclass
class SignerWorld:
    files: CaFiles
    config: Config
    bus: InProcessBus
    pool: asyncpg.Pool
    clock: FixedClock
    ledger: SignatureLedger
    results: Results
    start_signer: Callable[..., Awaitable[SignerService]]

    @property
    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.files.chain[0].read_bytes())


@pytest.fixture
async def world(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SignerWorld]:
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", PASSPHRASE)
    files = init_ca(
        tmp_path,
        name="issuing",
        common_name="acmegate Service Test CA",
        subject=[("O", "acmegate tests")],
        key_type="ec-p256",
        hash="sha256",
        passphrase=PASSPHRASE,
    )
    config = parse_config(files.config_yaml, base_dir=tmp_path)
    bus = InProcessBus(max_deliveries=5)
    await bus.start()
    pools: list[asyncpg.Pool] = []
    services: list[SignerService] = []
    pool = await create_pool(database_url, min_size=1, max_size=5)
    pools.append(pool)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    ledger = SignatureLedger()
    results = Results()
    await bus.consume(Queue.FRONTEND_RESULTS, results.handler, prefetch=1)

    async def start_signer(
        *, own_pool: bool = False, config_override: Config | None = None
    ) -> SignerService:
        """A signer replica; ``own_pool`` gives it its own connections, as another pod has;
        ``config_override`` replaces the world's configuration (e.g. with a ``pki:``)."""
        replica_pool = pool
        if own_pool:
            replica_pool = await create_pool(database_url, min_size=1, max_size=5)
            pools.append(replica_pool)
        runtime = Runtime(config=config_override or config, bus=bus, pool=replica_pool, clock=clock)
        service = SignerService(runtime, open_key=ledger.opener())
        connection = await asyncpg.connect(database_url)
        try:
            await migrate(connection, *migrations())
        finally:
            await connection.close()
        await service.start()
        services.append(service)
        return service

    try:
        yield SignerWorld(files, config, bus, pool, clock, ledger, results, start_signer)
    finally:
        await bus.close()
        for service in services:
            await service.stop()
        for each in pools:
            await each.close()
