#![doc = include_str!("../README.md")]

mod exit;
mod services;

pub use exit::{EXIT_USAGE, Failure, parse};
pub use services::{OpenError, Services, auth_config, open_database};
