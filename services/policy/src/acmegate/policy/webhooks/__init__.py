"""Jamf Pro webhooks (docs/jamf.md "Webhooks"): drop cached lookups, re-check at once.

- :mod:`.payload`: what a webhook names, read strictly and never believed;
- :mod:`.app`: the authenticated, rate-limited listener and what it does.
"""

from acmegate.policy.webhooks.app import TokenBucket, WebhookActions, WebhookReceiver, webhook_app
from acmegate.policy.webhooks.payload import MalformedWebhook, Named, parse

__all__ = [
    "MalformedWebhook",
    "Named",
    "TokenBucket",
    "WebhookActions",
    "WebhookReceiver",
    "parse",
    "webhook_app",
]
