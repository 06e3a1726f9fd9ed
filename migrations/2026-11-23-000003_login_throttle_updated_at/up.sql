-- Pruning idle throttle counters filters on updated_at: without an index
-- every prune was a full scan.
CREATE INDEX login_throttle_updated_at ON login_throttle (updated_at);
