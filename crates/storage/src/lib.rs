#![doc = include_str!("../README.md")]

mod db;
mod error;
mod files;
mod repos;
mod schema;

pub use db::{Database, MIGRATIONS, MigrationStatus};
pub use error::StorageError;
pub use files::{make_private_dir, restrict_to_owner};
