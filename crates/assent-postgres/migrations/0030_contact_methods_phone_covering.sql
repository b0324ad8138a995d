-- A phone's contact methods with their customer ids, from the index alone (the SQLite
-- migration of the same number says why; the shared SQL reads them the same way here).
DROP INDEX contact_methods_phone;
CREATE INDEX contact_methods_phone ON contact_methods(tenant_id, phone, customer_id);
