-- The daily cap counted a day of the tenant's hand-offs on every claim; hand-offs are now
-- counted per tenant per hour, written by the claim that holds the tenant's daily lock.
CREATE TABLE tenant_handoffs (
    tenant_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);
INSERT INTO tenant_handoffs (tenant_id, hour, n)
    SELECT tenant_id, handed_off_at / 3600000, COUNT(*) FROM messages
    WHERE handed_off_at IS NOT NULL
      AND handed_off_at > (EXTRACT(EPOCH FROM now())::BIGINT - 2 * 86400) * 1000
    GROUP BY tenant_id, handed_off_at / 3600000;
DROP INDEX messages_tenant_handoff;
-- The frequency cap is about marketing texts only.
DROP INDEX messages_phone_handoff;
CREATE INDEX messages_marketing_handoff ON messages(tenant_id, phone, handed_off_at)
    WHERE purpose = 'marketing' AND handed_off_at IS NOT NULL;
