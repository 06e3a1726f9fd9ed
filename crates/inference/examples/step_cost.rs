//! How long one batched forward step takes for `m` new rows, at a given
//! cache length: the cost curve continuous batching and chunked prefill
//! are tuned from. Prints `rows ms ms/row` lines.
//!
//! ```text
//! step_cost MODEL.gguf [CACHED_POSITIONS] [REPEAT]
//! ```

use std::time::Instant;

use offgrid_inference::LlamaModel;
use offgrid_inference::kv::KvBudget;
use offgrid_inference::transformer::BatchItem;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: step_cost MODEL.gguf [CACHED] [REPEAT]")?;
    let cached: usize = args
        .next()
        .map_or(Ok(0), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let repeat: usize = args
        .next()
        .map_or(Ok(5), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let model = LlamaModel::open(std::path::Path::new(&path)).map_err(|e| e.to_string())?;
    let budget = KvBudget::unlimited();
    let ids: Vec<u32> = (0..cached.max(1) as u32).map(|i| 100 + i % 1000).collect();
    println!(
        "simd {}; {cached} cached positions",
        offgrid_inference::simd::level().name()
    );
    for m in [1usize, 2, 4, 8, 16, 32, 64, 128] {
        let mut best = f64::MAX;
        for _ in 0..repeat {
            // m sequences of one token each (decodes), or one of m tokens
            // (a prompt chunk): the same rows for the matrix products.
            let mut kv = budget.reserve(model.kv_layout(), 0).ok_or("reserve")?;
            if cached > 0 {
                model
                    .forward_batch(&mut [BatchItem {
                        kv: &mut kv,
                        tokens: &ids[..cached],
                        all_logits: false,
                    }])
                    .map_err(|e| e.to_string())?;
            }
            let tokens: Vec<u32> = (0..m as u32).map(|i| 200 + i).collect();
            let t = Instant::now();
            model
                .forward_batch(&mut [BatchItem {
                    kv: &mut kv,
                    tokens: &tokens,
                    all_logits: false,
                }])
                .map_err(|e| e.to_string())?;
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("{m:>4} {best:>9.2} {:>8.2}", best / m as f64);
    }
    Ok(())
}
