-- revision is a random number the PostgreSQL sink stamps on a
-- daily_attendance row with every write of its state, a new one each time.
-- The sink keeps the state and revision of the days it wrote last, and of
-- the days a batch still in flight is writing, and extends a day from them
-- without reading its row: its update applies only while the row still
-- holds that revision (and that batch_id), that is exactly that state.
-- Chained on a batch in flight, the next batch then waits for its commit
-- instead of reading the row again (see the sink's summarize). Rows without
-- a revision (written before) are read and recomputed as before.

-- +goose Up
ALTER TABLE daily_attendance ADD COLUMN revision bigint;

-- +goose Down
ALTER TABLE daily_attendance DROP COLUMN revision;
