-- Numbers a tenant replaced stay on file (retired_at set): a STOP sent to one still acts
-- on the channel it served.
ALTER TABLE senders ADD COLUMN retired_at BIGINT;
-- When an open review is decided as an opt-out if nobody decides it first. Reviews opened
-- before deadlines existed get the default two days.
ALTER TABLE reviews ADD COLUMN deadline_at BIGINT;
UPDATE reviews SET deadline_at = created_at + 172800000 WHERE decision IS NULL;
CREATE INDEX reviews_open_deadline ON reviews(deadline_at) WHERE decision IS NULL;
-- The opt-in request (its provider id) a YES answers.
ALTER TABLE consent_ledger ADD COLUMN request_id TEXT;
