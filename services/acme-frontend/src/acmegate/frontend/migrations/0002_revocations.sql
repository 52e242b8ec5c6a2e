-- ACME revokeCert (RFC 8555 §7.6): the revocation as this edge recorded it.
--
-- The signer's pki.certificates is the authority on revocation (CRL, OCSP); these columns let
-- the frontend answer a second request for the same certificate with `alreadyRevoked`
-- (compare-and-set on revoked_at IS NULL) without asking the signer.

ALTER TABLE acme.certificates
    ADD COLUMN revoked_at timestamptz,
    -- RFC 5280 §5.3.1 CRLReason code as the client sent it.
    ADD COLUMN revocation_reason integer;

-- revokeCert names the certificate, not its URL: it is found by serial.
CREATE INDEX certificates_by_serial ON acme.certificates (serial);
