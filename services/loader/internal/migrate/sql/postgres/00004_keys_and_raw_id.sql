-- Keys compare byte by byte, and loaded punches can be found by raw id.
--
-- Ids, sites, user ids, sources and natural keys are identifiers, not
-- words: COLLATE "C" compares them as bytes (as the MySQL schema's
-- utf8mb4_bin and SQLite's BINARY do), which is what they mean and is
-- several times cheaper than a locale's collation in every index insert
-- and lookup. Changing a column's collation rebuilds its indexes, not the
-- table.
--
-- attendance_events_raw_id_idx finds every loaded version of a raw punch
-- (a replay under new rules loads a second event of the same punch): for
-- audits, and for the daily summary, which counts only a punch's latest
-- version, also when a replay moved it to another work date. It is a hash
-- index: only equality is asked of it, and it costs about half of what a
-- B-tree costs each COPY.

-- +goose Up
ALTER TABLE attendance_events
    ALTER COLUMN id TYPE varchar(64) COLLATE "C",
    ALTER COLUMN site TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C",
    ALTER COLUMN raw_id TYPE text COLLATE "C";
ALTER TABLE daily_attendance
    ALTER COLUMN site TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE business_records
    ALTER COLUMN id TYPE varchar(64) COLLATE "C",
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN natural_key TYPE text COLLATE "C";
CREATE INDEX attendance_events_raw_id_idx ON attendance_events USING hash (raw_id);

-- +goose Down
DROP INDEX attendance_events_raw_id_idx;
ALTER TABLE attendance_events
    ALTER COLUMN id TYPE varchar(64) COLLATE "default",
    ALTER COLUMN site TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default",
    ALTER COLUMN raw_id TYPE text COLLATE "default";
ALTER TABLE daily_attendance
    ALTER COLUMN site TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE business_records
    ALTER COLUMN id TYPE varchar(64) COLLATE "default",
    ALTER COLUMN source TYPE text COLLATE "default",
    ALTER COLUMN natural_key TYPE text COLLATE "default";
