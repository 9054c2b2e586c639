-- The log. One row per event; event_id order is commit order (see evenflow_append).
CREATE TABLE IF NOT EXISTS events (
    -- Assigned by the appender under the table lock, not by a sequence: a sequence hands
    -- out values at INSERT time, so concurrent transactions could commit out of id order.
    event_id    bigint      PRIMARY KEY,
    type        text        NOT NULL,   -- past-tense event class name; the decode key
    object_type text        NOT NULL,   -- Flynn's object_type
    object_id   text        NOT NULL,
    app_id      uuid,
    op          text,                   -- 'op_create' | 'op_update' | NULL
    unique_id   text,                   -- idempotency key; NULL for most events
    -- json, not jsonb: the payload is stored and returned byte for byte, never queried
    -- inside, and jsonb would be re-serialized on every read.
    data        json        NOT NULL,
    created_at  timestamptz NOT NULL
);

-- Partial: most events have no unique_id, and they then cost no index entry.
CREATE UNIQUE INDEX IF NOT EXISTS events_unique_id ON events (unique_id)
    WHERE unique_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_app_id_event_id ON events (app_id, event_id);
CREATE INDEX IF NOT EXISTS events_object_type_event_id ON events (object_type, event_id);

-- Takes the append lock and tells what the log holds: its head, the time, and which of
-- the given unique ids are already used.
--
-- Why the lock: readers tail the log with "event_id > cursor". That is only safe if no
-- transaction can commit an id below one that is already visible. An EXCLUSIVE table
-- lock held from before the head is read until commit makes appends one at a time, so
-- id order equals commit order. EXCLUSIVE blocks other writers (ours, and any that
-- bypass us) but not readers. Appends are group-committed, so the lock is taken once
-- per batch, not once per event.
CREATE OR REPLACE FUNCTION evenflow_lock_head(p_unique_ids text[])
RETURNS TABLE (head bigint, locked_at timestamptz, taken text[])
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    -- Each statement below takes a fresh snapshot, so it sees every commit before the lock.
    RETURN QUERY SELECT
        (SELECT coalesce(max(e.event_id), 0) FROM events e),
        clock_timestamp(),
        (SELECT coalesce(array_agg(e.unique_id), '{}') FROM events e
          WHERE e.unique_id = ANY (p_unique_ids));
END
$$;

-- Writes a batch whose ids were planned against p_head, if the log still ends there and
-- none of p_unique_ids is used; otherwise writes nothing and returns what it found, so
-- the caller can plan again. Called on its own (autocommit) it is a whole append in one
-- round trip; the lock is held until the statement's implicit commit.
CREATE OR REPLACE FUNCTION evenflow_append(
    p_head bigint, p_unique_ids text[],
    p_ids bigint[], p_types text[], p_object_types text[], p_object_ids text[],
    p_app_ids uuid[], p_ops text[], p_row_unique_ids text[], p_data json[])
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
            (event_id, type, object_type, object_id, app_id, op, unique_id, data, created_at)
        SELECT r.*, v_now
          FROM unnest(p_ids, p_types, p_object_types, p_object_ids, p_app_ids, p_ops,
                      p_row_unique_ids, p_data) AS r;
        -- Delivered at commit, and only if the transaction commits.
        PERFORM pg_notify('evenflow_events', p_ids[cardinality(p_ids)]::text);
    END IF;
    RETURN QUERY SELECT v_head, v_now, v_taken, true;
END
$$;
