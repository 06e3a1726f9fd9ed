#![doc = include_str!("../README.md")]

mod access;
mod app;
mod error;
mod extract;
mod models;
mod routes;
mod state;

pub use access::{Access, RouteInfo, route_table};
pub use app::{configure, serve};
pub use error::ApiError;
pub use models::{ModelError, ModelStatus, Models};
pub use state::AppState;
