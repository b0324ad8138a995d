-- Twilio-compatible sending (CONTRACT.md "Twilio-compatible sending"): each tenant's account
-- SID, the status callbacks callers asked for, and the durable outbox their deliveries (and
-- the outbound events) wait in.

-- One row per tenant. `auth_token` is the tenant API key as last presented with HTTP Basic
-- auth on the Twilio-compatible API: Twilio's X-Twilio-Signature is an HMAC keyed with the
-- auth token itself, so status callbacks can only be signed with the key in hand (the
-- tenants table keeps its hash only). NULL until the tenant first uses that API.
CREATE TABLE twilio_accounts (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    account_sid TEXT NOT NULL UNIQUE,
    auth_token TEXT
);
INSERT INTO twilio_accounts (tenant_id, account_sid)
SELECT id, 'AC' || lower(hex(randomblob(16))) FROM tenants;

-- A message sent with a StatusCallback: where its status changes go.
CREATE TABLE status_callbacks (
    tenant_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);

-- Deliveries waiting to go (or gone): a status callback or an outbound event, written in the
-- transaction of the change it reports. `ordering_key` (the phone, and the target) keeps a
-- phone's deliveries in order: one waits while an earlier one with its key is undelivered.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stable across retries; one event sent to several endpoints keeps its id.
    event_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    endpoint_id TEXT,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    given_up_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_event ON outbox(event_id);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX outbox_order ON outbox(ordering_key, id) WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- Every status change of a message with a status callback writes its delivery, in the same
-- transaction, whichever path changed it (hand-off, delivery report, retry, recovery).
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
