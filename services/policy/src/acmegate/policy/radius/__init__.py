"""The RADIUS-time device check FreeRADIUS calls during EAP-TLS (docs/radius.md).

- :mod:`.presented`: the certificate or FreeRADIUS's attributes of it, and the identity;
- :mod:`.trust`: only certificates of the gateway's own CAs are looked at;
- :mod:`.check`: the signer's record of the certificate, the fresh lookup of the device it
  was issued to, the verdict, Revoke On Failure;
- :mod:`.app`: the aiohttp endpoint and its listener.
"""

from acmegate.policy.radius.app import RadiusEndpoint, radius_app
from acmegate.policy.radius.check import RadiusCheck, RadiusDecision, SignerUnavailable
from acmegate.policy.radius.presented import MalformedRequest, Presented, identity_of, parse
from acmegate.policy.radius.trust import CaTrust, TrustError, Untrusted, oneline

__all__ = [
    "CaTrust",
    "MalformedRequest",
    "Presented",
    "RadiusCheck",
    "RadiusDecision",
    "RadiusEndpoint",
    "SignerUnavailable",
    "TrustError",
    "Untrusted",
    "identity_of",
    "oneline",
    "parse",
    "radius_app",
]
