-- External Account Binding (RFC 8555 §7.3.4, issue #15): keys an administrator issues to the
-- operators of servers. The HMAC key is not stored: it is HMAC-SHA256(EAB secret, key id)
-- (frontend/eab.py), so this table holds nothing that signs. A key binds one account, once.
CREATE TABLE acme.eab_keys (
    id           text PRIMARY KEY,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    -- The account the key created (no foreign key: retention never deletes a bound account,
    -- and a key stays used whatever happens to it).
    account_id   text UNIQUE,
    bound_at     timestamptz
);

-- The account → EAB key lookup server-certificate policies use (server_names.eab_keys).
ALTER TABLE acme.accounts ADD COLUMN eab_key_id text UNIQUE;

-- ARI (RFC 9773 §5): the certificate (acme.certificates.id) a newOrder said it replaces.
-- A certificate is replaced once an order replacing it is valid.
ALTER TABLE acme.orders ADD COLUMN replaces text;
CREATE INDEX orders_by_replaced ON acme.orders (replaces) WHERE replaces IS NOT NULL;
