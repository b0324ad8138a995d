-- Each sender's pace (its theoretical arrival time, see assent_core::pacing), kept in the
-- database so the limit holds across restarts and across processes (a claim writes it
-- only while it holds the sender's advisory lock).
CREATE TABLE sender_pacing (
    number TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE INDEX messages_tenant_handoff ON messages(tenant_id, handed_off_at) WHERE handed_off_at IS NOT NULL;
