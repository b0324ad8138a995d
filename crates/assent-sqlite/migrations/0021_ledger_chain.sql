-- The ledger's hash chain (docs/PROOF.md): each tenant's entries are numbered 1, 2, 3, …
-- (chain_seq) and carry hash = SHA-256(previous hash ‖ canonical encoding). Entries written
-- before this migration are chained once, in their seq order, by Rust code that runs right
-- after the migrations (assent_sqlite's chain_backfill), because SQLite has no SHA-256.
ALTER TABLE consent_ledger ADD COLUMN chain_seq INTEGER;
ALTER TABLE consent_ledger ADD COLUMN hash TEXT;
-- One entry per position: a chain cannot fork.
CREATE UNIQUE INDEX consent_ledger_chain ON consent_ledger(tenant_id, chain_seq);
-- Each tenant's last entry: its chain seq and hash (the head a new entry follows).
CREATE TABLE ledger_heads (
    tenant_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
