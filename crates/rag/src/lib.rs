#![doc = include_str!("../README.md")]

pub mod search;
pub mod vector;

pub use search::{search, search_slice};
pub use vector::{BlobError, decode, decode_into, dot, encode, normalize};
