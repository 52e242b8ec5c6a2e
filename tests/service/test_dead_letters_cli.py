"""``acmegate dead-letters list|replay|discard`` against the real RabbitMQ (issue #12 item 4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acmegate.cli.main import main
from acmegate.common.bus import AmqpBus, Delivery, Queue, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.messages import WorkDone
from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import gateway_config


async def test_a_dead_letter_is_listed_replayed_and_discarded(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    amqp_server_url: str,
    bus_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = gateway_config(tmp_path / "gw", attestation_ca, namespace=bus_namespace)
    monkeypatch.setenv("ACMEGATE_AMQP_URL", amqp_server_url)
    config = str(files.config_path)
    accept = asyncio.Event()
    handled: list[str] = []

    async def handler(message: Message, _: Delivery) -> None:
        assert isinstance(message, WorkDone)
        if not accept.is_set():
            raise Reject("not today")
        handled.append(message.id)

    def cli(*args: str) -> str:
        assert main(["dead-letters", *args, "--config", config]) == 0
        return capsys.readouterr().out

    bus = AmqpBus(amqp_server_url, namespace=bus_namespace, max_deliveries=2)
    await bus.start()
    try:
        await bus.consume(Queue.FRONTEND_RESULTS, handler)
        for n in range(2):
            await bus.publish(
                Queue.FRONTEND_RESULTS, WorkDone(correlation_id=f"corr{n}", kind="order", id=str(n))
            )
        dead = f"{bus_namespace}.{Queue.FRONTEND_RESULTS}.dead"
        for _ in range(50):
            listed = await asyncio.to_thread(cli, "list", "--messages")
            if f"{dead}\t2" in listed:
                break
            await asyncio.sleep(0.1)
        assert f"{dead}\t2" in listed, listed
        letters = [line.split("\t") for line in listed.splitlines() if line.startswith("  ")]
        assert [(schema, reason) for _, schema, reason, _ in letters] == [
            ("work.done.v1", "rejected")
        ] * 2
        first = letters[0][0].strip()
        accept.set()
        replayed = await asyncio.to_thread(
            cli, "replay", "--queue", str(Queue.FRONTEND_RESULTS), "--message-id", first
        )
        assert "replayed 1 message" in replayed
        for _ in range(50):
            if handled:
                break
            await asyncio.sleep(0.1)
        assert len(handled) == 1
        discarded = await asyncio.to_thread(cli, "discard", "--queue", str(Queue.FRONTEND_RESULTS))
        assert "discarded 1 message" in discarded
        assert f"{dead}\t0" in await asyncio.to_thread(cli, "list")
    finally:
        await bus.close()


def test_standalone_has_no_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACMEGATE_AMQP_URL", raising=False)
    assert main(["dead-letters", "list", "--config", "examples/dev.yaml"]) == 2
    assert "standalone" in capsys.readouterr().err
