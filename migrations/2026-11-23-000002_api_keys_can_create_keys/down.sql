ALTER TABLE api_keys DROP COLUMN can_create_keys;
