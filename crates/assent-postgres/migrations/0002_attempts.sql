-- Hand-offs that sent nothing (HTTP 429/503, connection refused) are retried with backoff;
-- this counts them so the retries stop at a limit.
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
