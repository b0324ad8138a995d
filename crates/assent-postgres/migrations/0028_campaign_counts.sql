-- A campaign's counts kept by the database (docs/SCALING.md, "Campaign counters"): the
-- report and the campaigns list read these rows instead of aggregating the send log.
--
-- One row per (campaign, status, skip reason): `status` is the recipient's status as the
-- send log shows it ('skipped' when it was, else its message's, 'queued' while the
-- message is not written yet), `reason` the skip reason or ''. The pseudo-status
-- 'opted_out_after' counts the recipients whose phone opted out within 7 days (604800000
-- ms) after their message was handed off. Triggers keep them in the transaction of every
-- change, whichever write path makes it; nothing else writes this table.
--
-- The triggers on the send log, messages and the ledger only note each statement's changes
-- in `campaign_count_changes`, which takes no lock another writer waits for; one deferred
-- trigger adds a transaction's changes to the counters at its commit, in one statement in
-- key order. A transaction therefore holds counter rows only while it commits, takes them
-- all at once in the same order as every other, and cannot deadlock on them whatever order
-- its statements touched the campaigns and statuses in.
CREATE TABLE campaign_counts (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, status, reason)
);

-- A message's recipient, for the triggers on messages.
CREATE INDEX campaign_recipients_message ON campaign_recipients(message_id) WHERE message_id IS NOT NULL;

-- Existing campaigns, counted once from their send logs.
INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n)
SELECT r.tenant_id, r.campaign_id,
       CASE WHEN r.skip_reason IS NOT NULL THEN 'skipped' ELSE COALESCE(m.status, 'queued') END,
       COALESCE(r.skip_reason, ''), COUNT(*)
FROM campaign_recipients r LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
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

-- 1 when the phone opted out within 7 days after `handed_off_at`, else 0 (0 when NULL).
CREATE FUNCTION campaign_opted_out_after(t TEXT, p TEXT, handed_off_at BIGINT) RETURNS INTEGER
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (
        SELECT 1 FROM consent_ledger l
        WHERE l.tenant_id = t AND l.phone = p
          AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
          AND l.occurred_at >= handed_off_at AND l.occurred_at < handed_off_at + 604800000)
    THEN 1 ELSE 0 END
$$;

CREATE UNLOGGED TABLE campaign_count_changes (
    xact BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX campaign_count_changes_xact ON campaign_count_changes(xact);

-- At commit (the first of a transaction's deferred events does it all; the rest find
-- nothing): its changes summed, removed, and added to the counters in key order.
CREATE FUNCTION campaign_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH done AS (
        DELETE FROM campaign_count_changes
        WHERE xact = pg_current_xact_id()::text::bigint
        RETURNING tenant_id, campaign_id, status, reason, n
    )
    INSERT INTO campaign_counts AS c (tenant_id, campaign_id, status, reason, n)
    SELECT tenant_id, campaign_id, status, reason, SUM(n) FROM done
    GROUP BY 1, 2, 3, 4
    HAVING SUM(n) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER campaign_counts_apply AFTER INSERT ON campaign_count_changes
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION campaign_counts_apply();

-- Recipients recorded: each counted under its status (its message's, if already written;
-- `queued` while it is not, which is the fan-out's order).
CREATE FUNCTION campaign_counts_recipients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n)
    SELECT pg_current_xact_id()::text::bigint, x.tenant_id, x.campaign_id, x.status, x.reason, SUM(x.d)
    FROM (
        SELECT r.tenant_id, r.campaign_id,
               CASE WHEN r.skip_reason IS NOT NULL THEN 'skipped' ELSE COALESCE(m.status, 'queued') END AS status,
               COALESCE(r.skip_reason, '') AS reason, 1::BIGINT AS d
        FROM campaign_counts_new r
        LEFT JOIN messages m ON r.skip_reason IS NULL AND m.tenant_id = r.tenant_id AND m.id = r.message_id
        UNION ALL
        SELECT r.tenant_id, r.campaign_id, 'opted_out_after', '',
               campaign_opted_out_after(r.tenant_id, r.phone, m.handed_off_at)
        FROM campaign_counts_new r
        JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
        WHERE r.skip_reason IS NULL AND m.handed_off_at IS NOT NULL
    ) x
    GROUP BY 2, 3, 4, 5
    HAVING SUM(x.d) <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_counts_recipients AFTER INSERT ON campaign_recipients
REFERENCING NEW TABLE AS campaign_counts_new
FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_recipients();

-- A campaign message written not `queued` (held for a pause) or already handed off: its
-- recipient, counted `queued`, moves. Only such rows reach the function (the `WHEN` is
-- evaluated without a call), so a fan-out's queued messages cost nothing here.
CREATE FUNCTION campaign_counts_message_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n)
    SELECT pg_current_xact_id()::text::bigint, x.tenant_id, x.campaign_id, x.status, '', SUM(x.d)
    FROM (
        SELECT r.tenant_id, r.campaign_id, r.phone FROM campaign_recipients r
        WHERE r.message_id = NEW.id AND r.tenant_id = NEW.tenant_id AND r.skip_reason IS NULL
    ) r
    CROSS JOIN LATERAL (
        SELECT r.tenant_id, r.campaign_id, 'queued' AS status, -1::BIGINT AS d
        WHERE NEW.status <> 'queued'
        UNION ALL
        SELECT r.tenant_id, r.campaign_id, NEW.status, 1
        WHERE NEW.status <> 'queued'
        UNION ALL
        SELECT r.tenant_id, r.campaign_id, 'opted_out_after',
               campaign_opted_out_after(r.tenant_id, r.phone, NEW.handed_off_at)
    ) x
    GROUP BY 2, 3, 4
    HAVING SUM(x.d) <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_counts_message_insert AFTER INSERT ON messages
FOR EACH ROW
WHEN (NEW.kind = 'campaign' AND (NEW.status <> 'queued' OR NEW.handed_off_at IS NOT NULL))
EXECUTE FUNCTION campaign_counts_message_insert();

-- An UPDATE of messages: each campaign message whose status changed moves its recipient
-- from the old status to the new; each whose hand-off time changed may gain or lose its
-- "opted out afterwards". Statement-level: a claim or a batch of delivery reports notes
-- one change per counter.
CREATE FUNCTION campaign_counts_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n)
    SELECT pg_current_xact_id()::text::bigint, x.tenant_id, x.campaign_id, x.status, '', SUM(x.d)
    FROM (
        SELECT r.tenant_id, r.campaign_id, r.phone,
               o.status AS old_status, n.status AS new_status,
               o.handed_off_at AS old_at, n.handed_off_at AS new_at
        FROM campaign_counts_new n
        JOIN campaign_counts_old o ON o.id = n.id AND o.tenant_id = n.tenant_id
        JOIN campaign_recipients r
          ON r.message_id = n.id AND r.tenant_id = n.tenant_id AND r.skip_reason IS NULL
        WHERE n.kind = 'campaign'
          AND (o.status <> n.status OR o.handed_off_at IS DISTINCT FROM n.handed_off_at)
    ) ch
    CROSS JOIN LATERAL (
        SELECT ch.tenant_id, ch.campaign_id, ch.old_status AS status, -1::BIGINT AS d
        WHERE ch.old_status <> ch.new_status
        UNION ALL
        SELECT ch.tenant_id, ch.campaign_id, ch.new_status, 1
        WHERE ch.old_status <> ch.new_status
        UNION ALL
        SELECT ch.tenant_id, ch.campaign_id, 'opted_out_after',
               campaign_opted_out_after(ch.tenant_id, ch.phone, ch.new_at)
             - campaign_opted_out_after(ch.tenant_id, ch.phone, ch.old_at)
        WHERE ch.old_at IS DISTINCT FROM ch.new_at
    ) x
    GROUP BY 2, 3, 4
    HAVING SUM(x.d) <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_counts_message_update AFTER UPDATE ON messages
REFERENCING OLD TABLE AS campaign_counts_old NEW TABLE AS campaign_counts_new
FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_message_update();

-- A phone opted out: each campaign message handed off to it in the 7 days before, with no
-- earlier opt-out in its 7 days, adds one to its campaign's "opted out afterwards".
CREATE FUNCTION campaign_counts_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n)
    SELECT pg_current_xact_id()::text::bigint, r.tenant_id, r.campaign_id, 'opted_out_after', '', COUNT(*)
    FROM messages m
    JOIN campaign_recipients r ON r.message_id = m.id AND r.tenant_id = m.tenant_id
    WHERE m.tenant_id = NEW.tenant_id AND m.phone = NEW.phone AND m.kind = 'campaign'
      AND m.handed_off_at IS NOT NULL
      AND m.handed_off_at <= NEW.occurred_at AND NEW.occurred_at < m.handed_off_at + 604800000
      AND r.skip_reason IS NULL AND r.phone = NEW.phone
      AND NOT EXISTS (SELECT 1 FROM consent_ledger l
                      WHERE l.tenant_id = NEW.tenant_id AND l.phone = NEW.phone AND l.seq <> NEW.seq
                        AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out'
                        AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000)
    GROUP BY r.tenant_id, r.campaign_id;
    RETURN NULL;
END $$;
CREATE TRIGGER campaign_counts_opt_out AFTER INSERT ON consent_ledger
FOR EACH ROW WHEN (NEW.new_state = 'opted_out' AND NEW.old_state <> 'opted_out')
EXECUTE FUNCTION campaign_counts_opt_out();
