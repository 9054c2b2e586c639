-- What a write carried besides its events: a JSON object, NULL for most events. A command
-- sent with an Idempotency-Key holds {"idempotency_key", "request"} on its first event and
-- {"idempotency_key"} on the others (see projections/idempotency.py).
ALTER TABLE events ADD COLUMN IF NOT EXISTS meta json;

-- A key is recorded once, ever: the dispatcher checks keys against its fold, exactly, under
-- the expected-head append; this index is the backstop, and it refuses a key used longer
-- ago than the fold remembers answers. Partial: events without a key cost no entry.
CREATE UNIQUE INDEX IF NOT EXISTS events_idempotency_key ON events ((meta->>'idempotency_key'))
    WHERE json_typeof(meta->'request') = 'object';

-- evenflow_append (0001) with the events' meta. The old signature stays for processes
-- of the previous version still running against this database; their events get no meta.
CREATE OR REPLACE FUNCTION evenflow_append(
    p_head bigint, p_unique_ids text[],
    p_ids bigint[], p_types text[], p_object_types text[], p_object_ids text[],
    p_app_ids uuid[], p_ops text[], p_row_unique_ids text[], p_data json[], p_metas json[])
RETURNS TABLE (head bigint, written_at timestamptz, taken text[], written boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_head bigint;
    v_now timestamptz;
    v_taken text[];
BEGIN
    SELECT l.head, l.locked_at, l.taken INTO v_head, v_now, v_taken
      FROM evenflow_lock_head(p_unique_ids) l;
    IF v_head <> p_head OR cardinality(v_taken) > 0 THEN
        RETURN QUERY SELECT v_head, v_now, v_taken, false;
        RETURN;
    END IF;
    IF cardinality(p_ids) > 0 THEN
        INSERT INTO events
            (event_id, type, object_type, object_id, app_id, op, unique_id, data, meta,
             created_at)
        SELECT r.*, v_now
          FROM unnest(p_ids, p_types, p_object_types, p_object_ids, p_app_ids, p_ops,
                      p_row_unique_ids, p_data, p_metas) AS r;
        -- Delivered at commit, and only if the transaction commits.
        PERFORM pg_notify('evenflow_events', p_ids[cardinality(p_ids)]::text);
    END IF;
    RETURN QUERY SELECT v_head, v_now, v_taken, true;
END
$$;
