-- Keys that lead with tenant_id (issue 16, docs/SCALING.md "Keys"). A message is now
-- found by (tenant_id, id) and a provider's id is unique per tenant, so every unique key
-- of a tenant's messages names the tenant; a sender's pace is kept per (tenant_id, number).
-- SQLite cannot change a table's key: `messages` is rebuilt, each row keeping its rowid
-- (its insertion order, which the lists' keyset pages and every index carry), and every
-- index and trigger it had is created again as it was (0001, 0008, 0014, 0019, 0020).

CREATE TABLE messages_rekeyed (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    channel TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    phone TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL,
    purpose TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    provider_id TEXT,
    segments INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    expires_at INTEGER,
    idempotency_key TEXT,
    handed_off_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    call_started_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO messages_rekeyed (rowid, id, tenant_id, direction, channel, from_number, to_number, phone,
    body, kind, purpose, status, reason, provider_id, segments, priority, due_at, expires_at,
    idempotency_key, handed_off_at, created_at, updated_at, attempts, call_started_at)
SELECT rowid, id, tenant_id, direction, channel, from_number, to_number, phone,
    body, kind, purpose, status, reason, provider_id, segments, priority, due_at, expires_at,
    idempotency_key, handed_off_at, created_at, updated_at, attempts, call_started_at
FROM messages ORDER BY rowid;
-- Dropping the table drops its indexes and triggers; nothing else refers to it.
DROP TABLE messages;
ALTER TABLE messages_rekeyed RENAME TO messages;

-- A provider's message id (an inbound MessageSid, an outbound SID) is recorded once per tenant.
CREATE UNIQUE INDEX messages_provider_id ON messages(tenant_id, provider_id) WHERE provider_id IS NOT NULL;
-- As before (0001, 0008, 0014).
CREATE UNIQUE INDEX messages_idempotency ON messages(tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_phone ON messages(tenant_id, phone, created_at);
CREATE INDEX messages_due ON messages(priority, due_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX messages_sending ON messages(tenant_id, phone) WHERE status = 'sending';
CREATE INDEX messages_marketing_handoff ON messages(tenant_id, phone, handed_off_at)
    WHERE purpose = 'marketing' AND handed_off_at IS NOT NULL;
CREATE INDEX messages_tenant_newest ON messages(tenant_id, created_at);

-- As before (0019): a status change of a message with a status callback writes its delivery.
CREATE TRIGGER messages_status_callback AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, url, body, ordering_key, next_attempt_at, created_at)
    SELECT lower(hex(randomblob(16))), c.tenant_id, 'status_callback', c.url,
           json_object('message_id', NEW.id, 'status', NEW.status, 'reason', NEW.reason,
                       'to', NEW.to_number, 'from', NEW.from_number),
           NEW.phone || ' ' || c.url, NEW.updated_at, NEW.updated_at
    FROM status_callbacks c WHERE c.tenant_id = NEW.tenant_id AND c.message_id = NEW.id;
END;

-- As before (0020): message.status, every status change of an outbound message.
CREATE TRIGGER messages_status_event AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
           json_object('id', r.eid, 'type', 'message.status',
                       'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.updated_at / 1000, 'unixepoch'),
                       'data', json_object('message_id', NEW.id, 'phone', NEW.phone,
                                           'from', NEW.from_number, 'to', NEW.to_number,
                                           'status', NEW.status, 'previous_status', OLD.status,
                                           'reason', NEW.reason)),
           NEW.phone || ' ' || e.id, NEW.updated_at, NEW.updated_at
    FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS eid) r
    JOIN webhook_endpoints e
      ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_message_status = 1;
END;

-- A sender's pace belongs to the tenant whose number it is (a number is one tenant's at a
-- time: senders keeps it unique). A pace kept for a number that is no sender any more is
-- of no use and is not carried over.
CREATE TABLE sender_pacing_rekeyed (
    tenant_id TEXT NOT NULL,
    number TEXT NOT NULL,
    tat INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, number)
) WITHOUT ROWID;
INSERT INTO sender_pacing_rekeyed (tenant_id, number, tat)
SELECT s.tenant_id, p.number, p.tat FROM sender_pacing p JOIN senders s ON s.number = p.number;
DROP TABLE sender_pacing;
ALTER TABLE sender_pacing_rekeyed RENAME TO sender_pacing;
