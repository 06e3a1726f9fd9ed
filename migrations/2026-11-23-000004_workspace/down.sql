DROP TRIGGER chat_sessions_drop_grants;
DROP TABLE grants;
DROP TABLE chat_messages;
DROP TABLE chat_sessions;
DROP TABLE presets;
