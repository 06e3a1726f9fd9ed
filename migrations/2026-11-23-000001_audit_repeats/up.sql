-- Repeated events (a throttled client retrying) are recorded once per lock
-- window: `repeats` counts them and `last_at` is the latest one, so a flood
-- adds no rows. The index serves retention pruning.
ALTER TABLE audit_log ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at BIGINT;
