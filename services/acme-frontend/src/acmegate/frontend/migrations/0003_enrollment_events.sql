-- Enrollment events (issue #5): one row per finished enrollment, completed or failed, written
-- by the same statement that applies the result (db/work.py), so recording costs no extra
-- round trip. The admin API, `acmegate enrollments` and the dashboard read them.
--
-- `identifier` is kept only when the order named the device itself: an enrollment token
-- (orders with a platform) is the platform's credential and is not copied here.

CREATE TABLE acme.enrollment_events (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                    timestamptz NOT NULL,
    outcome               text NOT NULL CHECK (outcome IN ('completed', 'failed')),
    -- Where it ended: the challenge (attestation) or the order (finalize pipeline).
    stage                 text NOT NULL CHECK (stage IN ('challenge', 'order')),
    order_id              text NOT NULL,
    account_id            text NOT NULL,
    identifier            text,
    platform              text,
    device_serial         text,
    -- {"kind": ..., "detail": ...} of a failure.
    problem               jsonb,
    certificate_serial    text,
    enrollment_policy     text,
    certificate_template  text,
    signal_source         text
);
CREATE INDEX enrollment_events_recent ON acme.enrollment_events (at DESC, id DESC);
CREATE INDEX enrollment_events_by_outcome ON acme.enrollment_events (outcome, at DESC, id DESC);
