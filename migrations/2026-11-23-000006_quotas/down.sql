DROP TABLE quota_tokens;
DROP TABLE quota_requests;
DROP TABLE quota_overrides;
