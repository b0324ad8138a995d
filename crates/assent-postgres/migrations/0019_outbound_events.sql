-- Outbound events (CONTRACT.md "Outbound events"): the endpoints a tenant registered, and
-- triggers that write each event to the outbox in the transaction of the change it reports.
-- The triggers only copy what changed into the event's JSON; nothing is decided here.

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    url TEXT NOT NULL,
    -- The HMAC-SHA256 key of the endpoint's Assent-Signature (shown once, at creation).
    secret TEXT NOT NULL,
    on_consent_changed BOOLEAN NOT NULL,
    on_message_status BOOLEAN NOT NULL,
    on_review_opened BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    -- Deleted endpoints stay for their delivery log; nothing more is written for them.
    deleted_at BIGINT
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created_at, id);
CREATE INDEX outbox_endpoint ON outbox(endpoint_id, id) WHERE endpoint_id IS NOT NULL;

CREATE FUNCTION outbox_iso(ms BIGINT) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT to_char(to_timestamp(ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- consent.changed: every ledger entry that changes a state.
CREATE FUNCTION outbox_consent_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.old_state IS DISTINCT FROM NEW.new_state THEN
        INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
        SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
               json_build_object('id', r.eid, 'type', 'consent.changed',
                                 'created_at', outbox_iso(NEW.occurred_at),
                                 'data', json_build_object('phone', NEW.phone, 'channel', NEW.channel,
                                     'old_state', NEW.old_state, 'new_state', NEW.new_state,
                                     'source', NEW.source, 'actor', NEW.actor,
                                     'ledger_seq', NEW.seq))::text,
               NEW.phone || ' ' || e.id, NEW.occurred_at, NEW.occurred_at
        FROM (SELECT 'evt_' || md5(random()::text || clock_timestamp()::text) AS eid) r
        JOIN webhook_endpoints e
          ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_consent_changed;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_consent_changed AFTER INSERT ON consent_ledger
FOR EACH ROW EXECUTE FUNCTION outbox_consent_changed();

-- message.status: every status change of a message.
CREATE FUNCTION outbox_message_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
           json_build_object('id', r.eid, 'type', 'message.status',
                             'created_at', outbox_iso(NEW.updated_at),
                             'data', json_build_object('message_id', NEW.id, 'phone', NEW.phone,
                                 'from', NEW.from_number, 'to', NEW.to_number,
                                 'status', NEW.status, 'previous_status', OLD.status,
                                 'reason', NEW.reason))::text,
           NEW.phone || ' ' || e.id, NEW.updated_at, NEW.updated_at
    FROM (SELECT 'evt_' || md5(random()::text || clock_timestamp()::text) AS eid) r
    JOIN webhook_endpoints e
      ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_message_status;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_status_event AFTER UPDATE OF status ON messages
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION outbox_message_status();

-- review.opened: a reply that may be a revocation waits for a person.
CREATE FUNCTION outbox_review_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT r.eid, e.tenant_id, 'event', e.id, e.url,
           json_build_object('id', r.eid, 'type', 'review.opened',
                             'created_at', outbox_iso(NEW.created_at),
                             'data', json_build_object('review_id', NEW.id, 'phone', NEW.phone,
                                 'thread', NEW.thread, 'message_id', NEW.message_id,
                                 'word', NEW.word,
                                 'deadline', CASE WHEN NEW.deadline_at IS NULL THEN NULL
                                                  ELSE outbox_iso(NEW.deadline_at) END))::text,
           NEW.phone || ' ' || e.id, NEW.created_at, NEW.created_at
    FROM (SELECT 'evt_' || md5(random()::text || clock_timestamp()::text) AS eid) r
    JOIN webhook_endpoints e
      ON e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.on_review_opened;
    RETURN NULL;
END
$$;
CREATE TRIGGER reviews_opened_event AFTER INSERT ON reviews
FOR EACH ROW EXECUTE FUNCTION outbox_review_opened();
