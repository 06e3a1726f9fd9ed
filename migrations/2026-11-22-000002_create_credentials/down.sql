DROP TABLE user_sessions;
DROP TABLE api_keys;
