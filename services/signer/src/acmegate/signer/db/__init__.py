"""The signer's ``pki`` schema, one module per concern: idempotent :mod:`.issuance`, the
certificate :mod:`.inventory`, :mod:`.revocations` and :mod:`.crls` storage."""
