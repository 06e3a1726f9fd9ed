//! The engine with the real default model: fairness, cancellation, limits.

mod common;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use offgrid_inference::{
    ChatMessage, ChatModel, Engine, EngineConfig, EngineError, Event, Job, SamplingParams,
};

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

#[test]
fn one_users_backlog_does_not_starve_another_user() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 2,
        max_queued: 64,
    })
    .expect("engine");
    let finished = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let submit = |user: &str, label: String| {
        let (finished, done_tx) = (finished.clone(), done_tx.clone());
        engine
            .submit(Job {
                user: user.to_owned(),
                model: m.clone(),
                prompt: prompt(&m, "Write a long story about a dragon."),
                params: params(8),
                sink: Box::new(move |event| {
                    if let Event::Done(_) | Event::Error(_) = event {
                        finished.lock().expect("lock").push(label.clone());
                        let _ = done_tx.send(());
                    }
                    true
                }),
            })
            .expect("submit");
    };
    for i in 0..4 {
        submit("alice", format!("alice-{i}"));
    }
    std::thread::sleep(Duration::from_millis(50));
    submit("bob", "bob".to_owned());
    for _ in 0..5 {
        done_rx
            .recv_timeout(Duration::from_secs(300))
            .expect("finish");
    }
    let order = finished.lock().expect("lock").clone();
    let bob = order.iter().position(|l| l == "bob").expect("bob finished");
    // Bob waits for at most one of Alice's requests to free a slot, then
    // runs beside her second: he finishes within the first three.
    assert!(bob <= 2, "bob finished at {bob}: {order:?}");
}

#[test]
fn a_gone_client_stops_its_generation_and_a_full_queue_is_busy() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 1,
        max_queued: 1,
    })
    .expect("engine");
    let (tx, rx) = mpsc::channel();
    let texts = Arc::new(Mutex::new(0usize));
    let seen = texts.clone();
    engine
        .submit(Job {
            user: "u".into(),
            model: m.clone(),
            prompt: prompt(&m, "Count to one hundred."),
            params: params(200),
            sink: Box::new(move |event| {
                if let Event::Text(_) = event {
                    *seen.lock().expect("lock") += 1;
                    let _ = tx.send(());
                    return false; // the client hung up after the first token
                }
                true
            }),
        })
        .expect("submit");
    rx.recv_timeout(Duration::from_secs(120))
        .expect("first token");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        *texts.lock().expect("lock"),
        1,
        "no step after the client left"
    );

    // One running, one queued: the next is refused with Busy.
    let blocker = |label: &'static str| Job {
        user: label.into(),
        model: m.clone(),
        prompt: prompt(&m, "Tell me about the sea."),
        params: params(64),
        sink: Box::new(|_| true),
    };
    engine.submit(blocker("a")).expect("runs");
    std::thread::sleep(Duration::from_millis(100));
    engine.submit(blocker("b")).expect("queued");
    assert!(matches!(
        engine.submit(blocker("c")),
        Err(EngineError::Busy { .. })
    ));
}
