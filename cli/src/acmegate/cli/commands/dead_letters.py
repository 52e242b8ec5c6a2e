"""``acmegate dead-letters list|replay|discard``: what RabbitMQ's dead-letter queues hold, and
sending it back to its work queue or away (docs/operations.md "Dead letters").

Exit codes (cli/errors.py): 0 done, 1 the broker could not be reached, 2 bad usage or a
configuration without a broker (standalone has an in-process bus: no dead-letter queue
survives it, nothing to list).
"""

from __future__ import annotations

import argparse
from typing import Any

from acmegate.cli.errors import CliError, OperationFailed, load, run_async
from acmegate.common.bus import Queue, amqp_url


def _queue(value: str) -> Queue:
    for queue in Queue:
        if value in (queue.value, queue.name.lower().replace("_", "-")):
            return queue
    names = ", ".join(q.value for q in Queue)
    raise argparse.ArgumentTypeError(f"unknown queue {value!r}; one of {names}")


def _broker(args: argparse.Namespace) -> tuple[str, str]:
    config = load(args.config)
    url = amqp_url(config)
    if not url:
        raise CliError(
            "this configuration has no bus.url (standalone's in-process bus keeps no dead "
            "letters: nothing to list); give the distributed configuration or ACMEGATE_AMQP_URL"
        )
    return url, config.bus.namespace


async def _run(args: argparse.Namespace, url: str, namespace: str) -> int:
    from acmegate.common.bus.dead_letters import DeadLetters

    try:
        async with DeadLetters(url, namespace) as dead:
            if args.action == "list":
                counts = await dead.counts()
                for queue in Queue:
                    if args.queue is not None and queue is not args.queue:
                        continue
                    print(f"{namespace}.{queue}.dead\t{counts[queue]}")
                    if args.messages and counts[queue]:
                        for letter in await dead.list(queue):
                            print(
                                f"  {letter.message_id}\t{letter.schema or '-'}\t"
                                f"{letter.reason or '-'}\t{letter.size} bytes"
                            )
                return 0
            if args.action == "replay":
                done = await dead.replay(args.queue, args.message_id)
                print(f"replayed {done} message(s) to {namespace}.{args.queue}")
            else:
                done = await dead.discard(args.queue, args.message_id)
                print(f"discarded {done} message(s) from {namespace}.{args.queue}.dead")
            return 0
    except OSError as exc:
        raise OperationFailed(f"RabbitMQ unreachable: {exc}") from exc


def cmd_dead_letters(args: argparse.Namespace) -> int:
    url, namespace = _broker(args)
    result: int = run_async(_run(args, url, namespace))
    return result


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dead-letters", help="list, replay or discard RabbitMQ dead letters"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="count (and with --messages show) dead letters")
    listing.add_argument("--queue", type=_queue, help="only this work queue")
    listing.add_argument("--messages", action="store_true", help="one line per message")
    for action, text in (
        ("replay", "publish dead letters to their work queue again"),
        ("discard", "delete dead letters"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--queue", type=_queue, required=True, help="the work queue")
        sub.add_argument("--message-id", help="only this message (default: all of the queue)")
    for sub in (listing, *(actions.choices[a] for a in ("replay", "discard"))):
        sub.add_argument("--config", required=True, help="YAML configuration file")
        sub.set_defaults(func=cmd_dead_letters)
