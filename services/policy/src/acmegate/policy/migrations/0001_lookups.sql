-- The audit of signal source lookups: one row per question put to a source during an
-- enrollment (found / unknown / unavailable), so an operator can answer "why was this device
-- refused?" and, later, the revoke-on-failure re-check can find each device's last answer.
-- Attributes are not copied here: the certificate's enrollment record (pki.certificates)
-- keeps those of issued certificates, and the inventory stays the source of truth.
CREATE TABLE policy.lookups (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    order_id       text,
    correlation_id text,
    lookup_policy  text NOT NULL,
    source         text NOT NULL,
    identity_kind  text NOT NULL CHECK (identity_kind IN ('serial_number', 'udid', 'dns_name')),
    identity       text NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('found', 'unknown', 'unavailable')),
    managed        boolean,
    detail         text
);

CREATE INDEX lookups_by_identity ON policy.lookups (source, identity, at DESC);
CREATE INDEX lookups_by_order ON policy.lookups (order_id);
