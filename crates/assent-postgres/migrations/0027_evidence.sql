-- Evidence for the proof of consent (docs/PROOF.md).
--
-- Reassigned-number lookups (Twilio Lookup v2 `reassigned_number`): every query made, with
-- its answer (`yes`, `no`, `no_data_available`) or, when it failed, the error. The FCC's
-- safe harbour needs the query on file; the send path reads the newest answered one to
-- ask at most monthly per phone.
-- Keys lead with tenant_id, as every distributed table's (docs/SCALING.md, "Keys").
CREATE TABLE reassigned_checks (
    id BIGSERIAL,
    tenant_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    asked_at BIGINT NOT NULL,
    provider TEXT NOT NULL,
    last_verified_date TEXT NOT NULL,
    answer TEXT,
    error TEXT,
    message_id TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX reassigned_checks_phone ON reassigned_checks (tenant_id, phone, asked_at);

-- Every status callback the provider sent for a message, as received (the message keeps
-- only its furthest status).
CREATE TABLE message_status_events (
    id BIGSERIAL,
    tenant_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code BIGINT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX message_status_events_message ON message_status_events (tenant_id, message_id, id);
