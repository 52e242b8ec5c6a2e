-- CRLs (RFC 5280 §5) of the signer's CAs, and what each one covers.
--
-- Every signer replica serves the newest row of a CA, so all of them publish the same CRL.
-- (ca_name, number) is the primary key: CRL numbers strictly increase per CA (§5.2.3), and a
-- replica that raced another one to the same number fails its insert instead of publishing
-- a second CRL under that number.

CREATE TABLE pki.crls (
    ca_name      text NOT NULL,
    number       bigint NOT NULL CHECK (number > 0),
    this_update  timestamptz NOT NULL,
    next_update  timestamptz NOT NULL,
    -- pki.revocation_state.generation of the CA when this CRL's entries were read.
    generation   bigint NOT NULL,
    entries      integer NOT NULL,
    der          bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ca_name, number),
    CHECK (this_update < next_update)
);

-- One counter per CA, incremented in the same statement that revokes one of its
-- certificates. A CRL is stale when the counter has moved past the generation it recorded:
-- a cheap check that does not depend on who revoked, nor on clocks.
CREATE TABLE pki.revocation_state (
    ca_name     text PRIMARY KEY,
    generation  bigint NOT NULL DEFAULT 0
);

-- The CRL's entries: a CA's revoked certificates that have not expired yet.
CREATE INDEX certificates_revoked_idx ON pki.certificates (ca_name, not_after)
    WHERE status = 'revoked';
