"""How messages travel: JSON of the tagged msgspec structs (never pickle).

A decoder accepts every tag it knows, so a rolling upgrade can publish ``v2`` while older
consumers still drain ``v1``; a body that does not decode, or whose fields do not have their
declared types, raises and is dead-lettered as poison.
"""

from __future__ import annotations

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
