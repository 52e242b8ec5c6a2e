-- Server certificates (issue #15): orders of dns/ip identifiers hold one authorization per
-- identifier, each with the standard challenges (RFC 8555 §7.1.4, §8).
--
-- A wildcard order's authorization names the base domain and says `wildcard` (§7.1.3).
ALTER TABLE acme.authorizations ADD COLUMN wildcard boolean NOT NULL DEFAULT false;

-- How many of an order's authorizations are not yet valid. Applying a valid challenge
-- decrements it on the order row (which the UPDATE locks), so two authorizations validated at
-- once by two replicas cannot both see the other still pending: the second waits for the
-- first, re-reads the row and readies the order (RFC 8555 §7.1.6). Device orders have one.
ALTER TABLE acme.orders ADD COLUMN pending_authzs integer NOT NULL DEFAULT 1;
