"""A message stored before it is published (the outbox) is encoded once and sent as it is."""

from __future__ import annotations

import asyncio

from acmegate.common.bus import Delivery, InProcessBus, Queue, codec
from acmegate.common.messages import FinalizeOrder, Identifier

ORDER = FinalizeOrder(
    correlation_id="corr-1",
    order_id="o1",
    account_id="a1",
    identifiers=[Identifier("permanent-identifier", "C02X")],
    csr_der=b"\x30\x00",
    claims=[],
)


def test_a_stored_body_keeps_its_tag_and_correlation_id() -> None:
    encoded = codec.encoded(ORDER)
    assert encoded.body == codec.encode(ORDER)
    assert (encoded.schema, encoded.correlation_id) == ("order.finalize.v1", "corr-1")
    # The sweeper reads back only what the broker's properties repeat.
    assert codec.stored(encoded.body) == encoded


async def test_an_encoded_message_arrives_as_the_message() -> None:
    bus = InProcessBus()
    await bus.start()
    received: asyncio.Queue[codec.Message] = asyncio.Queue()

    async def handler(message: codec.Message, delivery: Delivery) -> None:
        received.put_nowait(message)

    try:
        await bus.consume(Queue.FINALIZE_ATTESTATION, handler, prefetch=1)
        await bus.publish(Queue.FINALIZE_ATTESTATION, codec.stored(codec.encode(ORDER)))
        assert await asyncio.wait_for(received.get(), 5) == ORDER
    finally:
        await bus.close()
