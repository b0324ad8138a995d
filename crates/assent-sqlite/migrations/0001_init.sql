-- Times are UTC milliseconds since the epoch.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    api_key_hash TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE senders (
    number TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    transactional INTEGER NOT NULL,
    marketing INTEGER NOT NULL
);
CREATE INDEX senders_tenant ON senders(tenant_id);

CREATE TABLE registrations (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE customers (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE contact_methods (
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    position INTEGER NOT NULL,
    job_notifications INTEGER NOT NULL,
    marketing_updates INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, phone),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);
CREATE INDEX contact_methods_phone ON contact_methods(tenant_id, phone);

-- The current consent of each phone: a cache of the ledger's fold, read in the same
-- transaction that appends to the ledger.
CREATE TABLE consent (
    tenant_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);

CREATE TABLE consent_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    channel TEXT NOT NULL,
    old_state TEXT NOT NULL,
    new_state TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    message_sid TEXT,
    body TEXT,
    rule TEXT,
    ip TEXT,
    user_agent TEXT,
    page TEXT,
    disclosure TEXT
);
CREATE INDEX consent_ledger_phone ON consent_ledger(tenant_id, phone, seq);
CREATE INDEX consent_ledger_time ON consent_ledger(tenant_id, occurred_at);

-- Evidence is kept at least five years (the TCPA's limitation period is four): the
-- database itself refuses to change or remove it.
CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger
BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END;
CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END;

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
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
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_provider_id ON messages(provider_id) WHERE provider_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency ON messages(tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_phone ON messages(tenant_id, phone, created_at);
CREATE INDEX messages_due ON messages(priority, due_at) WHERE status IN ('queued', 'deferred');
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
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);
