//! RAG over HTTP with the real embedding model: collections, documents
//! uploaded as JSON and as multipart files (Markdown and PDF), indexing to
//! `ready` or to `failed` with a clear message and nothing searchable,
//! upload limits, and search over what the caller may read.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const UPLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/rag/uploads");

pub(crate) fn new_collection(app: &TestApp, auth: Option<&str>, name: &str) -> String {
    let res = app.post("/v1/rag/collections", auth, json!({"name": name}));
    assert_eq!(res.status(), 201);
    body(res)["id"].as_str().expect("id").to_owned()
}

/// Uploads `bytes` as a multipart `file`.
pub(crate) fn upload_file(
    app: &TestApp,
    auth: Option<&str>,
    collection: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> reqwest::blocking::Response {
    let part = reqwest::blocking::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .expect("mime");
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    app.request(
        "POST",
        &format!("/v1/rag/collections/{collection}/documents"),
        auth,
    )
    .multipart(form)
    .send()
    .expect("upload")
}

/// Polls a document until it is no longer indexing.
pub(crate) fn wait_indexed(
    app: &TestApp,
    auth: Option<&str>,
    collection: &str,
    doc: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let d = body(app.get(
            &format!("/v1/rag/collections/{collection}/documents/{doc}"),
            auth,
        ));
        if d["status"] != "indexing" {
            return d;
        }
        assert!(Instant::now() < deadline, "still indexing: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn add_text(app: &TestApp, auth: Option<&str>, collection: &str, name: &str, text: &str) -> Value {
    let res = app.post(
        &format!("/v1/rag/collections/{collection}/documents"),
        auth,
        json!({"name": name, "text": text}),
    );
    assert_eq!(res.status(), 202);
    let d = body(res);
    assert_eq!(d["status"], "indexing", "{d}");
    wait_indexed(app, auth, collection, d["id"].as_str().expect("id"))
}

#[test]
fn documents_are_indexed_and_found_by_meaning() {
    let app = spawn_with_models(|_| {});
    let c = new_collection(&app, None, "Household");
    let note = add_text(
        &app,
        None,
        &c,
        "boiler.txt",
        "The boiler in the cellar needs its pressure topped up to 1.5 bar every autumn. \
         The valve is the black tap under the gauge.",
    );
    assert_eq!(note["status"], "ready", "{note}");
    assert!(note["chunks"].as_i64() >= Some(1));
    let md = upload_file(
        &app,
        None,
        &c,
        "garden.md",
        "text/markdown",
        std::fs::read(format!("{UPLOADS}/garden.md")).expect("fixture"),
    );
    assert_eq!(md.status(), 202);
    let md = body(md);
    let pdf = upload_file(
        &app,
        None,
        &c,
        "lighthouse.pdf",
        "application/pdf",
        std::fs::read(format!("{UPLOADS}/lighthouse.pdf")).expect("fixture"),
    );
    assert_eq!(pdf.status(), 202);
    let pdf = body(pdf);
    for d in [&md, &pdf] {
        let done = wait_indexed(&app, None, &c, d["id"].as_str().expect("id"));
        assert_eq!(done["status"], "ready", "{done}");
    }
    let pdf = wait_indexed(&app, None, &c, pdf["id"].as_str().expect("id"));
    assert_eq!(pdf["content_type"], "application/pdf");
    for (question, expected) in [
        ("How do I add pressure to the heating?", "boiler.txt"),
        ("Who looks after the plants on Monday?", "garden.md"),
        (
            "When can tourists go up the tower by the sea?",
            "lighthouse.pdf",
        ),
    ] {
        let hits = body(app.post(
            "/v1/rag/search",
            None,
            json!({"query": question, "top_k": 3}),
        ));
        let data = hits["data"].as_array().expect("data");
        assert!(!data.is_empty(), "{hits}");
        assert_eq!(data[0]["document"]["name"], expected, "{question}: {hits}");
        assert_eq!(data[0]["collection"]["id"], c.as_str());
        assert!(data[0]["score"].as_f64().unwrap_or(0.0) > 0.2, "{hits}");
    }
    let listed = body(app.get(&format!("/v1/rag/collections/{c}"), None));
    assert_eq!(listed["document_count"], 3, "{listed}");
    assert!(listed["chunk_count"].as_i64() >= Some(3), "{listed}");
}

#[test]
fn bad_files_fail_with_a_clear_message_and_nothing_searchable() {
    let app = spawn_with_models(|s| s.rag_max_upload_mb = 1);
    let c = new_collection(&app, None, "Junk");
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("empty.txt", "text/plain", b"   \n\t ".to_vec(), "no text"),
        (
            "fake.pdf",
            "application/pdf",
            b"just text, not a PDF".to_vec(),
            "not one",
        ),
        (
            "cut.pdf",
            "application/pdf",
            b"%PDF-1.4\n1 0 obj\n<<".to_vec(),
            "PDF",
        ),
        (
            "photo.txt",
            "text/plain",
            vec![0x89, b'P', b'N', b'G', 0, 0, 1, 2, 0, 0xff],
            "binary",
        ),
    ];
    for (name, mime, bytes, says) in cases {
        let res = upload_file(&app, None, &c, name, mime, bytes);
        assert_eq!(res.status(), 202, "{name}");
        let d = body(res);
        let d = wait_indexed(&app, None, &c, d["id"].as_str().expect("id"));
        assert_eq!(d["status"], "failed", "{name}: {d}");
        assert_eq!(d["chunks"], 0);
        let error = d["error"].as_str().expect("error");
        assert!(error.contains(says), "{name}: {error}");
    }
    let listed = body(app.get(&format!("/v1/rag/collections/{c}"), None));
    assert_eq!(listed["chunk_count"], 0, "{listed}");
    // A run without spaces counts as a few tokens: it is still cut into
    // pieces of at most 4 KiB, so no prompt or result gets it whole.
    let run = add_text(&app, None, &c, "run.txt", &"x".repeat(50_000));
    assert_eq!(run["status"], "ready", "{run}");
    assert!(run["chunks"].as_i64() >= Some(13), "{run}");
    let hits = body(app.post(
        "/v1/rag/search",
        None,
        json!({"query": "xxxx", "top_k": 50}),
    ));
    let data = hits["data"].as_array().expect("data");
    assert!(!data.is_empty(), "{hits}");
    assert!(
        data.iter()
            .all(|h| h["text"].as_str().map_or(0, str::len) <= 4096)
    );
    let gone = app.delete(
        &format!(
            "/v1/rag/collections/{c}/documents/{}",
            run["id"].as_str().expect("id")
        ),
        None,
    );
    assert_eq!(gone.status(), 204);
    let listed = body(app.get(&format!("/v1/rag/collections/{c}"), None));
    assert_eq!(listed["chunk_count"], 0, "{listed}");
    let hits = body(app.post("/v1/rag/search", None, json!({"query": "text"})));
    assert_eq!(hits["data"], json!([]));
    // Over the limit: refused before anything is stored.
    let big = upload_file(
        &app,
        None,
        &c,
        "big.txt",
        "text/plain",
        vec![b'a'; (1 << 20) + 1],
    );
    assert_error(big, 413, "payload_too_large");
    let big = app.post(
        &format!("/v1/rag/collections/{c}/documents"),
        None,
        json!({"name": "big.txt", "text": "a".repeat((1 << 20) + 1)}),
    );
    assert_error(big, 413, "payload_too_large");
    let res = app
        .request("POST", &format!("/v1/rag/collections/{c}/documents"), None)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .expect("send");
    assert_error(res, 415, "unsupported_media_type");
    let docs = body(app.get(&format!("/v1/rag/collections/{c}/documents"), None));
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(4), "{docs}");
}

#[test]
fn search_refuses_what_it_cannot_search() {
    let app = spawn_with_models(|_| {});
    new_collection(&app, None, "Empty");
    let missing = "0b9c6d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e";
    assert_error(
        app.post(
            "/v1/rag/search",
            None,
            json!({"query": "x", "collection_ids": [missing]}),
        ),
        404,
        "not_found",
    );
    for bad in [
        json!({"query": ""}),
        json!({"query": "x", "top_k": 0}),
        json!({"query": "x", "top_k": 51}),
        json!({"query": "x", "min_score": 2.0}),
        json!({"query": "x".repeat(9000)}),
    ] {
        let res = app.post("/v1/rag/search", None, bad.clone());
        assert_eq!(res.status(), 400, "{bad}");
    }
    // Nothing ready: an empty answer, not an error.
    let hits = body(app.post("/v1/rag/search", None, json!({"query": "anything"})));
    assert_eq!(hits["data"], json!([]));
}

const CHAT: &str = "smollm2-135m-instruct";

#[test]
fn a_chat_with_retrieval_cites_its_sources_plain_streamed_and_in_a_session() {
    let app = spawn_with_models(|_| {});
    let c = new_collection(&app, None, "House notes");
    add_text(
        &app,
        None,
        &c,
        "wifi.txt",
        "The wifi password for the guest network is Marmalade-42. The router is in the hallway cupboard.",
    );
    add_text(
        &app,
        None,
        &c,
        "bins.txt",
        "Recycling goes out on Tuesday night; the green bin is collected every second Friday.",
    );
    let ask = |extra: Value| {
        let mut req = json!({"model": CHAT, "temperature": 0, "max_tokens": 24,
            "messages": [{"role": "user", "content": "What is the password of the guest wifi?"}]});
        for (k, v) in extra.as_object().expect("object") {
            req[k] = v.clone();
        }
        app.post("/v1/chat/completions", None, req)
    };
    // Plain: the citations at the top level, best first.
    let plain = body(ask(json!({"rag": {"collection_ids": [c], "top_k": 1}})));
    let citations = plain["citations"].as_array().expect("citations");
    assert_eq!(citations.len(), 1, "{plain}");
    assert_eq!(citations[0]["document"]["name"], "wifi.txt");
    assert_eq!(citations[0]["collection"]["name"], "House notes");
    assert_eq!(citations[0]["chunk_index"], 0);
    assert!(
        plain["usage"]["prompt_tokens"].as_u64() > Some(60),
        "the excerpt is in the prompt: {plain}"
    );
    // The seed's form searches every collection of the caller's.
    let seed = body(ask(json!({"use_knowledge_base": true})));
    assert_eq!(
        seed["citations"][0]["document"]["name"], "wifi.txt",
        "{seed}"
    );
    // Without retrieval: no citations at all.
    let none = body(ask(json!({})));
    assert!(none.get("citations").is_none(), "{none}");
    // Streamed: one chunk with the citations, right before [DONE].
    let text = ask(json!({"stream": true, "use_knowledge_base": true}))
        .text()
        .expect("stream");
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let before: Value = serde_json::from_str(events[events.len() - 2]).expect("json");
    assert_eq!(
        before["citations"][0]["document"]["name"], "wifi.txt",
        "{text}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("\"citations\""))
            .count(),
        1,
        "{text}"
    );
    // In a session: the answer is stored with its citations.
    let s = body(app.post("/v1/sessions", None, json!({"model": CHAT})))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = body(ask(json!({"session_id": s, "use_knowledge_base": true})));
    assert!(res["citations"].is_array(), "{res}");
    let stored = body(app.get(&format!("/v1/sessions/{s}"), None));
    let answer = &stored["messages"][1];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(
        answer["citations"][0]["document"]["name"], "wifi.txt",
        "{stored}"
    );
}

#[test]
fn a_question_while_documents_index_says_so() {
    let app = spawn_with_models(|_| {});
    let c = new_collection(&app, None, "Big");
    // Enough text to keep the indexer busy for a while.
    let paragraph = "The annual report describes the maintenance of the canal locks, \
                     the dredging schedule and the budget for new lock gates. ";
    let text = paragraph.repeat(600);
    let res = app.post(
        &format!("/v1/rag/collections/{c}/documents"),
        None,
        json!({"name": "report.txt", "text": text}),
    );
    assert_eq!(res.status(), 202);
    let doc = body(res)["id"].as_str().expect("id").to_owned();
    let answer = body(app.post(
        "/v1/chat/completions",
        None,
        json!({"model": CHAT, "use_knowledge_base": true,
            "messages": [{"role": "user", "content": "When are the canal locks dredged?"}]}),
    ));
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(content.contains("still being indexed"), "{answer}");
    assert_eq!(answer["citations"], json!([]));
    let done = wait_indexed(&app, None, &c, &doc);
    assert_eq!(done["status"], "ready", "{done}");
    assert!(done["chunks"].as_i64() > Some(20), "{done}");
}

/// Opens an upload whose body never finishes: headers and a few bytes of a
/// body that claims to be longer. The connection is returned, still open.
fn stalled_upload(app: &TestApp, collection: &str) -> std::net::TcpStream {
    use std::io::Write;
    let addr = app.base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /v1/rag/collections/{collection}/documents HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"name\":\"slow\","
    );
    conn.write_all(head.as_bytes()).expect("send");
    conn
}

/// Whether the server has answered (or closed) a stalled upload.
fn answered(conn: &std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    conn.set_nonblocking(true).expect("nonblocking");
    let seen = match conn.peek(&mut byte) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).expect("blocking");
    seen
}

/// Uploads whose bodies are being read hold memory, so at most four are
/// read at once: a fifth is told the server is busy (503 with
/// `Retry-After`) instead of waiting, and once the slow senders leave,
/// uploads work again. Hostile JSON bodies, nested far past any real
/// document, are a 400 on both the upload and the search route.
#[test]
fn slow_uploads_hold_a_bounded_number_of_places_and_hostile_json_is_refused() {
    let app = spawn_with_models(|_| {});
    let c = new_collection(&app, None, "Slow");
    let mut stalled: Vec<_> = (0..4).map(|_| stalled_upload(&app, &c)).collect();
    let path = format!("/v1/rag/collections/{c}/documents");
    let doc = json!({"name": "quick.txt", "text": "A short note about lighthouses."});
    // The stalled uploads reach their handlers soon; until then a probe
    // may still get a place, and a stalled upload that arrived while a
    // probe held one was told to come back (503): it is replaced. Once the
    // four places are held by stalled uploads, a probe must be refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        for conn in &mut stalled {
            if answered(conn) {
                *conn = stalled_upload(&app, &c);
            }
        }
        let res = app.post(&path, None, doc.clone());
        if res.status() == 503 {
            break res;
        }
        assert_eq!(res.status(), 202);
        assert!(Instant::now() < deadline, "a fifth upload never waited");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(busy.headers().contains_key("retry-after"));
    let err = assert_error(busy, 503, "server_busy");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("uploads")),
        "{err}"
    );
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = app.post(&path, None, doc.clone());
        if res.status() == 202 {
            break;
        }
        assert_eq!(res.status(), 503);
        assert!(Instant::now() < deadline, "places were not given back");
        std::thread::sleep(Duration::from_millis(100));
    }

    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (route, raw) in [
        (
            path.as_str(),
            format!("{{\"name\":\"n.txt\",\"text\":{}}}", deep(100_000)),
        ),
        ("/v1/rag/search", format!("{{\"query\":{}}}", deep(100_000))),
        (
            "/v1/rag/collections",
            format!("{{\"name\":{}}}", deep(100_000)),
        ),
    ] {
        let res = app
            .request("POST", route, None)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .expect("send");
        assert_eq!(res.status(), 400, "{route}");
        let err = body(res);
        assert_eq!(
            err["error"]["type"], "invalid_request_error",
            "{route}: {err}"
        );
    }
    // The server is still serving.
    assert_eq!(app.get("/v1/rag/collections", None).status(), 200);
}
