"""``/api/v1/lookup-policies``: the configured lookups, and validating one with an identity."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.admin_messages import AdminLookupReport, AdminValidateLookup
from acmegate.common.bus import RpcQueue
from acmegate.common.config.model import LookupPolicyConfig
from acmegate.common.errors import malformed
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import clean_text, json_body, path_text
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.rpc import ask, correlation_id
from acmegate.frontend.admin.views import LookupPolicy, LookupValidationRequest


def lookup_json(policy: LookupPolicyConfig) -> LookupPolicy:
    return LookupPolicy(
        name=policy.name,
        description=policy.description,
        purpose=policy.purpose,
        signal_source=policy.signal_source,
        lookup_type=policy.lookup_type,
        identity=policy.identity,
        revoke_on_failure=policy.revoke_on_failure,
    )


async def list_lookups(request: web.Request) -> web.Response:
    config = request.app[ADMIN].frontend.config
    return json_response({"lookup_policies": [lookup_json(p) for p in config.lookup_policies]})


async def validate_lookup(request: web.Request) -> web.Response:
    """Run the lookup for an identity: its attributes and groups, or why validation failed."""
    name = path_text(request, "name")
    body = await json_body(request, LookupValidationRequest)
    identity = clean_text("$.identity", body.identity).strip()
    if not identity:
        raise malformed("$.identity: must not be empty")
    reply = await ask(
        request.app[ADMIN],
        RpcQueue.POLICY,
        AdminValidateLookup(correlation_id=correlation_id(), name=name, identity=identity),
        AdminLookupReport,
    )
    return json_response(reply.report)
