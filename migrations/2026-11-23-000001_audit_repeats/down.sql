ALTER TABLE audit_log DROP COLUMN last_at;
ALTER TABLE audit_log DROP COLUMN repeats;
