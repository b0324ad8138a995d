-- Outbound events (CONTRACT.md "Outbound events"): the endpoints a tenant registered, and
-- triggers that write each event to the outbox in the transaction of the change it reports.
-- The triggers only copy what changed into the event's JSON; nothing is decided here.

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    url TEXT NOT NULL,
    -- The HMAC-SHA256 key of the endpoint's Assent-Signature (shown once, at creation).
    secret TEXT NOT NULL,
    on_consent_changed INTEGER NOT NULL,
    on_message_status INTEGER NOT NULL,
    on_review_opened INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- Deleted endpoints stay for their delivery log; nothing more is written for them.
    deleted_at INTEGER
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created_at, id);
CREATE INDEX outbox_endpoint ON outbox(endpoint_id, id) WHERE endpoint_id IS NOT NULL;

-- consent.changed: every ledger entry that changes a state.
CREATE TRIGGER ledger_consent_changed AFTER INSERT ON consent_ledger
WHEN NEW.old_state <> NEW.new_state
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
           json_object('id', r.eid, 'type', 'consent.changed',
                       'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.occurred_at / 1000, 'unixepoch'),
                       'data', json_object('phone', NEW.phone, 'channel', NEW.channel,
                                           'old_state', NEW.old_state, 'new_state', NEW.new_state,
                                           'source', NEW.source, 'actor', NEW.actor,
                                           'ledger_seq', NEW.seq)),
           NEW.phone || ' ' || e.id, NEW.occurred_at, NEW.occurred_at
    FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS eid) r
    JOIN webhook_endpoints e
      ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_consent_changed = 1;
END;

-- message.status: every status change of an outbound message.
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

-- review.opened: a reply that may be a revocation waits for a person.
CREATE TRIGGER reviews_opened_event AFTER INSERT ON reviews
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
           json_object('id', r.eid, 'type', 'review.opened',
                       'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at / 1000, 'unixepoch'),
                       'data', json_object('review_id', NEW.id, 'phone', NEW.phone, 'thread', NEW.thread,
                                           'message_id', NEW.message_id, 'word', NEW.word,
                                           'deadline', CASE WHEN NEW.deadline_at IS NULL THEN NULL
                                             ELSE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.deadline_at / 1000, 'unixepoch') END)),
           NEW.phone || ' ' || e.id, NEW.created_at, NEW.created_at
    FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS eid) r
    JOIN webhook_endpoints e
      ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_review_opened = 1;
END;
