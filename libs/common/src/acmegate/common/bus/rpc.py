"""The part of request/reply both buses share: running a server handler and reading a reply."""

from __future__ import annotations

import structlog

from acmegate.common import messages
from acmegate.common.bus import codec
from acmegate.common.bus.base import RpcHandler
from acmegate.common.errors import AcmeError, ErrorKind

log = structlog.get_logger(__name__)


async def answer(handler: RpcHandler, request: codec.Message) -> codec.Message:
    """The handler's reply, or an :class:`RpcFailed` carrying what went wrong."""
    correlation_id = getattr(request, "correlation_id", "")
    try:
        return await handler(request)
    except AcmeError as error:
        return messages.RpcFailed(correlation_id=correlation_id, problem=error.to_problem())
    except Exception:
        log.exception("request handler failed", request=codec.schema_of(request))
        problem = AcmeError(ErrorKind.SERVER_INTERNAL, "the service failed to answer").to_problem()
        return messages.RpcFailed(correlation_id=correlation_id, problem=problem)


def unwrap(reply: codec.Message) -> codec.Message:
    """The reply itself, or the server's error raised here."""
    if isinstance(reply, messages.RpcFailed):
        raise AcmeError.from_problem(reply.problem)
    return reply
