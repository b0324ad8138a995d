-- The lists' keys of every message in a narrow table of its own, written once at insert
-- and never updated. A message is updated three times after its insert (claimed,
-- started, its outcome), and every update that is not HOT adds an entry to each index of
-- `messages`, though these keys never change: the tenant's newest-first list and the
-- Twilio list's `To` and `From` and a phone's thread were four of the nine. Here they are
-- written once, and the queue's updates of a message write its primary key, the phone's
-- in-flight index and the provider id's (README, "Dispatch").
CREATE TABLE message_list (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    phone TEXT NOT NULL,
    to_number TEXT NOT NULL,
    from_number TEXT NOT NULL
);
INSERT INTO message_list (tenant_id, id, seq, created_at, phone, to_number, from_number)
SELECT tenant_id, id, seq, created_at, phone, to_number, from_number FROM messages;
CREATE INDEX message_list_newest ON message_list(tenant_id, created_at, seq);
CREATE INDEX message_list_to ON message_list(tenant_id, to_number, created_at, seq);
CREATE INDEX message_list_from ON message_list(tenant_id, from_number, created_at, seq);
CREATE INDEX message_list_phone ON message_list(tenant_id, phone, created_at, seq);
DROP INDEX messages_tenant_newest;
DROP INDEX messages_to_number;
DROP INDEX messages_from_number;
DROP INDEX messages_phone;
-- The one read of `messages` by phone that `messages_phone` served and no other index
-- does: a review's decision releasing the phone's messages held for it.
CREATE INDEX messages_under_review ON messages(tenant_id, phone)
    WHERE status = 'deferred' AND reason = 'under_review';
