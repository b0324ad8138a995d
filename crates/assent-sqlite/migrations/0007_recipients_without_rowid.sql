-- The send log is only ever reached by its key: clustered on the key, a fan-out writes one
-- B-tree per recipient instead of a table and its index.
CREATE TABLE campaign_recipients_keyed (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    step TEXT NOT NULL,
    phone TEXT NOT NULL,
    message_id TEXT,
    skip_reason TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, step, phone)
) WITHOUT ROWID;
INSERT INTO campaign_recipients_keyed (tenant_id, campaign_id, step, phone, message_id, skip_reason, created_at)
    SELECT tenant_id, campaign_id, step, phone, message_id, skip_reason, created_at FROM campaign_recipients;
DROP TABLE campaign_recipients;
ALTER TABLE campaign_recipients_keyed RENAME TO campaign_recipients;
