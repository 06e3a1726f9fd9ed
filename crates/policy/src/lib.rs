#![doc = include_str!("../README.md")]

pub mod grants;
pub mod matrix;

pub use grants::{Access, GrantLevel, resource_access};
pub use matrix::{Denied, authorize, permissions_of, role_has};
