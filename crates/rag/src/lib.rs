#![doc = include_str!("../README.md")]

pub mod chunk;
pub mod extract;
pub mod search;
pub mod vector;

pub use chunk::{Chunk, ChunkConfig, TokenCounter, TokenizerCounter, WhitespaceCounter, chunk};
pub use extract::{
    DocumentKind, ExtractError, ExtractLimits, Extracted, extract, extract_document,
};
pub use search::{search, search_slice};
pub use vector::{BlobError, decode, decode_into, dot, encode, normalize};
