"""The signer service: certificate authorities, their keys, issuance, inventory and revocation.

- :mod:`ca_key`: what a CA key is (the protocol, its error, its algorithms); :mod:`keys`:
  which key a configuration entry names; :mod:`file_key`: keys in encrypted PKCS#8 files;
- :mod:`pkcs11_key`: keys inside a PKCS#11 token (SoftHSM2, an HSM), which sign in the token;
- :mod:`external_signing` and :mod:`der`: certificates, CRLs, OCSP responses and CSRs signed
  by a key outside the process (the TBS from ``cryptography``, the signature from the token);
- :mod:`chains`: checks on CA certificates and chains shared by loading and setup;
- :mod:`authorities`: the configured CAs, loaded once at start, with their publication URLs;
- :mod:`issuance`: a :class:`~acmegate.common.messages.CertificateSpec` becomes a certificate;
- :mod:`db`: the ``pki`` schema (idempotent issuance, the certificate inventory, revocation,
  CRL storage);
- :mod:`revocation`: reason codes; :mod:`crl` and :mod:`crl_publisher`: each CA's CRL;
  :mod:`ocsp`: the OCSP responder; :mod:`pki_http`: the HTTP listener serving them;
- :mod:`service`: the bus consumer (``Queue.FINALIZE_SIGNER``, ``Queue.SIGNER_REVOKE``);
  :mod:`rpc`: the admin API's requests;
- :mod:`setup`: offline CA setup for the ``acmegate ca`` commands (init, import, csr,
  install, list).
"""
