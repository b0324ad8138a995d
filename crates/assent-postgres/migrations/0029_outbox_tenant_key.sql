-- The outbox's primary key leads with tenant_id, as every distributed table's key does
-- (docs/SCALING.md, "Keys"): the relay's writes name the delivery by (tenant_id, id). The
-- sequence stays one per install, so ids stay increasing in commit order per ordering key.
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey;
ALTER TABLE outbox ADD PRIMARY KEY (tenant_id, id);
-- The relay's claim and the retention's delete pick rows by id across tenants (a non-unique
-- index is allowed on a distributed table; only unique keys must include tenant_id).
CREATE INDEX outbox_id ON outbox(id);
