-- The opt-in form's rate limits (per IP, per number, per tenant and day) were counted in
-- each process's memory, which also grew with every address an attacker used. Each hit is
-- now a row: a sliding window is a count over a key's recent rows.
CREATE TABLE form_hits (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX form_hits_key ON form_hits(key, at);
CREATE INDEX form_hits_at ON form_hits(at);
