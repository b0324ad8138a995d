-- Every write that starts hand-offs gives the gate the tenant's context: its row (settings,
-- time zone), its senders and its registrations, three statements a write. A process now
-- keeps a copy and reads only this number, in the statement that reads the phones; every
-- change to any of the three raises it in its own transaction, so a copy whose number is
-- the one read is the context as it stands (README, "Dispatch").
ALTER TABLE tenants ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tenant_revision_of_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE tenants SET revision = revision + 1 WHERE id = OLD.tenant_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE tenants SET revision = revision + 1 WHERE id = NEW.tenant_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER senders_tenant_revision AFTER INSERT OR UPDATE OR DELETE ON senders
FOR EACH ROW EXECUTE FUNCTION tenant_revision_of_rows();
CREATE TRIGGER registrations_tenant_revision AFTER INSERT OR UPDATE OR DELETE ON registrations
FOR EACH ROW EXECUTE FUNCTION tenant_revision_of_rows();

-- The tenant's own row: any update raises it, whoever writes it.
CREATE FUNCTION tenant_revision_of_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_revision BEFORE UPDATE ON tenants
FOR EACH ROW EXECUTE FUNCTION tenant_revision_of_tenant();

-- A TRUNCATE fires no row trigger: it raises every tenant's.
CREATE FUNCTION tenant_revision_of_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenants SET revision = revision + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER senders_truncated_tenant_revision AFTER TRUNCATE ON senders
FOR EACH STATEMENT EXECUTE FUNCTION tenant_revision_of_all();
CREATE TRIGGER registrations_truncated_tenant_revision AFTER TRUNCATE ON registrations
FOR EACH STATEMENT EXECUTE FUNCTION tenant_revision_of_all();
