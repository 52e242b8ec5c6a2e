-- Rate limits and retention (issue #8, "Limits a public endpoint needs").
--
-- acme.rate_limits holds one row per limited subject (a client address, an account, a device
-- serial): the GCRA "theoretical arrival time" of its next event (frontend/rate_limits.py).
-- A row whose tat has passed means a full budget, exactly like a missing row, so such rows
-- are deleted by the sweeper's retention step. Every replica reads and writes the same rows,
-- folded into the statements requests already run: the limit holds across replicas.
-- UNLOGGED like acme.used_nonces: a database crash forgets the counters (every budget is
-- full again) and in exchange no counter update costs a WAL write.
CREATE UNLOGGED TABLE acme.rate_limits (
    name     text NOT NULL,
    subject  text NOT NULL,
    tat      timestamptz NOT NULL,
    PRIMARY KEY (name, subject)
);
CREATE INDEX rate_limits_by_tat ON acme.rate_limits (tat);

-- When a delivered certificate expires: its chain (and the order that delivered it) are kept
-- until retention.certificates after that, so revokeCert and the certificate URL keep working
-- for as long as the certificate is valid. NULL (certificates delivered before this column
-- existed) is never purged.
ALTER TABLE acme.certificates ADD COLUMN not_after timestamptz;
CREATE INDEX certificates_by_not_after ON acme.certificates (not_after);

-- What the retention step looks for: orders past their expiry, accounts by age.
CREATE INDEX orders_by_expires ON acme.orders (expires);
CREATE INDEX accounts_by_created_at ON acme.accounts (created_at);
