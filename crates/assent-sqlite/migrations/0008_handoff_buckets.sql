-- The daily cap read a day of the tenant's hand-offs (COUNT over an index) on every claim:
-- 100,000 messages into a day, each claim counted 100,000 index entries. Hand-offs are now
-- counted per tenant per hour in a table of their own, written in the claiming transaction.
CREATE TABLE tenant_handoffs (
    tenant_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour)
) WITHOUT ROWID;
INSERT INTO tenant_handoffs (tenant_id, hour, n)
    SELECT tenant_id, handed_off_at / 3600000, COUNT(*) FROM messages
    WHERE handed_off_at IS NOT NULL AND handed_off_at > (CAST(strftime('%s', 'now') AS INTEGER) - 2 * 86400) * 1000
    GROUP BY tenant_id, handed_off_at / 3600000;
DROP INDEX messages_tenant_handoff;
-- The frequency cap is about marketing texts only; transactional hand-offs (most of the
-- traffic) no longer touch its index.
DROP INDEX messages_phone_handoff;
CREATE INDEX messages_marketing_handoff ON messages(tenant_id, phone, handed_off_at)
    WHERE purpose = 'marketing' AND handed_off_at IS NOT NULL;
