-- The ledger's hash chain (docs/PROOF.md): each tenant's entries are numbered 1, 2, 3, …
-- (chain_seq) and carry hash = SHA-256(previous hash ‖ canonical encoding). Entries written
-- before this migration are chained once, in their seq order, by Rust code that runs right
-- after the migrations under the migration lock (assent_postgres's chain_backfill), so the
-- encoding is written in one place only.
ALTER TABLE consent_ledger ADD COLUMN chain_seq BIGINT;
ALTER TABLE consent_ledger ADD COLUMN hash TEXT;
-- One entry per position: a chain cannot fork, whatever the writers do.
CREATE UNIQUE INDEX consent_ledger_chain ON consent_ledger(tenant_id, chain_seq);
-- Each tenant's last entry: its chain seq and hash. A writer locks this row
-- (SELECT … FOR UPDATE) in the transaction that appends, so a tenant's entries are chained
-- in commit order.
CREATE TABLE ledger_heads (
    tenant_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
