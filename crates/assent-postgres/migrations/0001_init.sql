-- Times are UTC milliseconds since the epoch (BIGINT), enums their snake_case names and
-- structured values JSON text, exactly as in the SQLite backend. Every table that belongs
-- to a tenant carries tenant_id in its primary key.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    api_key_hash TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A number belongs to one tenant at most: the UNIQUE index on number says so across
-- processes too.
CREATE TABLE senders (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    number TEXT NOT NULL,
    transactional BOOLEAN NOT NULL,
    marketing BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
CREATE UNIQUE INDEX senders_number ON senders(number);

CREATE TABLE registrations (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE customers (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE contact_methods (
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    position INTEGER NOT NULL,
    job_notifications BOOLEAN NOT NULL,
    marketing_updates BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, phone),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);
CREATE INDEX contact_methods_phone ON contact_methods(tenant_id, phone);

-- The current consent of each phone: a cache of the ledger's fold, read and written under
-- the phone's advisory lock in the same transaction that appends to the ledger.
CREATE TABLE consent (
    tenant_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);

-- seq is commit order for each phone (every writer of a phone's entries holds its lock);
-- across phones it is only the order in which entries were inserted.
CREATE TABLE consent_ledger (
    tenant_id TEXT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    phone TEXT NOT NULL,
    channel TEXT NOT NULL,
    old_state TEXT NOT NULL,
    new_state TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    message_sid TEXT,
    body TEXT,
    rule TEXT,
    ip TEXT,
    user_agent TEXT,
    page TEXT,
    disclosure TEXT,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX consent_ledger_phone ON consent_ledger(tenant_id, phone, seq);
CREATE INDEX consent_ledger_time ON consent_ledger(tenant_id, occurred_at);

-- Evidence is kept at least five years (the TCPA's limitation period is four): the
-- database itself refuses to change or remove it, whoever asks.
CREATE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_ledger is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER consent_ledger_no_change
    BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_append_only();

CREATE TABLE messages (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    -- Insertion order, to list a phone's messages in the order they were written.
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
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
    due_at BIGINT NOT NULL,
    expires_at BIGINT,
    idempotency_key TEXT,
    handed_off_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX messages_id ON messages(id);
-- An inbound MessageSid is recorded once, whichever process receives it.
CREATE UNIQUE INDEX messages_provider_id ON messages(provider_id) WHERE provider_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency ON messages(tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_phone ON messages(tenant_id, phone, created_at, seq);
CREATE INDEX messages_due ON messages(priority, due_at, seq) WHERE status IN ('queued', 'deferred');
CREATE INDEX messages_sending ON messages(tenant_id, phone) WHERE status = 'sending';

CREATE TABLE reviews (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    phone TEXT NOT NULL,
    thread TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    word TEXT NOT NULL,
    decision TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
