"""The RADIUS-time device check FreeRADIUS calls during EAP-TLS (docs/radius.md).

- :mod:`.presented`: the certificate or FreeRADIUS's attributes of it, and the identity;
- :mod:`.trust`: only certificates of the gateway's own CAs are looked at;
- :mod:`.check`: the fresh lookup, the verdict, Revoke On Failure;
- :mod:`.app`: the aiohttp endpoint and its listener.
"""

from acmegate.policy.radius.app import RadiusEndpoint, radius_app
from acmegate.policy.radius.check import RadiusCheck, RadiusDecision
from acmegate.policy.radius.presented import MalformedRequest, Presented, identity_of, parse
from acmegate.policy.radius.trust import CaTrust, TrustError, oneline

__all__ = [
    "CaTrust",
    "MalformedRequest",
    "Presented",
    "RadiusCheck",
    "RadiusDecision",
    "RadiusEndpoint",
    "TrustError",
    "identity_of",
    "oneline",
    "parse",
    "radius_app",
]
