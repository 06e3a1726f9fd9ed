//! Benchmark runs: one standard prompt/decode measurement of a model
//! through the engine, kept as history.

use serde::{Deserialize, Serialize};

use crate::{BenchmarkId, Timestamp, UserId};

/// A run's figures, to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkFigures {
    /// The model measured.
    pub model: String,
    /// Tokens of the prompt read.
    pub prompt_tokens: i64,
    /// Tokens generated.
    pub generated_tokens: i64,
    /// Prompt tokens per second (reading the prompt).
    pub prompt_tps: f64,
    /// Generated tokens per second after the first.
    pub decode_tps: f64,
    /// From the first step to the first token, milliseconds.
    pub ttft_ms: f64,
    /// The machine's CPU.
    pub cpu: String,
    /// Threads a forward pass runs on.
    pub threads: i64,
    /// The kernels' instruction set (`avx512-vnni`, `avx2`, `portable`).
    pub simd: String,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkRun {
    /// Its id.
    pub id: BenchmarkId,
    /// When it finished.
    pub at: Timestamp,
    /// Who ran it (`None` once the account is deleted).
    pub user_id: Option<UserId>,
    /// What it measured.
    #[serde(flatten)]
    pub figures: BenchmarkFigures,
}
