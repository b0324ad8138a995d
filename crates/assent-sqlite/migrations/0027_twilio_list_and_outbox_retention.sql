-- The Twilio-compatible list (newest first by created_at, then rowid) filtered by `To` or
-- `From`, optionally with `DateSent`: each index holds its rows in the list's order (SQLite
-- ends every index with the rowid), so a page is read without sorting. Unfiltered and
-- `DateSent`-only lists use messages_tenant_newest. And the outbox's retention: the worker
-- deletes delivered and given-up deliveries by these, oldest first.
CREATE INDEX messages_to_number ON messages(tenant_id, to_number, created_at);
CREATE INDEX messages_from_number ON messages(tenant_id, from_number, created_at);
CREATE INDEX outbox_delivered ON outbox(delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_given_up ON outbox(given_up_at) WHERE given_up_at IS NOT NULL;
