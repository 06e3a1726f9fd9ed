DROP TABLE audit_log;
DROP TABLE login_throttle;
