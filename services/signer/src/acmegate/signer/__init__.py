"""The signer service: certificate authorities, their keys, issuance, inventory and revocation.

- :mod:`keys`: where a CA private key lives (encrypted file now, PKCS#11 later) and how it signs;
- :mod:`chains`: checks on CA certificates and chains shared by loading and import;
- :mod:`ca_init`: ``acmegate ca init`` / ``acmegate ca import``;
- :mod:`authorities`: the configured CAs, loaded once at start;
- :mod:`issuance`: a :class:`~acmegate.common.messages.CertificateSpec` becomes a certificate;
- :mod:`store`: the ``pki`` schema (certificate inventory, idempotent issuance, revocation);
- :mod:`service`: the bus consumer (``Queue.FINALIZE_SIGNER``, ``Queue.SIGNER_REVOKE``).
"""
