#![doc = include_str!("../README.md")]

mod db;
mod error;
mod repos;
mod schema;

pub use db::{Database, MigrationStatus};
pub use error::StorageError;
