-- The lists' keys of every message in a narrow table of its own, written once at insert
-- and never updated. A message is updated three times after its insert (claimed,
-- started, its outcome), and every update that is not HOT adds an entry to each index of
-- `messages` whose predicate the new version meets, though these keys never change: the
-- tenant's newest-first list, a phone's thread and the Twilio list's `To` and `From` were
-- four of the nine. Here they are written once; the queue's updates write the primary key
-- and the partial indexes that hold the message (README, "Dispatch").
CREATE TABLE message_list (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    phone TEXT NOT NULL,
    to_number TEXT NOT NULL,
    from_number TEXT NOT NULL
);
-- Kept by the database, whoever inserts: a process of the previous version still running
-- during a rolling restart writes its messages here too. Creating the trigger locks out
-- writers of `messages` until this migration commits, so the copy below misses none.
CREATE FUNCTION message_list_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_list (tenant_id, id, seq, created_at, phone, to_number, from_number)
    SELECT tenant_id, id, seq, created_at, phone, to_number, from_number FROM message_list_new;
    RETURN NULL;
END $$;
CREATE TRIGGER message_list_insert AFTER INSERT ON messages
REFERENCING NEW TABLE AS message_list_new
FOR EACH STATEMENT EXECUTE FUNCTION message_list_insert();
INSERT INTO message_list (tenant_id, id, seq, created_at, phone, to_number, from_number)
SELECT tenant_id, id, seq, created_at, phone, to_number, from_number FROM messages;
CREATE INDEX message_list_newest ON message_list(tenant_id, created_at, seq);
CREATE INDEX message_list_phone ON message_list(tenant_id, phone, created_at, seq);
CREATE INDEX message_list_to ON message_list(tenant_id, to_number, created_at, seq);
CREATE INDEX message_list_from ON message_list(tenant_id, from_number, created_at, seq);
-- The one read of `messages` by phone that `messages_phone` served and no other index
-- does: a review's decision releasing the phone's messages held for it.
CREATE INDEX messages_under_review ON messages(tenant_id, phone)
    WHERE status = 'deferred' AND reason = 'under_review';
-- Last: dropping an index locks `messages` against readers too, until the commit.
DROP INDEX messages_tenant_newest;
DROP INDEX messages_to_number;
DROP INDEX messages_from_number;
DROP INDEX messages_phone;

-- A phone's opt-out finds the campaign messages handed off to it in the 7 days before
-- through the phone's list (it read `messages_phone`): as in 0028, otherwise.
CREATE OR REPLACE FUNCTION campaign_counts_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n)
    SELECT pg_current_xact_id()::text::bigint, r.tenant_id, r.campaign_id, 'opted_out_after', '', COUNT(*)
    FROM message_list ml
    JOIN messages m ON m.tenant_id = ml.tenant_id AND m.id = ml.id
    JOIN campaign_recipients r ON r.message_id = m.id AND r.tenant_id = m.tenant_id
    WHERE ml.tenant_id = NEW.tenant_id AND ml.phone = NEW.phone AND m.kind = 'campaign'
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
