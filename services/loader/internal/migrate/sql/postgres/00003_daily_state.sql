-- The state a daily_attendance row needs to be extended with later punches
-- without reading the day's earlier punches again (see the loader's
-- internal/daily, State and Extend): the exact worked time, the last kept
-- punch, the latest punch, the start of an open work interval, and the
-- rules version every punch of the day shares ('' when they differ). The
-- PostgreSQL sink fills them; the MySQL and SQLite sinks recompute each day
-- from its punches and leave them NULL. A row whose state is NULL is
-- recomputed.
--
-- fillfactor 40: a batch usually updates most rows of a page once (one
-- punch per person in a batch); the free space keeps each new version on
-- its page, so every update is HOT and touches no index.

-- +goose Up
ALTER TABLE daily_attendance
    ADD COLUMN worked_us     bigint,
    ADD COLUMN last_kept_at  timestamptz,
    ADD COLUMN last_at       timestamptz,
    ADD COLUMN open_since    timestamptz,
    ADD COLUMN rules_version text,
    SET (fillfactor = 40);

-- +goose Down
ALTER TABLE daily_attendance
    DROP COLUMN rules_version,
    DROP COLUMN open_since,
    DROP COLUMN last_at,
    DROP COLUMN last_kept_at,
    DROP COLUMN worked_us,
    SET (fillfactor = 70);
