CREATE TABLE campaigns (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL,
    days TEXT NOT NULL,
    send_at BIGINT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resumed_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX campaigns_running ON campaigns(status) WHERE status IN ('scheduled', 'sending', 'active');

-- The send log: one row per phone per campaign step, whatever happened to it. The primary
-- key is what keeps a step from going twice to one phone when several processes run the
-- same campaign.
CREATE TABLE campaign_recipients (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    step TEXT NOT NULL,
    phone TEXT NOT NULL,
    message_id TEXT,
    skip_reason TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, step, phone)
);

CREATE TABLE estimates (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    phone TEXT,
    number TEXT,
    amount_cents BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX estimates_unsold ON estimates(tenant_id) WHERE status = 'unsold';

CREATE TABLE recurring_services (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    due_on TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE calls (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    missed BOOLEAN NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE customer_tags (
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag, customer_id)
);
INSERT INTO customer_tags (tenant_id, customer_id, tag)
    SELECT c.tenant_id, c.id, j.tag FROM customers c, json_array_elements_text(c.tags::json) AS j(tag)
    ON CONFLICT DO NOTHING;
