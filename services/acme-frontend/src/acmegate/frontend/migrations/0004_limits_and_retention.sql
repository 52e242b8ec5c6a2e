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
