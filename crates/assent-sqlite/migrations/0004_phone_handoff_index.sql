-- The frequency cap reads one phone's recent hand-offs; without this index SQLite picked
-- the tenant-wide one and scanned a whole day of the tenant's traffic for every message.
CREATE INDEX messages_phone_handoff ON messages(tenant_id, phone, handed_off_at) WHERE handed_off_at IS NOT NULL;
