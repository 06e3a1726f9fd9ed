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
        ..EngineConfig::default()
    })
    .expect("engine");
    let finished = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let submit = |user: &str, label: String, max_tokens: usize| {
        let (finished, done_tx) = (finished.clone(), done_tx.clone());
        engine
            .submit(Job {
                user: user.to_owned(),
                model: m.clone(),
                prompt: prompt(&m, "Write a long story about a dragon."),
                params: params(max_tokens),
                sink: Box::new(move |event| {
                    if let Event::Done(_) | Event::Error(_) = event {
                        finished.lock().expect("lock").push(label.clone());
                        let _ = done_tx.send(());
                    }
                    true
                }),
                alive: None,
                id: None,
                constraint: None,
            })
            .expect("submit");
    };
    // Alice's answers are longer than Bob's, so the finishing order shows
    // whether Bob started at the first free slot (then he finishes third at
    // the latest) or only after Alice's backlog (last). Her first two start
    // and finish together, freeing both slots at once: Bob takes one.
    for i in 0..4 {
        submit("alice", format!("alice-{i}"), 32);
    }
    std::thread::sleep(Duration::from_millis(50));
    submit("bob", "bob".to_owned(), 8);
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

/// Found by the soak: a user not yet waiting went to the front of the
/// round-robin order, so under overload (many users, one request each)
/// the queue ran last in, first out and the earliest requests waited until
/// their clients timed out. Among users with nothing running, the one who
/// has waited longest starts first.
#[test]
fn users_with_one_request_each_start_in_arrival_order() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 1,
        max_queued: 64,
        ..EngineConfig::default()
    })
    .expect("engine");
    let started = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let submit = |user: &str| {
        let (started, done_tx, label) = (started.clone(), done_tx.clone(), user.to_owned());
        let mut first = true;
        engine
            .submit(Job {
                user: user.to_owned(),
                model: m.clone(),
                prompt: prompt(&m, "Write a long story about a dragon."),
                params: params(4),
                sink: Box::new(move |event| {
                    if first {
                        first = false;
                        started.lock().expect("lock").push(label.clone());
                    }
                    if let Event::Done(_) | Event::Error(_) = event {
                        let _ = done_tx.send(());
                    }
                    true
                }),
                alive: None,
                id: None,
                constraint: None,
            })
            .expect("submit");
    };
    // The first takes the only slot; the others queue behind it, in turn.
    submit("u0");
    std::thread::sleep(Duration::from_millis(50));
    for i in 1..6 {
        submit(&format!("u{i}"));
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..6 {
        done_rx
            .recv_timeout(Duration::from_secs(300))
            .expect("finish");
    }
    let order = started.lock().expect("lock").clone();
    assert_eq!(order, ["u0", "u1", "u2", "u3", "u4", "u5"]);
}

#[test]
fn a_gone_client_stops_its_generation_and_a_full_queue_is_busy() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 1,
        max_queued: 1,
        ..EngineConfig::default()
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
            alive: None,
            id: None,
            constraint: None,
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
        alive: None,
        id: None,
        constraint: None,
    };
    engine.submit(blocker("a")).expect("runs");
    std::thread::sleep(Duration::from_millis(100));
    engine.submit(blocker("b")).expect("queued");
    assert!(matches!(
        engine.submit(blocker("c")),
        Err(EngineError::Busy { .. })
    ));
}

/// Whether the engine forgets every user within a few seconds: a request
/// gives its place back right after sending its last event.
fn idle_soon(engine: &Engine) -> bool {
    for _ in 0..500 {
        if engine.users_in_flight() == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A sink that records every event under `label` and signals when the
/// request ends.
fn recorder(
    label: &'static str,
    log: &Arc<Mutex<Vec<(&'static str, Event)>>>,
    done: &mpsc::Sender<&'static str>,
) -> offgrid_inference::engine::Sink {
    let (log, done) = (log.clone(), done.clone());
    Box::new(move |event| {
        let end = matches!(event, Event::Done(_) | Event::Error(_));
        log.lock().expect("lock").push((label, event));
        if end {
            let _ = done.send(label);
        }
        true
    })
}

#[test]
fn a_panic_while_generating_fails_that_request_only() {
    let m = model();
    let engine = Engine::start(EngineConfig::default()).expect("engine");
    let (done_tx, done_rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    // The first request blows up inside the engine thread on its first
    // token, as a bug in a forward pass would.
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let tx = done_tx.clone();
    let mut tokens = 0;
    let bomb: offgrid_inference::engine::Sink = Box::new(move |event| {
        match event {
            Event::Text(_) => {
                tokens += 1;
                assert!(tokens < 2, "deliberate panic in the engine thread");
            }
            Event::Error(e) => {
                seen.lock().expect("lock").push(e);
                let _ = tx.send("bomb");
            }
            _ => {}
        }
        true
    });
    engine
        .submit(Job::new(
            "mallory",
            m.clone(),
            prompt(&m, "Count to ten."),
            params(16),
            bomb,
        ))
        .expect("submit");
    engine
        .submit(Job::new(
            "alice",
            m.clone(),
            prompt(&m, "Say hello."),
            params(8),
            recorder("alice", &log, &done_tx),
        ))
        .expect("submit");
    let mut ended = vec![
        done_rx.recv_timeout(Duration::from_secs(120)).expect("end"),
        done_rx.recv_timeout(Duration::from_secs(120)).expect("end"),
    ];
    ended.sort_unstable();
    assert_eq!(ended, ["alice", "bomb"]);
    let errors = errors.lock().expect("lock").clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("internal error"), "{errors:?}");
    assert!(
        log.lock()
            .expect("lock")
            .iter()
            .any(|(l, e)| *l == "alice" && matches!(e, Event::Done(_))),
        "the other request finished normally"
    );
    // The engine is still serving.
    engine
        .submit(Job::new(
            "bob",
            m.clone(),
            prompt(&m, "Say hello."),
            params(4),
            recorder("bob", &log, &done_tx),
        ))
        .expect("submit after the panic");
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(120)).expect("end"),
        "bob"
    );
    assert!(idle_soon(&engine), "tickets returned after a panic");
}

#[test]
fn one_user_cannot_hold_every_slot_or_the_queue() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 2,
        max_queued: 64,
        max_per_user: 3,
        max_running_per_user: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    let (done_tx, done_rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let long = prompt(&m, "Write a long story about a dragon.");
    for label in ["a1", "a2", "a3"] {
        engine
            .submit(Job::new(
                "alice",
                m.clone(),
                long.clone(),
                params(6),
                recorder(label, &log, &done_tx),
            ))
            .expect("within alice's limit");
    }
    // Her fourth request is refused, however empty the shared queue is.
    assert_eq!(
        engine
            .submit(Job::new(
                "alice",
                m.clone(),
                long.clone(),
                params(6),
                Box::new(|_| true),
            ))
            .err(),
        Some(EngineError::UserBusy { limit: 3 })
    );
    // Bob is not affected by Alice's limit.
    engine
        .submit(Job::new(
            "bob",
            m.clone(),
            long.clone(),
            params(6),
            recorder("b1", &log, &done_tx),
        ))
        .expect("bob's request");
    for _ in 0..4 {
        done_rx.recv_timeout(Duration::from_secs(300)).expect("end");
    }
    // Alice never had two sequences decoding at once: each of her requests
    // produced no text before the previous one was done.
    let log = log.lock().expect("lock");
    let first_text = |label| {
        log.iter()
            .position(|(l, e)| *l == label && matches!(e, Event::Text(_)))
            .expect("text")
    };
    let done = |label| {
        log.iter()
            .position(|(l, e)| *l == label && matches!(e, Event::Done(_)))
            .expect("done")
    };
    assert!(done("a1") < first_text("a2"), "a2 ran beside a1");
    assert!(done("a2") < first_text("a3"), "a3 ran beside a2");
    // Bob ran beside Alice instead of after all three of hers.
    assert!(first_text("b1") < done("a1").max(done("a2")));
    drop(log);
    // Nothing is kept for users with no work in flight (a request's place
    // is given back just after its last event).
    assert!(idle_soon(&engine));
}

#[test]
fn a_client_gone_during_prefill_stops_its_prompt_at_the_next_chunk() {
    let m = model();
    let engine = Engine::start(EngineConfig::default()).expect("engine");
    // A prompt of several prefill chunks.
    let long = prompt(
        &m,
        &"The quick brown fox jumps over the lazy dog. ".repeat(40),
    );
    assert!(long.len() > 4 * offgrid_inference::generate::PREFILL_CHUNK);
    let checks = Arc::new(Mutex::new(0usize));
    let counted = checks.clone();
    let events = Arc::new(Mutex::new(0usize));
    let seen = events.clone();
    let job = Job::new(
        "gone",
        m.clone(),
        long,
        params(8),
        Box::new(move |event| {
            // Only the closing usage, for accounting: no text for a gone
            // client.
            assert!(
                matches!(&event, Event::Done(u) if u.finish_reason.as_str() == "cancelled"),
                "{event:?}"
            );
            *seen.lock().expect("lock") += 1;
            true
        }),
    )
    .with_liveness(Box::new(move || {
        let mut n = counted.lock().expect("lock");
        *n += 1;
        // Present when taken from the queue and for the first chunk only.
        *n <= 2
    }));
    engine.submit(job).expect("submit");
    // A second request: once it is done, the first one has been dropped.
    let (done_tx, done_rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    engine
        .submit(Job::new(
            "other",
            m.clone(),
            prompt(&m, "Say hi."),
            params(4),
            recorder("other", &log, &done_tx),
        ))
        .expect("submit");
    done_rx.recv_timeout(Duration::from_secs(120)).expect("end");
    while engine.users_in_flight() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        *checks.lock().expect("lock"),
        3,
        "stopped at the next chunk"
    );
    assert_eq!(
        *events.lock().expect("lock"),
        1,
        "only the closing usage for a gone client"
    );
}

#[test]
fn a_request_whose_client_left_while_queued_never_starts() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    let (done_tx, done_rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    engine
        .submit(Job::new(
            "a",
            m.clone(),
            prompt(&m, "Tell me about the sea."),
            params(16),
            recorder("a", &log, &done_tx),
        ))
        .expect("submit");
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = gone.clone();
    let started = Arc::new(Mutex::new(false));
    let mark = started.clone();
    engine
        .submit(
            Job::new(
                "b",
                m.clone(),
                prompt(&m, "Tell me about the sea."),
                params(16),
                Box::new(move |_| {
                    *mark.lock().expect("lock") = true;
                    true
                }),
            )
            .with_liveness(Box::new(move || {
                !flag.load(std::sync::atomic::Ordering::SeqCst)
            })),
        )
        .expect("queued");
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("a ends");
    while engine.users_in_flight() > 0 || engine.queued() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!*started.lock().expect("lock"), "b never produced an event");
}

#[test]
fn a_cancelled_request_ends_with_cancelled_queued_or_running() {
    let m = model();
    let engine = Engine::start(EngineConfig {
        max_active: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    let (tx, rx) = mpsc::channel();
    for (user, id) in [("alice", "running"), ("bob", "waiting")] {
        let tx = tx.clone();
        let job = Job::new(
            user,
            m.clone(),
            prompt(&m, "Write a long story about a dragon."),
            params(5000),
            Box::new(move |event| {
                if let Event::Done(usage) = event {
                    let _ = tx.send((id, usage));
                }
                true
            }),
        )
        .with_id(id);
        engine.submit(job).expect("submit");
    }
    let board = engine.board();
    // One slot: alice runs, bob waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while board
        .list()
        .iter()
        .find(|j| j.id == "running")
        .is_none_or(|j| j.generated_tokens == 0)
    {
        assert!(std::time::Instant::now() < deadline, "alice never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let waiting = board.list().into_iter().find(|j| j.id == "waiting");
    assert_eq!(
        waiting.map(|j| j.state),
        Some(offgrid_inference::JobState::Queued)
    );
    assert!(board.cancel("waiting"));
    let (id, usage) = rx.recv_timeout(Duration::from_secs(60)).expect("done");
    assert_eq!(id, "waiting");
    assert_eq!(usage.finish_reason.as_str(), "cancelled");
    assert_eq!(usage.completion_tokens, 0);
    assert!(board.cancel("running"));
    let (id, usage) = rx.recv_timeout(Duration::from_secs(60)).expect("done");
    assert_eq!(id, "running");
    assert_eq!(usage.finish_reason.as_str(), "cancelled");
    assert!(usage.completion_tokens > 0);
    assert!(idle_soon(&engine));
    assert!(board.list().is_empty() && !board.cancel("running"));
}
