-- Revoke On Failure: the devices the policy service approved under a lookup policy with
-- revoke_on_failure, re-checked every revocation_check.interval (recheck.py). The signer owns
-- the certificates (pki); this table only knows which devices hold some because the policy
-- service approved them, which is all a re-check needs: a device gone from the signal source
-- (or no longer managed) is revoked by its attested serial (RevokeCertificates.device_serial).
--
-- One row per (lookup policy, identity): a device approved again refreshes its row (and
-- reopens it if it was closed by a revocation).
CREATE TABLE policy.watched_devices (
    lookup_policy   text NOT NULL,
    identity_kind   text NOT NULL CHECK (identity_kind IN ('serial_number', 'udid', 'dns_name')),
    identity        text NOT NULL,
    -- The attested serial number: what the signer revokes by.
    device_serial   text NOT NULL,
    order_id        text NOT NULL,
    first_approved  timestamptz NOT NULL,
    last_approved   timestamptz NOT NULL,
    -- When a replica may next check it; claiming a row moves it forward (a lease).
    next_check_at   timestamptz NOT NULL,
    last_checked_at timestamptz,
    last_outcome    text,
    closed_at       timestamptz,
    closed_reason   text,
    PRIMARY KEY (lookup_policy, identity_kind, identity)
);

CREATE INDEX watched_devices_due ON policy.watched_devices (next_check_at)
    WHERE closed_at IS NULL;
