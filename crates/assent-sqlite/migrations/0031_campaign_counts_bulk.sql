-- The fan-out counts what it records itself, once per (campaign, status, reason) of a
-- batch, instead of an UPSERT per recipient from the row triggers (crates/assent-sqlite/
-- src/campaigns.rs, add_recipients): the per-row counting made a 1,000,000-recipient
-- fan-out 12.5 times the raw insert of as many rows. While this table holds a row, the two
-- insert triggers leave the counters alone; only the fan-out writes one, inside the single
-- writer's transaction, and deletes it before that transaction goes on.
CREATE TABLE campaign_counts_bulk (id INTEGER PRIMARY KEY);

DROP TRIGGER campaign_counts_recipient;
CREATE TRIGGER campaign_counts_recipient AFTER INSERT ON campaign_recipients
WHEN NOT EXISTS (SELECT 1 FROM campaign_counts_bulk)
BEGIN
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT NEW.tenant_id, NEW.campaign_id,
           CASE WHEN NEW.skip_reason IS NOT NULL THEN 'skipped'
                ELSE COALESCE((SELECT m.status FROM messages m
                               WHERE m.tenant_id = NEW.tenant_id AND m.id = NEW.message_id), 'queued') END,
           COALESCE(NEW.skip_reason, ''), 1
    WHERE true
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT NEW.tenant_id, NEW.campaign_id, 'opted_out_after', '', 1
    FROM messages m
    WHERE NEW.message_id IS NOT NULL AND NEW.skip_reason IS NULL
      AND m.tenant_id = NEW.tenant_id AND m.id = NEW.message_id AND m.handed_off_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM consent_ledger l
                  WHERE l.tenant_id = NEW.tenant_id AND l.phone = NEW.phone
                    AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                    AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000)
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
END;

DROP TRIGGER campaign_counts_message_insert;
CREATE TRIGGER campaign_counts_message_insert AFTER INSERT ON messages
WHEN NEW.kind = 'campaign' AND (NEW.status <> 'queued' OR NEW.handed_off_at IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM campaign_counts_bulk)
BEGIN
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT r.tenant_id, r.campaign_id, s.status, '', s.d
    FROM campaign_recipients r,
         (SELECT 'queued' AS status, -1 AS d UNION ALL SELECT NEW.status, 1) s
    WHERE r.message_id = NEW.id AND r.tenant_id = NEW.tenant_id AND r.skip_reason IS NULL
      AND NEW.status <> 'queued'
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT r.tenant_id, r.campaign_id, 'opted_out_after', '', 1
    FROM campaign_recipients r
    WHERE r.message_id = NEW.id AND r.tenant_id = NEW.tenant_id AND r.skip_reason IS NULL
      AND NEW.handed_off_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM consent_ledger l
                  WHERE l.tenant_id = NEW.tenant_id AND l.phone = r.phone
                    AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                    AND l.occurred_at >= NEW.handed_off_at AND l.occurred_at < NEW.handed_off_at + 604800000)
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
END;
