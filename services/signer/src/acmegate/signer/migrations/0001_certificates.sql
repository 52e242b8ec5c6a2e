-- The certificate inventory of the signer (schema pki, owned by acmegate.signer).
--
-- One row per issued certificate, at most one per order (order_id UNIQUE): the signer takes
-- that key before it signs, which is what makes issuance idempotent per order (see store.py).

CREATE TABLE pki.certificates (
    -- Lower-case hex without separators (serials.py); 128-bit random, so 32 digits.
    serial            text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    order_id          text NOT NULL UNIQUE,
    ca_name           text NOT NULL,
    template          text NOT NULL,
    account_id        text NOT NULL,
    identifier_type   text,
    identifier_value  text,
    -- The attested device serial (record.device.serial_number): revocation by device.
    device_serial     text,
    status            text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    not_before        timestamptz NOT NULL,
    not_after         timestamptz NOT NULL,
    -- NULL only inside the transaction that reserves the row and signs: the row is stored
    -- complete before it commits, so no other session ever sees it NULL.
    der               bytea,
    -- The PEM chain as sent to the client (RFC 8555 §7.4.2): leaf, then the issuer chain.
    chain_pem         text,
    -- Why it was issued: the EnrollmentRecord (messages.py) as JSON.
    record            jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    revocation_reason text,
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK (not_before < not_after)
);

CREATE INDEX certificates_device_serial_idx ON pki.certificates (device_serial)
    WHERE device_serial IS NOT NULL;
CREATE INDEX certificates_account_id_idx ON pki.certificates (account_id);
CREATE INDEX certificates_ca_name_idx ON pki.certificates (ca_name, created_at);
CREATE INDEX certificates_status_idx ON pki.certificates (status, not_after);
