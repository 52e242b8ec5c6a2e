"""Asking the signer or the policy service (request/reply on the bus) for the admin API."""

from __future__ import annotations

from typing import TypeVar

from acmegate.common.bus import RpcQueue, RpcUnavailable
from acmegate.common.bus.codec import Message
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import new_correlation_id
from acmegate.frontend.admin.context import Admin

R = TypeVar("R")

_SERVICE = {RpcQueue.SIGNER: "signer", RpcQueue.POLICY: "policy"}


def correlation_id() -> str:
    return new_correlation_id()


async def ask(
    admin: Admin,
    queue: RpcQueue,
    request: Message,
    reply_type: type[R],
    *,
    timeout: float | None = None,
) -> R:
    """The reply of ``queue``'s service; ``unavailable`` (503) when it does not answer.

    An error the service raised (say ``notFound``) is raised here as the same AcmeError.
    """
    try:
        reply = await admin.frontend.bus.request(
            queue, request, timeout=timeout if timeout is not None else admin.rpc_timeout
        )
    except RpcUnavailable as exc:
        raise AcmeError(
            ErrorKind.UNAVAILABLE, f"the {_SERVICE[queue]} service did not answer ({exc})"
        ) from exc
    if not isinstance(reply, reply_type):
        raise AcmeError(
            ErrorKind.SERVER_INTERNAL,
            f"the {_SERVICE[queue]} service answered {type(reply).__name__}",
        )
    return reply
