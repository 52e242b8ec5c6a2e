"""``/api/v1/signal-sources``: the configured sources, and the guide's "Validate" button."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.admin_messages import AdminSignalSourceStatuses, AdminValidateSignalSource
from acmegate.common.bus import RpcQueue
from acmegate.common.config.model import JamfSourceConfig, SignalSourceConfig
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import path_text
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.rpc import ask, correlation_id
from acmegate.frontend.admin.views import SignalSource, SignalSourceValidation


def source_json(source: SignalSourceConfig) -> SignalSource:
    if isinstance(source, JamfSourceConfig):
        return SignalSource(source.name, "jamf_pro", source.description, source.url)
    return SignalSource(source.name, "static", source.description, None)


async def list_sources(request: web.Request) -> web.Response:
    config = request.app[ADMIN].frontend.config
    return json_response({"signal_sources": [source_json(s) for s in config.signal_sources]})


async def validate_source(request: web.Request) -> web.Response:
    """Ask the policy service to validate the source: ``ok`` and what it found or why not."""
    name = path_text(request, "name")
    reply = await ask(
        request.app[ADMIN],
        RpcQueue.POLICY,
        AdminValidateSignalSource(correlation_id=correlation_id(), name=name),
        AdminSignalSourceStatuses,
    )
    [status] = reply.sources
    return json_response(SignalSourceValidation(status.name, status.ok, status.detail))
