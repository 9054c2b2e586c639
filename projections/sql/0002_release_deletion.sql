-- A release deleted for good (no app uses it any more) keeps its row, as Flynn
-- soft-deletes releases: deleted_at is when it went. Its links in app_releases are gone.
ALTER TABLE read_model.releases ADD COLUMN deleted_at timestamptz;
