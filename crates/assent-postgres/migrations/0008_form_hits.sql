-- The opt-in form's rate limits, shared by every process: a hit is a row, a sliding window
-- a count over a key's recent rows (taken under the key's advisory lock).
CREATE TABLE form_hits (
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX form_hits_key ON form_hits(key, at);
CREATE INDEX form_hits_at ON form_hits(at);
