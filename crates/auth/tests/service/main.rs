//! The account service against real SQLite storage: one test binary,
//! modules by area, shared fixtures in `fixtures`.

mod accounts;
mod audit;
mod fixtures;
mod keys;
mod login;
mod throttle;
