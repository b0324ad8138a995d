-- Keys that lead with tenant_id (issue 16, docs/SCALING.md "Keys"). On a PostgreSQL
-- distributed by tenant_id (Citus) every unique key must include it.

-- Messages are found by their primary key (tenant_id, id) everywhere now: the global
-- unique index on id goes (ids are UUIDv7, unique by construction).
DROP INDEX messages_id;
-- A provider's message id (an inbound MessageSid, an outbound SID) is recorded once per
-- tenant; the status webhook finds the tenant by the report's sender number first.
DROP INDEX messages_provider_id;
CREATE UNIQUE INDEX messages_provider_id ON messages(tenant_id, provider_id) WHERE provider_id IS NOT NULL;

-- A sender's pace belongs to the tenant whose number it is (a number is one tenant's at a
-- time: senders keeps it unique), so a claim's pace update sits beside the tenant's
-- messages. A pace kept for a number that is no sender any more is of no use and goes.
ALTER TABLE sender_pacing ADD COLUMN tenant_id TEXT;
UPDATE sender_pacing p SET tenant_id = s.tenant_id FROM senders s WHERE s.number = p.number;
DELETE FROM sender_pacing WHERE tenant_id IS NULL;
ALTER TABLE sender_pacing ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE sender_pacing DROP CONSTRAINT sender_pacing_pkey;
ALTER TABLE sender_pacing ADD PRIMARY KEY (tenant_id, number);
