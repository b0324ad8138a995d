-- A claim admits messages under the pace (`handed_off_at`), but each provider call starts
-- later, when a hand-off task reaches it. `call_started_at` marks the call itself, written
-- (after a last consent check under the phone's lock) just before the request goes out: after a
-- crash a `sending` message without it was never handed over and is queued again, and only
-- one with it may have reached the carrier (`unknown`).
ALTER TABLE messages ADD COLUMN call_started_at BIGINT;

-- Bumped whenever an estimate or a recurring service is saved: the campaign runner redoes
-- its pass over a tenant's estimates or services only when this moved or a step falls due,
-- instead of reloading them all every second.
CREATE TABLE campaign_inputs (
    tenant_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
