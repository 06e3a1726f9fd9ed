//! The generation queue over HTTP with the real default model: each caller
//! sees their own generations (administrators everyone's), queued ones
//! with a position, and cancelling ends the client's answer at once with
//! `finish_reason: "cancelled"`.

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const CHAT: &str = "smollm2-135m-instruct";

/// An open stream and its completion id (read from the first chunk).
struct Stream {
    id: String,
    reader: BufReader<reqwest::blocking::Response>,
}

impl Stream {
    fn open(app: &TestApp, auth: &str, session: Option<&str>) -> Stream {
        let mut body = json!({"model": CHAT, "stream": true, "max_tokens": 3000,
            "temperature": 1.0,
            "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}]});
        if let Some(id) = session {
            body["session_id"] = json!(id);
        }
        let res = app.post("/v1/chat/completions", Some(auth), body);
        assert_eq!(res.status(), 200);
        let mut reader = BufReader::new(res);
        let mut line = String::new();
        reader.read_line(&mut line).expect("first event");
        let first: Value =
            serde_json::from_str(line.trim().trim_start_matches("data: ")).expect("chunk");
        let id = first["id"].as_str().expect("id").to_owned();
        Stream { id, reader }
    }

    /// Reads to the end; the last chunk's finish reason.
    fn finish_reason(mut self) -> String {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).expect("rest");
        assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
        rest.split("\n\n")
            .filter_map(|e| e.trim_start().strip_prefix("data: "))
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
            .last()
            .expect("a finish reason")
    }
}

fn queue(app: &TestApp, auth: &str) -> Vec<Value> {
    body(app.get("/v1/queue", Some(auth)))["data"]
        .as_array()
        .expect("data")
        .clone()
}

fn entry<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|e| e["id"] == id)
}

#[test]
fn callers_see_and_cancel_their_own_generations_and_admins_everyones() {
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.num_parallel = 4;
    });
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (_, bob) = app.create_user(&admin, "bob", "user");
    let session = body(app.post("/v1/sessions", Some(&ann), json!({"model": CHAT})))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Ann runs three (her running limit), Bob two: four slots, so one of
    // Bob's waits.
    let a: Vec<Stream> = (0..3)
        .map(|i| Stream::open(&app, &ann, (i == 0).then_some(session.as_str())))
        .collect();
    let b: Vec<Stream> = (0..2).map(|_| Stream::open(&app, &bob, None)).collect();

    let mine = queue(&app, &ann);
    assert_eq!(mine.len(), 3, "{mine:?}");
    for s in &a {
        let e = entry(&mine, &s.id).expect("listed");
        assert_eq!(e["model"], CHAT);
        assert!(e.get("user").is_none(), "only admins see whose");
        assert!(e["created_at"].is_string());
    }
    assert!(entry(&mine, &b[0].id).is_none(), "not Bob's");
    // The engine takes them from its inbox between steps.
    let deadline = Instant::now() + Duration::from_secs(60);
    let everyone = loop {
        let all = queue(&app, &admin);
        let running = all.iter().filter(|e| e["state"] == "running").count();
        if running == 4 || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(everyone.len(), 5, "{everyone:?}");
    assert_eq!(
        entry(&everyone, &a[0].id).expect("ann's")["user"]["username"],
        "ann"
    );
    let states: Vec<&str> = everyone
        .iter()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "running").count(),
        4,
        "{everyone:?}"
    );
    let waiting: Vec<&Value> = everyone.iter().filter(|e| e["state"] == "queued").collect();
    assert_eq!(waiting.len(), 1, "{everyone:?}");
    assert_eq!(waiting[0]["position"], 0);
    let queued_id = waiting[0]["id"].as_str().expect("id").to_owned();

    // Tokens are counted while it runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while entry(&queue(&app, &ann), &a[0].id).and_then(|e| e["generated_tokens"].as_u64()) < Some(1)
    {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Someone else's generation is not found, nor an unknown one.
    let path = |id: &str| format!("/v1/queue/{id}");
    assert_error(app.delete(&path(&a[1].id), Some(&bob)), 404, "not_found");
    assert_error(app.delete(&path("nope"), Some(&ann)), 404, "not_found");
    // Guests share their network's key: they cancel nothing.
    assert_error(app.delete(&path(&a[0].id), None), 404, "not_found");
    let mut streams: Vec<(&str, Stream)> = a
        .into_iter()
        .map(|s| (ann.as_str(), s))
        .chain(b.into_iter().map(|s| (bob.as_str(), s)))
        .collect();
    // An administrator cancels anyone's, a queued one too.
    let pos = streams
        .iter()
        .position(|(_, s)| s.id == queued_id)
        .expect("queued stream");
    let (_, queued) = streams.remove(pos);
    assert_eq!(app.delete(&path(&queued_id), Some(&admin)).status(), 204);
    assert_eq!(queued.finish_reason(), "cancelled");
    assert_error(
        app.delete(&path(&queued_id), Some(&admin)),
        404,
        "not_found",
    );
    // Each owner cancels their own; the first (Ann's, in the session) last.
    let (_, first) = streams.remove(0);
    for (owner, s) in streams {
        assert_eq!(app.delete(&path(&s.id), Some(owner)).status(), 204);
        assert_eq!(s.finish_reason(), "cancelled");
    }
    assert_eq!(app.delete(&path(&first.id), Some(&ann)).status(), 204);
    assert_eq!(first.finish_reason(), "cancelled");
    // A cancelled chat in a session is saved as interrupted.
    let stored = body(app.get(&format!("/v1/sessions/{session}"), Some(&ann)));
    assert_eq!(stored["messages"][1]["interrupted"], true, "{stored}");
    // Each leaves the board right after its last event.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !queue(&app, &admin).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the board keeps ended generations"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
