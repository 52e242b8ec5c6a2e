"""Validation of the standard challenges (RFC 8555 §8.3, §8.4; RFC 8737; RFC 8738) and CAA
(RFC 8659), from this replica's own network: one vantage point
(docs/server-certificates.md)."""
