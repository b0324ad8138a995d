-- A campaign's counts kept by the database (docs/SCALING.md, "Campaign counters"): the
-- report and the campaigns list read these rows instead of aggregating the send log.
--
-- One row per (campaign, status, skip reason): `status` is the recipient's status as the
-- send log shows it ('skipped' when it was, else its message's, 'queued' while the
-- message is not written yet), `reason` the skip reason or ''. The pseudo-status
-- 'opted_out_after' counts the recipients whose phone opted out within 7 days (604800000
-- ms) after their message was handed off. Triggers keep them in the transaction of every
-- change, whichever write path makes it; nothing else writes this table.
CREATE TABLE campaign_counts (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, status, reason)
) WITHOUT ROWID;

-- A message's recipient, for the triggers on messages.
CREATE INDEX campaign_recipients_message ON campaign_recipients(message_id) WHERE message_id IS NOT NULL;

-- Existing campaigns, counted once from their send logs.
INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
SELECT r.tenant_id, r.campaign_id,
       CASE WHEN r.skip_reason IS NOT NULL THEN 'skipped' ELSE COALESCE(m.status, 'queued') END,
       COALESCE(r.skip_reason, ''), COUNT(*)
FROM campaign_recipients r LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
WHERE true
GROUP BY 1, 2, 3, 4;

INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
SELECT r.tenant_id, r.campaign_id, 'opted_out_after', '', COUNT(*)
FROM campaign_recipients r JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
WHERE r.skip_reason IS NULL AND m.handed_off_at IS NOT NULL AND EXISTS (
    SELECT 1 FROM consent_ledger l
    WHERE l.tenant_id = r.tenant_id AND l.phone = r.phone
      AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
      AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000)
GROUP BY 1, 2;

-- A recipient recorded: counted under its status (its message's, if already written).
CREATE TRIGGER campaign_counts_recipient AFTER INSERT ON campaign_recipients
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

-- A recipient's message written after the recipient (the fan-out's order): the recipient
-- was counted 'queued'; a message written with another status (held for a pause) or
-- already handed off moves it. The usual queued message changes nothing.
CREATE TRIGGER campaign_counts_message_insert AFTER INSERT ON messages
WHEN NEW.kind = 'campaign' AND (NEW.status <> 'queued' OR NEW.handed_off_at IS NOT NULL)
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

-- A campaign message's status changed: its recipient moves from the old to the new.
CREATE TRIGGER campaign_counts_message_status AFTER UPDATE OF status ON messages
WHEN NEW.kind = 'campaign' AND OLD.status <> NEW.status
BEGIN
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT r.tenant_id, r.campaign_id, s.status, '', s.d
    FROM campaign_recipients r,
         (SELECT OLD.status AS status, -1 AS d UNION ALL SELECT NEW.status, 1) s
    WHERE r.message_id = NEW.id AND r.tenant_id = NEW.tenant_id AND r.skip_reason IS NULL
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
END;

-- A campaign message handed off (or its hand-off undone): whether an opt-out falls in the
-- 7 days after it may change.
CREATE TRIGGER campaign_counts_message_handoff AFTER UPDATE OF handed_off_at ON messages
WHEN NEW.kind = 'campaign' AND OLD.handed_off_at IS NOT NEW.handed_off_at
BEGIN
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT x.tenant_id, x.campaign_id, 'opted_out_after', '', x.d
    FROM (
        SELECT r.tenant_id, r.campaign_id,
               EXISTS (SELECT 1 FROM consent_ledger l
                       WHERE l.tenant_id = NEW.tenant_id AND l.phone = r.phone
                         AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                         AND l.occurred_at >= NEW.handed_off_at AND l.occurred_at < NEW.handed_off_at + 604800000)
             - EXISTS (SELECT 1 FROM consent_ledger l
                       WHERE l.tenant_id = NEW.tenant_id AND l.phone = r.phone
                         AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                         AND l.occurred_at >= OLD.handed_off_at AND l.occurred_at < OLD.handed_off_at + 604800000) AS d
        FROM campaign_recipients r
        WHERE r.message_id = NEW.id AND r.tenant_id = NEW.tenant_id AND r.skip_reason IS NULL
    ) x
    WHERE x.d <> 0
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
END;

-- A phone opted out: each campaign message handed off to it in the 7 days before, with no
-- earlier opt-out in its 7 days, adds one to its campaign's "opted out afterwards".
CREATE TRIGGER campaign_counts_opt_out AFTER INSERT ON consent_ledger
WHEN NEW.new_state = 'opted_out' AND NEW.old_state <> 'opted_out'
BEGIN
    INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
    SELECT r.tenant_id, r.campaign_id, 'opted_out_after', '', COUNT(*)
    FROM messages m JOIN campaign_recipients r ON r.message_id = m.id AND r.tenant_id = m.tenant_id
    WHERE m.tenant_id = NEW.tenant_id AND m.phone = NEW.phone AND m.kind = 'campaign'
      AND m.handed_off_at IS NOT NULL
      AND m.handed_off_at <= NEW.occurred_at AND NEW.occurred_at < m.handed_off_at + 604800000
      AND r.skip_reason IS NULL AND r.phone = NEW.phone
      AND NOT EXISTS (SELECT 1 FROM consent_ledger l
                      WHERE l.tenant_id = NEW.tenant_id AND l.phone = NEW.phone AND l.seq <> NEW.seq
                        AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                        AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000)
    GROUP BY r.tenant_id, r.campaign_id
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n;
END;
