"""The admin listener: a REST API with its OpenAPI document, and a read-only dashboard.

It runs in the frontend process on its own host/port (``admin:``), behind a bearer token
(``admin.token``). What the frontend knows it answers itself (configuration, platforms and
their tokens, enrollment events); the signer and the policy service answer the rest over the
bus (request/reply): CAs and the certificate inventory, signal-source and lookup validation.
"""
