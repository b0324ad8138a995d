-- The lists read a message's keys from `message_list`, which on PostgreSQL is a table of
-- its own (an update there adds an entry to every index of the row, so the list keys live
-- apart from `messages`). SQLite updates only the indexes whose columns change, so here it
-- is a view of `messages` and its indexes serve the lists as before.
CREATE VIEW message_list AS
SELECT tenant_id, id, rowid AS seq, created_at, phone, to_number, from_number FROM messages;
