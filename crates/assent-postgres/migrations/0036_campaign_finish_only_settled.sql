-- A marketing campaign moves from sending to finished only while its counters show nobody
-- queued, deferred or sending. The fan-out now records queued recipients before their
-- messages exist (they are composed a page at a time); a process of the previous version,
-- during a rolling restart, decided "settled" from the send log joined to its messages and
-- would see those recipients as settled, finishing the campaign with them never sent.
-- Returning NULL leaves the row as it is, so the runner's compare-and-set reports no move.
CREATE FUNCTION campaigns_finish_only_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM campaign_counts WHERE tenant_id = NEW.tenant_id AND campaign_id = NEW.id
               AND status IN ('queued', 'deferred', 'sending') AND n > 0) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER campaigns_finish_only_settled BEFORE UPDATE OF status ON campaigns
FOR EACH ROW WHEN (OLD.status = 'sending' AND NEW.status = 'finished')
EXECUTE FUNCTION campaigns_finish_only_settled();
