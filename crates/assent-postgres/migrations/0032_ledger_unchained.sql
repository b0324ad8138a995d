-- The entries outside the hash chain (none, normally): a proof asks for the first on every
-- call, and without this index that walked the tenant's whole ledger.
CREATE INDEX consent_ledger_unchained ON consent_ledger(tenant_id, seq)
    WHERE chain_seq IS NULL OR hash IS NULL;
