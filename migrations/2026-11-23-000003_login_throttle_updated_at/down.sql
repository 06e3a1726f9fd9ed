DROP INDEX login_throttle_updated_at;
