-- A message's status change writes its outbox rows (the Twilio-style status callback and
-- the message.status event) once per statement, not once per row. A claim changes 500
-- statuses in one UPDATE; the two row triggers ran 1,000 PL/pgSQL calls for it, nearly all
-- of them finding no callback and no endpoint (bench dispatch: 10-16% faster without
-- them). The UPDATE's transition tables are the ones the campaign counts already capture.
--
-- The queue's transactions plan by key (enable_hashjoin and friends off, see
-- plan_by_keys in the store); these joins are between two transition tables with no index,
-- so they plan with every join method again (a nested loop there is quadratic in the
-- statement's rows).
DROP TRIGGER messages_status_callback ON messages;
DROP TRIGGER messages_status_event ON messages;
DROP FUNCTION outbox_status_callback();
DROP FUNCTION outbox_message_status();

CREATE FUNCTION outbox_message_status_changes() RETURNS trigger LANGUAGE plpgsql
SET enable_hashjoin = on SET enable_mergejoin = on SET enable_sort = on
AS $$
BEGIN
    -- One event id per status change, shared by every endpoint it goes to (as the row
    -- trigger did): materialized, so a join cannot draw it twice.
    WITH changed AS MATERIALIZED (
        SELECT n.tenant_id, n.id, n.seq, n.phone, n.from_number, n.to_number, n.status,
               n.reason, n.updated_at, o.status AS previous_status,
               'evt_' || md5(random()::text || clock_timestamp()::text || n.id) AS eid
        FROM outbox_status_new n
        JOIN outbox_status_old o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE o.status IS DISTINCT FROM n.status
    ),
    callbacks AS (
        INSERT INTO outbox (event_id, tenant_id, kind, url, body, ordering_key, next_attempt_at, created_at)
        SELECT md5(random()::text || clock_timestamp()::text || x.id), c.tenant_id,
               'status_callback', c.url,
               json_build_object('message_id', x.id, 'status', x.status, 'reason', x.reason,
                                 'to', x.to_number, 'from', x.from_number)::text,
               x.phone || ' ' || c.url, x.updated_at, x.updated_at
        FROM changed x
        JOIN status_callbacks c ON c.tenant_id = x.tenant_id AND c.message_id = x.id
        ORDER BY x.seq, c.url
    )
    INSERT INTO outbox (event_id, tenant_id, kind, endpoint_id, url, body, ordering_key, next_attempt_at, created_at)
    SELECT x.eid, e.tenant_id, 'event', e.id, e.url,
           json_build_object('id', x.eid, 'type', 'message.status',
                             'created_at', outbox_iso(x.updated_at),
                             'data', json_build_object('message_id', x.id, 'phone', x.phone,
                                 'from', x.from_number, 'to', x.to_number,
                                 'status', x.status, 'previous_status', x.previous_status,
                                 'reason', x.reason))::text,
           x.phone || ' ' || e.id, x.updated_at, x.updated_at
    FROM changed x
    JOIN webhook_endpoints e
      ON e.tenant_id = x.tenant_id AND e.deleted_at IS NULL AND e.on_message_status
    ORDER BY x.seq, e.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_status_outbox AFTER UPDATE ON messages
REFERENCING OLD TABLE AS outbox_status_old NEW TABLE AS outbox_status_new
FOR EACH STATEMENT EXECUTE FUNCTION outbox_message_status_changes();

ALTER FUNCTION campaign_counts_message_update()
    SET enable_hashjoin = on SET enable_mergejoin = on SET enable_sort = on;
