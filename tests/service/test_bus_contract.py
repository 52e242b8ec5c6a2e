"""One contract, two buses: the AMQP client and its in-process twin deliver alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from acmegate.common.bus import AmqpBus, Bus, Delivery, InProcessBus, Queue, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.messages import OrderFinalized, Problem, WorkDone
from tests.support.metrics import local


def _result(n: int) -> OrderFinalized:
    return OrderFinalized(correlation_id=f"c{n}", order_id=f"o{n}", certificate_serial=str(n))


@pytest.fixture(params=["in-process", "amqp"])
async def bus(
    request: pytest.FixtureRequest, amqp_server_url: str, bus_namespace: str
) -> AsyncIterator[Bus]:
    bus: Bus
    if request.param == "in-process":
        bus = InProcessBus(max_deliveries=3)
    else:
        bus = AmqpBus(amqp_server_url, namespace=bus_namespace, max_deliveries=3)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def _dead_letters(bus: Bus, queue: Queue) -> list[bytes]:
    """What ended in the dead-letter queue of ``queue``."""
    if isinstance(bus, InProcessBus):
        return bus.dead_letters[queue]
    assert isinstance(bus, AmqpBus) and bus._connection is not None
    channel = await bus._connection.channel()
    dead = await channel.get_queue(f"{bus.name(queue)}.dead")
    bodies = []
    while (message := await dead.get(fail=False, no_ack=True)) is not None:
        bodies.append(message.body)
    await channel.close()
    return bodies


async def test_every_published_message_is_delivered_once_and_intact(bus: Bus) -> None:
    received: list[Message] = []
    done = asyncio.Event()

    async def handler(message: Message, delivery: Delivery) -> None:
        assert delivery.queue is Queue.FRONTEND_RESULTS
        assert delivery.delivery_count == 1
        received.append(message)
        if len(received) == 50:
            done.set()

    await bus.consume(Queue.FRONTEND_RESULTS, handler, prefetch=8)
    await asyncio.gather(*(bus.publish(Queue.FRONTEND_RESULTS, _result(n)) for n in range(50)))
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.2)
    assert sorted(received, key=lambda m: int(m.order_id[1:])) == [_result(n) for n in range(50)]


async def test_messages_published_before_a_consumer_exists_wait_for_it(bus: Bus) -> None:
    await bus.publish(Queue.FINALIZE_SIGNER, _result(1))
    got: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def handler(message: Message, delivery: Delivery) -> None:
        got.set_result(message)

    await bus.consume(Queue.FINALIZE_SIGNER, handler)
    assert await asyncio.wait_for(got, 10) == _result(1)


async def test_a_failing_handler_gets_the_message_again_then_it_is_dead_lettered(
    bus: Bus,
) -> None:
    counts: list[int] = []

    async def handler(message: Message, delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        raise RuntimeError("database down")

    await bus.consume(Queue.FINALIZE_POLICY, handler)
    await bus.publish(Queue.FINALIZE_POLICY, _result(7))
    for _ in range(100):
        if len(counts) >= 3:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert counts == [1, 2, 3]
    assert len(await _dead_letters(bus, Queue.FINALIZE_POLICY)) == 1


async def test_a_handler_that_recovers_acknowledges_on_the_retry(bus: Bus) -> None:
    seen: list[Delivery] = []
    done = asyncio.Event()

    async def handler(message: Message, delivery: Delivery) -> None:
        seen.append(delivery)
        if delivery.delivery_count == 1:
            raise RuntimeError("transient")
        done.set()

    await bus.consume(Queue.FINALIZE_ATTESTATION, handler)
    await bus.publish(Queue.FINALIZE_ATTESTATION, _result(3))
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.3)
    assert [d.delivery_count for d in seen] == [1, 2]
    assert seen[1].redelivered
    assert await _dead_letters(bus, Queue.FINALIZE_ATTESTATION) == []


async def test_a_rejected_message_is_dead_lettered_without_retry(bus: Bus) -> None:
    calls = 0

    async def handler(message: Message, delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise Reject("poison")

    await bus.consume(Queue.SIGNER_REVOKE, handler)
    problem = Problem(kind="malformed", detail="x")
    await bus.publish(
        Queue.SIGNER_REVOKE, OrderFinalized(correlation_id="c", order_id="o", problem=problem)
    )
    for _ in range(50):
        if calls:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert calls == 1
    assert len(await _dead_letters(bus, Queue.SIGNER_REVOKE)) == 1


async def test_broadcasts_reach_every_subscriber(bus: Bus) -> None:
    got: list[list[Message]] = [[], []]
    for index in range(2):

        async def subscriber(message: Message, index: int = index) -> None:
            got[index].append(message)

        await bus.subscribe(subscriber)
    notice = WorkDone(correlation_id="c", kind="order", id="o1")
    await bus.broadcast(notice)
    for _ in range(50):
        if all(got):
            break
        await asyncio.sleep(0.05)
    assert got == [[notice], [notice]]


async def test_a_request_gets_the_reply_of_one_server(bus: Bus) -> None:
    from acmegate.common.bus import RpcQueue

    async def server(message: Message) -> Message:
        assert isinstance(message, OrderFinalized)
        return OrderFinalized(
            correlation_id=message.correlation_id, order_id=message.order_id + "-answered"
        )

    await bus.serve(RpcQueue.SIGNER, server)
    reply = await bus.request(RpcQueue.SIGNER, _result(5), timeout=5)
    assert isinstance(reply, OrderFinalized) and reply.order_id == "o5-answered"


async def test_a_servers_acme_error_is_raised_at_the_caller(bus: Bus) -> None:
    from acmegate.common.bus import RpcQueue
    from acmegate.common.errors import AcmeError, ErrorKind

    async def server(message: Message) -> Message:
        raise AcmeError(ErrorKind.NOT_FOUND, "no such certificate")

    await bus.serve(RpcQueue.POLICY, server)
    with pytest.raises(AcmeError) as caught:
        await bus.request(RpcQueue.POLICY, _result(6), timeout=5)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert caught.value.detail == "no such certificate"


async def test_a_request_nobody_serves_is_unavailable_quickly(bus: Bus) -> None:
    from acmegate.common.bus import RpcQueue, RpcUnavailable

    with pytest.raises(RpcUnavailable):
        await bus.request(RpcQueue.POLICY, _result(7), timeout=1)


# Both buses count what they do to each message in /metrics, the same way.
QUEUE = Queue.SIGNER_REVOKE  # any queue: the labels are the queue names


def counts() -> dict[str, float]:
    queue = str(QUEUE)
    return {
        "published": local("acmegate_bus_published_total", queue=queue),
        "acked": local("acmegate_bus_consumed_total", queue=queue, outcome="acked"),
        "retried": local("acmegate_bus_consumed_total", queue=queue, outcome="retried"),
        "redelivered": local("acmegate_bus_redeliveries_total", queue=queue),
        "rejected": local("acmegate_bus_dead_lettered_total", queue=queue, reason="rejected"),
        "exhausted": local(
            "acmegate_bus_dead_lettered_total", queue=queue, reason="max_deliveries"
        ),
        "handled": local("acmegate_bus_handler_duration_seconds_count", queue=queue),
    }


async def test_publishes_acks_retries_and_dead_letters_are_counted(bus: Bus) -> None:
    before = counts()

    async def handler(message: Message, delivery: Delivery) -> None:
        assert isinstance(message, OrderFinalized)
        if message.order_id == "flaky" and delivery.delivery_count == 1:
            raise RuntimeError("once")
        if message.order_id == "poison":
            raise Reject("never")
        if message.order_id == "broken":
            raise RuntimeError("always")

    await bus.consume(QUEUE, handler)
    for order_id in ("fine", "flaky", "poison", "broken"):
        await bus.publish(QUEUE, OrderFinalized(correlation_id="c", order_id=order_id))
    # fine 1, flaky 1+2, poison 1, broken 1+2+3 (then dead: max_deliveries 3) = 7 deliveries.
    for _ in range(100):
        if counts()["handled"] - before["handled"] == 7:
            break
        await asyncio.sleep(0.1)
    after = counts()
    moved = {key: after[key] - before[key] for key in after}
    assert moved == {
        "published": 4,
        "acked": 2,
        "retried": 3,
        "redelivered": 3,
        "rejected": 1,
        "exhausted": 1,
        "handled": 7,
    }
