//! Continuous batching with the real default model: sequences batched
//! together say exactly what they say alone, and the key/value cache
//! budget makes requests wait (never over-allocate) or refuses them.

mod common;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use offgrid_inference::{ChatMessage, ChatModel, Engine, EngineConfig, Event, Job, SamplingParams};

fn model() -> Arc<ChatModel> {
    let path = common::installed("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    Arc::new(ChatModel::load("smollm2-135m-instruct", &path).expect("load"))
}

fn prompt(m: &ChatModel, text: &str) -> Vec<u32> {
    let rendered = m
        .template
        .render(&[ChatMessage::new("user", text)], true)
        .expect("render");
    m.tokenizer.encode(&rendered).expect("encode")
}

fn params(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    }
}

fn idle_soon(engine: &Engine) -> bool {
    for _ in 0..500 {
        if engine.users_in_flight() == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Runs `jobs` (user, prompt text, max tokens) at once on `engine` and
/// returns each one's text and usage, in the same order.
fn run_all(
    engine: &Engine,
    m: &Arc<ChatModel>,
    jobs: &[(&str, &str, usize)],
) -> Vec<(String, Option<offgrid_inference::Usage>, Option<String>)> {
    let (tx, rx) = mpsc::channel();
    for (i, (user, text, max)) in jobs.iter().enumerate() {
        let tx = tx.clone();
        let mut out = String::new();
        engine
            .submit(
                Job::new(
                    *user,
                    m.clone(),
                    prompt(m, text),
                    params(*max),
                    Box::new(move |event| {
                        match event {
                            Event::Text(t) => out.push_str(&t),
                            Event::Done(u) => {
                                let _ = tx.send((i, std::mem::take(&mut out), Some(u), None));
                            }
                            Event::Error(e) => {
                                let _ = tx.send((i, std::mem::take(&mut out), None, Some(e)));
                            }
                            _ => {}
                        }
                        true
                    }),
                )
                .with_id(format!("job-{i}")),
            )
            .expect("submit");
    }
    let mut results = vec![(String::new(), None, None); jobs.len()];
    for _ in jobs {
        let (i, text, usage, error) = rx.recv_timeout(Duration::from_secs(300)).expect("ends");
        results[i] = (text, usage, error);
    }
    results
}

#[test]
fn batched_sequences_say_exactly_what_they_say_alone() {
    let m = model();
    let engine = Engine::start(EngineConfig::default()).expect("engine");
    // Different prompt lengths: a long prompt is read in chunks while the
    // others already decode, and sequences join and leave the batch.
    let long =
        "Summarise this: ".to_owned() + &"The lighthouse keeper climbed the stairs. ".repeat(30);
    let jobs = [
        ("alice", "Explain what a CPU does in one sentence.", 40),
        ("bob", "Write a haiku about the sea.", 24),
        ("carol", long.as_str(), 16),
        ("dave", "List three colours.", 32),
        ("erin", "What is the capital of France?", 12),
    ];
    let together = run_all(&engine, &m, &jobs);
    for (i, job) in jobs.iter().enumerate() {
        let alone = run_all(&engine, &m, &[*job]);
        assert!(together[i].2.is_none(), "{:?}", together[i].2);
        assert_eq!(together[i].0, alone[0].0, "{} batched vs alone", job.0);
        assert!(!alone[0].0.is_empty());
    }
    assert!(idle_soon(&engine));
    assert_eq!(
        engine.kv_budget().reserved(),
        0,
        "every reservation given back"
    );
    assert_eq!(engine.kv_budget().allocated(), 0, "every block freed");
}

#[test]
fn a_request_waits_for_cache_room_and_one_that_never_fits_is_refused() {
    use offgrid_inference::kv::KvLayout;
    let m = model();
    let layout = m.model().kv_layout();
    let text = "Write a long story about a dragon.";
    let positions = prompt(&m, text).len() + 48;
    // Room for exactly one such request.
    let budget = KvLayout::blocks_for(positions) * layout.block_bytes();
    let engine = Engine::start(EngineConfig {
        kv_cache_bytes: budget,
        ..EngineConfig::default()
    })
    .expect("engine");
    let board = engine.board().clone();
    let kv = engine.kv_budget().clone();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watch = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let (mut saw_wait, mut most) = (false, 0);
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                let list = board.list();
                let running = list
                    .iter()
                    .filter(|j| j.state == offgrid_inference::JobState::Running)
                    .count();
                saw_wait |= list.iter().any(|j| j.waiting_for_memory);
                most = most.max(running);
                assert!(kv.allocated() <= budget && kv.reserved() <= budget);
                std::thread::sleep(Duration::from_millis(2));
            }
            (saw_wait, most)
        })
    };
    let results = run_all(&engine, &m, &[("alice", text, 48), ("bob", text, 48)]);
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let (saw_wait, most) = watch.join().expect("watcher");
    for (text, usage, error) in &results {
        assert!(error.is_none(), "{error:?}");
        assert_eq!(usage.map(|u| u.completion_tokens), Some(48), "{text}");
    }
    assert!(saw_wait, "the second request was shown waiting for memory");
    assert_eq!(most, 1, "never both at once");
    assert_eq!(results[0].0, results[1].0, "the same greedy answer");
    // Bigger than the whole budget: refused at once, with the reason.
    let refused = run_all(&engine, &m, &[("carol", text, 64)]);
    let error = refused[0].2.clone().unwrap_or_default();
    assert!(error.contains("kv_cache_mb"), "{error}");
    assert!(idle_soon(&engine));
    assert_eq!(engine.kv_budget().reserved(), 0);
}
