#![doc = include_str!("../README.md")]

mod access;
mod app;
mod code;
mod cookie;
mod error;
mod extract;
pub mod metrics;
mod peer;
mod routes;
mod state;
mod trace;
mod ui;
pub mod wire;

pub use access::{Access, RouteInfo, route_table};
pub use app::{configure, is_loopback_name, serve};
pub use code::ErrorCode;
pub use cookie::{SECURE_SESSION_COOKIE, SESSION_COOKIE, session_cookie_name};
pub use error::ApiError;
pub use state::AppState;
