-- The SQL read model: the log folded into one table per kind of object, kept current by
-- projections.sql_projector.SqlProjector. Nothing here is a source of truth: rebuild()
-- truncates these tables and replays the log from 0. To drop it instead:
--   DROP SCHEMA read_model CASCADE; DELETE FROM projection_positions WHERE name =
--   'sql_read_model'; DELETE FROM schema_migrations WHERE component = 'projections';
-- and the next migrate() (at the service's start) creates it again, empty, at 0.
--
-- Every row holds the object's Flynn JSON (`doc`) exactly as the API returns it, beside
-- the key columns that audit queries filter and sort on (derived from the doc when the
-- row is written), and `event_id`, the id of the last event that changed the row. `doc` is json, not jsonb: json keeps the bytes (and
-- so Flynn's key order) as written; `doc->>'key'` still works in ad-hoc queries.
-- A soft-deleted row (deleted_at set) is kept for audit; the API no longer shows it.
-- Ids are COLLATE "C" so that "ORDER BY created_at DESC, id DESC" breaks ties the way
-- the in-memory model does (by code point).

-- Where each projection is in the log. Updated in the same transaction as the rows of
-- the batch it covers, so rows and position never disagree, even after a crash.
CREATE TABLE IF NOT EXISTS projection_positions (
    name          text   PRIMARY KEY,
    last_event_id bigint NOT NULL
);
INSERT INTO projection_positions (name, last_event_id) VALUES ('sql_read_model', 0)
    ON CONFLICT (name) DO NOTHING;

CREATE SCHEMA IF NOT EXISTS read_model;

CREATE TABLE read_model.apps (
    id         text COLLATE "C" PRIMARY KEY,
    name       text        NOT NULL,
    release_id text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    event_id   bigint      NOT NULL,
    doc        json        NOT NULL
);
CREATE INDEX apps_live_name ON read_model.apps (name) WHERE deleted_at IS NULL;

CREATE TABLE read_model.releases (
    id          text COLLATE "C" PRIMARY KEY,
    app_id      text,
    artifact_id text,
    created_at  timestamptz NOT NULL,
    event_id    bigint      NOT NULL,
    doc         json        NOT NULL
);

-- Which releases an app has used: its own, the ones set as current, the ones scaled.
CREATE TABLE read_model.app_releases (
    app_id     text   NOT NULL,
    release_id text   NOT NULL,
    event_id   bigint NOT NULL,  -- the event that first linked them
    PRIMARY KEY (app_id, release_id)
);

CREATE TABLE read_model.artifacts (
    id         text COLLATE "C" PRIMARY KEY,
    type       text        NOT NULL,
    uri        text        NOT NULL,
    created_at timestamptz NOT NULL,
    event_id   bigint      NOT NULL,
    doc        json        NOT NULL
);

-- Flynn soft-deletes a formation (processes NULL); deleted_at is when it first happened.
CREATE TABLE read_model.formations (
    app_id     text             NOT NULL,
    release_id text COLLATE "C" NOT NULL,
    created_at timestamptz      NOT NULL,
    updated_at timestamptz      NOT NULL,
    deleted_at timestamptz,
    event_id   bigint           NOT NULL,
    doc        json             NOT NULL,
    PRIMARY KEY (app_id, release_id)
);

CREATE TABLE read_model.jobs (
    id         text COLLATE "C" PRIMARY KEY,
    app_id     text        NOT NULL,
    release_id text        NOT NULL,
    type       text        NOT NULL,
    state      text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    event_id   bigint      NOT NULL,
    doc        json        NOT NULL
);
CREATE INDEX jobs_app ON read_model.jobs (app_id);

CREATE TABLE read_model.deployments (
    id             text COLLATE "C" PRIMARY KEY,
    app_id         text        NOT NULL,
    old_release_id text,
    new_release_id text        NOT NULL,
    status         text        NOT NULL,
    error          text        NOT NULL,  -- not in Flynn's JSON: the last failure reported
    created_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    event_id       bigint      NOT NULL,
    doc            json        NOT NULL
);
CREATE INDEX deployments_app ON read_model.deployments (app_id);

CREATE TABLE read_model.providers (
    id         text COLLATE "C" PRIMARY KEY,
    name       text        NOT NULL,
    url        text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    event_id   bigint      NOT NULL,
    doc        json        NOT NULL
);

CREATE TABLE read_model.resources (
    id          text COLLATE "C" PRIMARY KEY,
    provider_id text        NOT NULL,
    app_ids     text[]      NOT NULL,  -- linked apps, most recently linked first
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    event_id    bigint      NOT NULL,
    doc         json        NOT NULL
);
CREATE INDEX resources_provider ON read_model.resources (provider_id);
CREATE INDEX resources_app_ids ON read_model.resources USING gin (app_ids);

CREATE TABLE read_model.routes (
    id         text COLLATE "C" PRIMARY KEY,
    type       text        NOT NULL,
    app_id     text,  -- from parent_ref "controller/apps/<id>"
    parent_ref text        NOT NULL,
    service    text        NOT NULL,
    domain     text        NOT NULL,
    path       text        NOT NULL,
    port       integer     NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    event_id   bigint      NOT NULL,
    doc        json        NOT NULL
);
CREATE INDEX routes_app ON read_model.routes (app_id);

CREATE TABLE read_model.domain_migrations (
    id          text COLLATE "C" PRIMARY KEY,
    old_domain  text        NOT NULL,
    domain      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    finished_at timestamptz,
    event_id    bigint      NOT NULL,
    doc         json        NOT NULL
);
