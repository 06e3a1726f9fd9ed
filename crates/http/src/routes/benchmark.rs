//! `POST /v1/benchmark` (administrators, and users with `benchmark_users`): one standard measurement of a
//! chat model through the same engine as every generation (admitted,
//! queued fairly, counted), its figures stored; `GET /v1/benchmark`: the
//! history, newest first.
//!
//! The measurement reads a prose prompt as plain text (no template) and
//! generates greedily: prompt tokens/s over the prompt's read (first
//! token minus queue wait), decode tokens/s over the tokens after the
//! first, and the time to the first token from the first step, with the
//! machine's CPU, the forward threads and the kernels' instruction set.

use actix_web::{HttpResponse, web};
use offgrid_domain::benchmark::BenchmarkFigures;
use offgrid_inference::{Event, ModelError, ModelKind, Prompt};
use serde::Deserialize;
use serde_json::Value;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::routes::openai::{Kind, Started, Submit, invalid, parse, start};
use crate::state::AppState;
use crate::wire::{Benchmark, BenchmarkList, BenchmarkRequest, CompletionOptions};

/// The prose the prompt is made of (repeated to length).
const PROSE: &str = "The history of computing is a story of machines that grew smaller, \
faster and cheaper while the ideas behind them stayed surprisingly stable. A processor \
reads an instruction, performs a simple operation on a few numbers and writes the result \
back to memory, billions of times every second. ";

/// About `tokens` tokens of prose (English prose is about four tokens
/// for every three words).
fn prompt_text(tokens: usize) -> String {
    let words: Vec<&str> = PROSE.split_whitespace().collect();
    let wanted = (tokens * 3 / 4).max(1);
    words
        .iter()
        .cycle()
        .take(wanted)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CPU's model name (Linux), or `unknown`.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `POST /v1/benchmark`.
#[utoipa::path(post, path = "/v1/benchmark", tag = "models", request_body = BenchmarkRequest,
    responses((status = 200, description = "The run, also stored", body = Benchmark)))]
pub(crate) async fn run(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut req: BenchmarkRequest = parse(body.into_inner())?;
    if req.model.is_empty() {
        req.model = state.settings.default_model.clone();
    }
    let prompt_tokens = match req.prompt_tokens {
        None => 256,
        Some(n @ 16..=2048) => n as usize,
        Some(n) => {
            return Err(invalid(
                "prompt_tokens",
                format!("must be between 16 and 2048, got {n}"),
            ));
        }
    };
    let max_tokens = match req.max_tokens {
        None => 64,
        Some(n @ 2..=512) => n,
        Some(n) => {
            return Err(invalid(
                "max_tokens",
                format!("must be between 2 and 512, got {n}"),
            ));
        }
    };
    let kind = state.models.status(&req.model).map(|s| s.entry.kind);
    if kind != Some(ModelKind::Chat) {
        return Err(ModelError::NotFound {
            id: req.model.clone(),
            none_installed: state.models.is_empty(),
        }
        .into());
    }
    let options = CompletionOptions {
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        seed: Some(0),
        ..CompletionOptions::new(&req.model)
    };
    let Started { mut rx, .. } = start(
        &state,
        &caller,
        &client,
        &options,
        Submit {
            kind: Kind::Text,
            prompt: Prompt::Text(prompt_text(prompt_tokens)),
            trimmable: 0..0,
            quota: None,
            endpoint: "benchmark",
            prefix: "bench",
            stop: None,
            format: None,
        },
    )
    .await?;
    let usage = loop {
        match rx.recv().await {
            Some(Event::Done(u)) => break u,
            Some(Event::Error(e)) => return Err(ApiError::internal(e)),
            Some(_) => {}
            None => return Err(ModelError::ClientLeft.into()),
        }
    };
    let first = usage.time_to_first_token.unwrap_or(usage.duration);
    let reading = first.saturating_sub(usage.queued).as_secs_f64();
    let decoding = usage.duration.saturating_sub(first).as_secs_f64();
    let per_second = |n: usize, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let figures = BenchmarkFigures {
        model: req.model.clone(),
        prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
        generated_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
        prompt_tps: per_second(usage.prompt_tokens, reading),
        decode_tps: per_second(usage.completion_tokens.saturating_sub(1), decoding),
        ttft_ms: reading * 1000.0,
        cpu: String::new(),
        threads: i64::try_from(offgrid_inference::forward_threads()).unwrap_or(i64::MAX),
        simd: offgrid_inference::simd::level().name().to_owned(),
    };
    let (repo, user) = (state.benchmarks.clone(), caller.principal.user_id.clone());
    let stored = crate::trace::block(move || {
        let figures = BenchmarkFigures {
            cpu: cpu_name(),
            ..figures
        };
        repo.record(
            user.as_ref(),
            figures,
            offgrid_domain::Timestamp(crate::routes::openai::now()),
        )
    })
    .await??;
    Ok(HttpResponse::Ok().json(Benchmark::from(stored)))
}

/// `GET /v1/benchmark`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    /// Only this model's runs.
    model: Option<String>,
    /// At most this many, 1–200 (default 50).
    #[serde(default = "crate::routes::default_limit")]
    limit: i64,
}

/// `GET /v1/benchmark`.
#[utoipa::path(get, path = "/v1/benchmark", tag = "models",
    params(("model" = Option<String>, Query, description = "Only this model's runs"),
           ("limit" = Option<i64>, Query, description = "At most this many, 1-200 (default 50)")),
    responses((status = 200, description = "Runs, newest first", body = BenchmarkList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let ListQuery { model, limit } = query.into_inner();
    let (limit, _) = crate::routes::Paging::checked(limit, 0)?;
    let repo = state.benchmarks.clone();
    let runs = crate::trace::block(move || repo.recent(model.as_deref(), limit)).await??;
    Ok(HttpResponse::Ok().json(BenchmarkList {
        object: "list".to_owned(),
        data: runs.into_iter().map(Benchmark::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::prompt_text;

    #[test]
    fn the_prompt_has_about_the_words_asked_for() {
        assert_eq!(prompt_text(16).split_whitespace().count(), 12);
        assert_eq!(prompt_text(2048).split_whitespace().count(), 1536);
    }
}
