"""How messages travel: JSON of the tagged msgspec structs (never pickle).

A decoder accepts every tag it knows, so a rolling upgrade can publish ``v2`` while older
consumers still drain ``v1``; a body that does not decode, or whose fields do not have their
declared types, raises and is dead-lettered as poison.

A message that is stored before it is published (the frontend's outbox) is encoded once:
:class:`Encoded` carries the stored body to the bus as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from acmegate.common.admin_messages import AdminMessage
from acmegate.common.messages import PipelineMessage

Message = PipelineMessage | AdminMessage

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    """Decode a bus message; raises ``msgspec.ValidationError``/``DecodeError`` on poison."""
    return _decoder.decode(data)


def schema_of(message: Message) -> str:
    """The ``type`` tag, e.g. ``order.finalize.v1`` (also sent as an AMQP header)."""
    tag = type(message).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message already encoded: its body, its ``type`` tag and its correlation id (what
    the broker's message properties repeat)."""

    body: bytes
    schema: str
    correlation_id: str | None


class _Head(msgspec.Struct):
    """The two fields of a body the bus needs besides the body itself."""

    type: str
    correlation_id: str | None = None


_head_decoder = msgspec.json.Decoder(_Head)


def encoded(message: Message) -> Encoded:
    """``message`` encoded once, to be stored and published as it is."""
    return Encoded(encode(message), schema_of(message), getattr(message, "correlation_id", None))


def stored(body: bytes) -> Encoded:
    """A body :func:`encoded` made earlier; only its tag and correlation id are read."""
    head = _head_decoder.decode(body)
    return Encoded(body, head.type, head.correlation_id)
