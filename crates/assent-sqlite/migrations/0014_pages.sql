-- Keyset pages (issue 15): each list is read from the key of the row before it, so each
-- needs an index in its order. (SQLite appends the rowid to every index: the messages'
-- insertion order and the ledger's seq come with them.)
CREATE INDEX customers_page ON customers(tenant_id, created_at, id);
CREATE INDEX consent_ledger_tenant ON consent_ledger(tenant_id);
CREATE INDEX messages_tenant_newest ON messages(tenant_id, created_at);
CREATE INDEX campaigns_page ON campaigns(tenant_id, created_at, id);
CREATE INDEX reviews_page ON reviews(tenant_id, created_at, id);
DROP INDEX customers_newest;
