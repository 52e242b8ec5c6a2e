-- The ACME state of acmegate (schema acme, owned by the frontend).
-- Statuses are the RFC 8555 §7.1.6 state machines; every status change in the code is a
-- compare-and-set (UPDATE ... WHERE status = expected).

CREATE TABLE acme.accounts (
    id           text PRIMARY KEY,
    -- RFC 7638 thumbprint of the account key: one account per key (RFC 8555 §7.3).
    thumbprint   text NOT NULL UNIQUE,
    jwk          jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'valid'
                 CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact      jsonb NOT NULL DEFAULT '[]',
    terms_agreed boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE acme.orders (
    id              text PRIMARY KEY,
    account_id      text NOT NULL REFERENCES acme.accounts (id),
    status          text NOT NULL
                    CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    expires         timestamptz NOT NULL,
    identifiers     jsonb NOT NULL,
    -- The device management platform whose enrollment token the order named (if any).
    platform        text,
    error           jsonb,
    certificate_id  text,
    processing_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_by_account ON acme.orders (account_id, created_at DESC);

CREATE TABLE acme.authorizations (
    id          text PRIMARY KEY,
    order_id    text NOT NULL REFERENCES acme.orders (id),
    account_id  text NOT NULL,
    identifier  jsonb NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires     timestamptz NOT NULL,
    -- DeviceClaims (msgspec JSON) once an attestation verified.
    claims      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX authorizations_by_order ON acme.authorizations (order_id);

CREATE TABLE acme.challenges (
    id          text PRIMARY KEY,
    authz_id    text NOT NULL REFERENCES acme.authorizations (id),
    account_id  text NOT NULL,
    type        text NOT NULL,
    token       text NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated   timestamptz,
    error       jsonb
);
CREATE INDEX challenges_by_authz ON acme.challenges (authz_id);

-- The chain delivered to the client (the signer keeps the authoritative inventory in pki).
CREATE TABLE acme.certificates (
    id          text PRIMARY KEY,
    order_id    text NOT NULL UNIQUE REFERENCES acme.orders (id),
    account_id  text NOT NULL,
    serial      text NOT NULL,
    chain_pem   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Work handed to the pipeline and not answered yet. A row is written in the same statement
-- that fences the challenge or order into `processing`, deleted in the same statement that
-- applies the result; the sweeper publishes rows again when their result is late and fails
-- their subject once the deadline passes (docs/design.md "Results and the sweeper").
CREATE TABLE acme.outbox (
    id               text PRIMARY KEY,          -- '<kind>:<subject id>'
    kind             text NOT NULL CHECK (kind IN ('challenge', 'order')),
    subject_id       text NOT NULL,
    queue            text NOT NULL,
    body             bytea NOT NULL,
    attempts         integer NOT NULL DEFAULT 1,
    deadline         timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON acme.outbox (next_attempt_at);

-- Redeemed nonces (RFC 8555 §6.5). Nonces are stateless MACs until used; a use inserts the
-- nonce here, so a replay hits the primary key, whichever frontend replica it reaches.
-- UNLOGGED: losing it in a database crash only lets nonces of the last minutes be replayed
-- against a freshly restarted database, and saves a WAL write per request.
CREATE UNLOGGED TABLE acme.used_nonces (
    id       bigint PRIMARY KEY,
    expires  timestamptz NOT NULL
);

CREATE TABLE acme.settings (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Enrollment tokens of device management platforms (issue #5): a profile's ClientIdentifier
-- may be the platform's token instead of the device serial; the order then records the
-- platform, and the device's identity comes from the attestation alone.
CREATE TABLE acme.platform_tokens (
    token       text PRIMARY KEY,
    platform    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
-- One live token per platform: rotation revokes the old one.
CREATE UNIQUE INDEX platform_tokens_live ON acme.platform_tokens (platform)
    WHERE revoked_at IS NULL;
