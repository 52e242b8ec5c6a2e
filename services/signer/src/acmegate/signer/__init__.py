"""The signer service: certificate authorities, their keys, issuance, inventory and revocation.

- :mod:`keys`: where a CA private key lives (encrypted file, PKCS#11 token) and how it signs;
- :mod:`pkcs11_key`: keys inside a PKCS#11 token (SoftHSM2, an HSM), which sign in the token;
- :mod:`external_signing` and :mod:`der`: certificates, CRLs, OCSP responses and CSRs signed
  by a key outside the process (the TBS from ``cryptography``, the signature from the token);
- :mod:`chains`: checks on CA certificates and chains shared by loading and import;
- :mod:`ca_init`: ``acmegate ca init`` / ``acmegate ca import``;
- :mod:`ca_csr`: ``acmegate ca csr`` / ``acmegate ca install`` (an issuing CA under an
  enterprise root); :mod:`ca_report`: ``acmegate ca list``;
- :mod:`authorities`: the configured CAs, loaded once at start, with their publication URLs;
- :mod:`issuance`: a :class:`~acmegate.common.messages.CertificateSpec` becomes a certificate;
- :mod:`store`: the ``pki`` schema (certificate inventory, idempotent issuance, revocation,
  CRLs);
- :mod:`revocation`: reason codes; :mod:`crl` and :mod:`crl_publisher`: each CA's CRL;
  :mod:`ocsp`: the OCSP responder; :mod:`pki_http`: the HTTP listener serving them;
- :mod:`service`: the bus consumer (``Queue.FINALIZE_SIGNER``, ``Queue.SIGNER_REVOKE``).
"""
