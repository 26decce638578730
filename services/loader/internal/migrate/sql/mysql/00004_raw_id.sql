-- attendance_events_raw_id_idx finds every loaded version of a raw punch
-- (a replay under new rules loads a second event of the same punch): for
-- audits, and for the daily summary, which counts only a punch's latest
-- version, also when a replay moved it to another work date.

-- +goose Up
ALTER TABLE attendance_events ADD INDEX attendance_events_raw_id_idx (raw_id);

-- +goose Down
ALTER TABLE attendance_events DROP INDEX attendance_events_raw_id_idx;
