//! `POST /v1/benchmark` and `GET /v1/benchmark`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/benchmark`: what to measure.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BenchmarkRequest {
    /// A chat model (default: `default_model`).
    #[serde(default)]
    #[schema(example = "smollm2-135m-instruct")]
    pub model: String,
    /// About how many prompt tokens to read, 16–2048 (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 16, maximum = 2048)]
    pub prompt_tokens: Option<i64>,
    /// Tokens to generate, 2–512 (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 2, maximum = 512)]
    pub max_tokens: Option<i64>,
}

/// One benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Benchmark {
    /// Its id.
    pub id: String,
    /// When it finished, Unix seconds.
    pub created_at: i64,
    /// The model measured.
    pub model: String,
    /// Prompt tokens read.
    pub prompt_tokens: i64,
    /// Tokens generated.
    pub generated_tokens: i64,
    /// Reading the prompt, tokens per second.
    pub prompt_tps: f64,
    /// Generating after the first token, tokens per second.
    pub decode_tps: f64,
    /// From the first step to the first token, milliseconds.
    pub ttft_ms: f64,
    /// The machine's CPU.
    pub cpu: String,
    /// Threads a forward pass runs on.
    pub threads: i64,
    /// The kernels' instruction set.
    pub simd: String,
}

impl From<offgrid_domain::benchmark::BenchmarkRun> for Benchmark {
    fn from(r: offgrid_domain::benchmark::BenchmarkRun) -> Self {
        let f = r.figures;
        Benchmark {
            id: r.id.as_str().to_owned(),
            created_at: r.at.0,
            model: f.model,
            prompt_tokens: f.prompt_tokens,
            generated_tokens: f.generated_tokens,
            prompt_tps: f.prompt_tps,
            decode_tps: f.decode_tps,
            ttft_ms: f.ttft_ms,
            cpu: f.cpu,
            threads: f.threads,
            simd: f.simd,
        }
    }
}

/// `GET /v1/benchmark`: runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BenchmarkList {
    /// `list`.
    pub object: String,
    /// The runs.
    pub data: Vec<Benchmark>,
}
