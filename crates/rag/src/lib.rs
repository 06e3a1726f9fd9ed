#![doc = include_str!("../README.md")]

pub mod chunk;
pub mod search;
pub mod vector;

pub use chunk::{Chunk, ChunkConfig, TokenCounter, TokenizerCounter, WhitespaceCounter, chunk};
pub use search::{search, search_slice};
pub use vector::{BlobError, decode, decode_into, dot, encode, normalize};
