-- The frequency cap reads one phone's recent hand-offs: an index for exactly that.
CREATE INDEX messages_phone_handoff ON messages(tenant_id, phone, handed_off_at) WHERE handed_off_at IS NOT NULL;
