//! Who may do what with a RAG collection, over HTTP with the real
//! embedding model: the cross-tenant matrix (every collection endpoint ×
//! every kind of caller × every share level, on a server whose admins read
//! everything and on one with `admin_can_read_chats = false`; each cell's
//! status asserted, a hidden collection answering exactly like a missing
//! one, and the owner's data unchanged after every refusal), a revoked
//! share ending retrieval on the next request, deleting a user with and
//! without an heir, and the role rules (a Viewer neither creates nor
//! writes, a guest has no collections).

use std::rc::Rc;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::rag::{new_collection, wait_indexed};

const CHAT: &str = "smollm2-135m-instruct";
/// The document every matrix collection holds.
const SHED: &str = "The spare key of the garden shed hangs on a hook behind the rain barrel.";
/// A question it answers.
const SHED_QUESTION: &str = "Where is the key of the garden shed?";
/// An id no collection has.
const MISSING: &str = "0b9c6d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e";

/// What a request needs of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Read,
    Write,
    Admin,
    /// The owner, or an Admin by role.
    Delete,
}

/// One collection endpoint, with the body it sends.
struct Endpoint {
    method: &'static str,
    /// `{id}` is the collection, `{doc}` its document, `{carol}` the user
    /// whose share to end.
    path: &'static str,
    /// `{id}` in a string is the collection.
    body: Value,
    needs: Needs,
    /// Whether it reads or changes the documents (an administrator of a
    /// server with `admin_can_read_chats = false` needs a share for that).
    contents: bool,
    /// Whether success changes the collection: such a cell gets a fresh
    /// one.
    mutates: bool,
    /// The status of success.
    ok: u16,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method, path, body, needs, contents, mutates, ok| Endpoint {
        method,
        path,
        body,
        needs,
        contents,
        mutates,
        ok,
    };
    let c = "/v1/rag/collections/{id}";
    vec![
        e("GET", c, Value::Null, Needs::Read, false, false, 200),
        e(
            "PATCH",
            c,
            json!({"name": "Taken over", "description": "not yours any more"}),
            Needs::Admin,
            false,
            true,
            200,
        ),
        e("DELETE", c, Value::Null, Needs::Delete, false, true, 204),
        e(
            "POST",
            "/v1/rag/collections/{id}/documents",
            json!({"name": "intruder.txt", "text": "Planted by someone else."}),
            Needs::Write,
            true,
            true,
            202,
        ),
        e(
            "GET",
            "/v1/rag/collections/{id}/documents",
            Value::Null,
            Needs::Read,
            true,
            false,
            200,
        ),
        e(
            "GET",
            "/v1/rag/collections/{id}/documents/{doc}",
            Value::Null,
            Needs::Read,
            true,
            false,
            200,
        ),
        e(
            "DELETE",
            "/v1/rag/collections/{id}/documents/{doc}",
            Value::Null,
            Needs::Write,
            true,
            true,
            204,
        ),
        e(
            "POST",
            "/v1/rag/collections/{id}/shares",
            json!({"username": "dan", "permission": "read"}),
            Needs::Admin,
            false,
            true,
            201,
        ),
        e(
            "GET",
            "/v1/rag/collections/{id}/shares",
            Value::Null,
            Needs::Admin,
            false,
            false,
            200,
        ),
        e(
            "DELETE",
            "/v1/rag/collections/{id}/shares/{carol}",
            Value::Null,
            Needs::Admin,
            false,
            true,
            204,
        ),
        e(
            "POST",
            "/v1/rag/search",
            json!({"query": SHED_QUESTION, "collection_ids": ["{id}"]}),
            Needs::Read,
            true,
            false,
            200,
        ),
    ]
}

/// What a caller holds on the owner's collection.
#[derive(Debug, Clone, Copy)]
enum Holds {
    /// Refused by the route gate with this status, before any lookup.
    Gate(u16),
    /// Cannot see it: 404, exactly as for a missing id.
    Nothing,
    /// Sees it at `level` (0 read, 1 write, 2 admin); `contents`: may read
    /// and change its documents; `deletes`: the owner or an Admin.
    Sees {
        level: u8,
        contents: bool,
        deletes: bool,
    },
}

const OWNS: Holds = Holds::Sees {
    level: 2,
    contents: true,
    deletes: true,
};

fn at(level: u8) -> Holds {
    Holds::Sees {
        level,
        contents: true,
        deletes: false,
    }
}

impl Holds {
    /// The status `endpoint` answers this caller.
    fn expect(self, endpoint: &Endpoint) -> u16 {
        match self {
            Holds::Gate(status) => status,
            Holds::Nothing => 404,
            Holds::Sees {
                level,
                contents,
                deletes,
            } => {
                let enough = match endpoint.needs {
                    Needs::Read => true,
                    Needs::Write => level >= 1,
                    Needs::Admin => level >= 2,
                    Needs::Delete => deletes,
                };
                if enough && (contents || !endpoint.contents) {
                    endpoint.ok
                } else {
                    403
                }
            }
        }
    }
}

/// One row of the callers' table.
struct Case<'a> {
    who: &'static str,
    credential: Option<&'a str>,
    /// A share the owner gives first: (user id, level).
    share: Option<(&'a str, &'static str)>,
    holds: Holds,
}

fn case<'a>(
    who: &'static str,
    credential: Option<&'a str>,
    share: Option<(&'a str, &'static str)>,
    holds: Holds,
) -> Case<'a> {
    Case {
        who,
        credential,
        share,
        holds,
    }
}

/// A collection of the owner's with one ready document, carol holding
/// read (something to unshare) and the case's share.
struct Fixture {
    id: String,
    doc: String,
}

fn fixture(app: &TestApp, owner: &str, carol: &str, share: Option<(&str, &str)>) -> Fixture {
    let id = new_collection(app, Some(owner), "Ann's notes");
    let res = app.post(
        &format!("/v1/rag/collections/{id}/documents"),
        Some(owner),
        json!({"name": "shed.txt", "text": SHED}),
    );
    assert_eq!(res.status().as_u16(), 202);
    let doc = body(res)["id"].as_str().expect("id").to_owned();
    for (user, level) in [(carol, "read")].into_iter().chain(share) {
        let res = app.post(
            &format!("/v1/rag/collections/{id}/shares"),
            Some(owner),
            json!({"user_id": user, "permission": level}),
        );
        assert_eq!(res.status().as_u16(), 201, "share {level}");
    }
    Fixture { id, doc }
}

/// Sends a request; its status and body (JSON, or the text as a string,
/// or null when empty).
fn send(app: &TestApp, method: &str, path: &str, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app.request(method, path, auth);
    if !body.is_null() {
        req = req.json(body);
    }
    let res = req.send().expect("send");
    let status = res.status().as_u16();
    let text = res.text().expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// What the owner sees of a collection: its name, description, counts,
/// documents and shares (`"gone"` once it is deleted).
fn snapshot(app: &TestApp, owner: &str, id: &str) -> Value {
    let res = app.get(&format!("/v1/rag/collections/{id}"), Some(owner));
    if res.status().as_u16() == 404 {
        return json!("gone");
    }
    assert_eq!(res.status().as_u16(), 200, "owner reads {id}");
    let c = body(res);
    let docs = body(app.get(&format!("/v1/rag/collections/{id}/documents"), Some(owner)));
    let shares = body(app.get(&format!("/v1/rag/collections/{id}/shares"), Some(owner)));
    json!({"name": c["name"], "description": c["description"],
        "document_count": c["document_count"], "chunk_count": c["chunk_count"],
        "documents": docs["data"], "shares": shares["data"]})
}

/// Runs every endpoint for every case against `owner`'s collections; the
/// number of cells. Failures are gathered and reported together.
fn run_matrix(app: &TestApp, owner: &str, carol: &str, cases: &[Case<'_>]) -> usize {
    let endpoints = endpoints();
    // Every collection first, so the indexer works while they are made:
    // one per case for the cells that change nothing, and a fresh one for
    // every cell that may change something.
    let mut cells = Vec::new();
    for case in cases {
        let shared = Rc::new(fixture(app, owner, carol, case.share));
        for endpoint in &endpoints {
            let fx = if endpoint.mutates {
                Rc::new(fixture(app, owner, carol, case.share))
            } else {
                shared.clone()
            };
            cells.push((case, endpoint, fx));
        }
    }
    for (_, _, fx) in &cells {
        let d = wait_indexed(app, Some(owner), &fx.id, &fx.doc);
        assert_eq!(d["status"], "ready", "{d}");
    }
    let mut failures = Vec::new();
    for (case, endpoint, fx) in &cells {
        let fill = |text: &str, id: &str| {
            text.replace("{id}", id)
                .replace("{doc}", &fx.doc)
                .replace("{carol}", carol)
        };
        let path = fill(endpoint.path, &fx.id);
        let request_body: Value =
            serde_json::from_str(&fill(&endpoint.body.to_string(), &fx.id)).expect("body");
        let before = snapshot(app, owner, &fx.id);
        let (status, answer) = send(app, endpoint.method, &path, case.credential, &request_body);
        let after = snapshot(app, owner, &fx.id);
        let expected = case.holds.expect(endpoint);
        let cell = format!(
            "{}: {} {path} {}",
            case.who,
            endpoint.method,
            if request_body.is_null() {
                String::new()
            } else {
                request_body.to_string()
            }
        );
        if status != expected {
            failures.push(format!("{cell} -> {status} {answer}, expected {expected}"));
        }
        if (200..300).contains(&status) {
            if endpoint.mutates && after == before {
                failures.push(format!("{cell} -> {status} but nothing changed"));
            }
            if !endpoint.mutates && after != before {
                failures.push(format!("{cell} -> {status} and the data changed"));
            }
            if endpoint.path.ends_with("/documents") && endpoint.method == "GET" {
                let names: Vec<&str> = answer["data"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
                    .unwrap_or_default();
                if names != ["shed.txt"] {
                    failures.push(format!("{cell} -> {answer}: not the document"));
                }
            }
            if endpoint.path == "/v1/rag/search"
                && answer["data"][0]["collection"]["id"] != fx.id.as_str()
            {
                failures.push(format!("{cell} -> {answer}: not a hit from it"));
            }
        } else {
            if after != before {
                failures.push(format!(
                    "{cell} -> {status}: the data changed\nbefore {before}\nafter  {after}"
                ));
            }
            if status == 404 {
                // Hidden answers exactly as missing.
                let missing_path = fill(endpoint.path, MISSING);
                let missing_body: Value =
                    serde_json::from_str(&fill(&endpoint.body.to_string(), MISSING)).expect("body");
                let missing = send(
                    app,
                    endpoint.method,
                    &missing_path,
                    case.credential,
                    &missing_body,
                );
                if missing != (status, answer.clone()) {
                    failures.push(format!(
                        "{cell} -> {status} {answer}, but a missing id -> {} {}",
                        missing.0, missing.1
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
    cells.len()
}

/// A multi-user server with the real models, its admin's token, and the
/// users every matrix needs: ann (the owner), bob (another user), carol
/// (holds a share to end), dan (to share with), vic (a Viewer), gus (a
/// guest account). (id, key) each.
struct World {
    app: TestApp,
    admin: String,
    admin_id: String,
    users: std::collections::HashMap<&'static str, (String, String)>,
}

fn world(configure: impl FnOnce(&mut offgrid_config::Settings)) -> World {
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        configure(s);
    });
    let admin = app.setup_admin();
    let admin_id = body(app.get("/v1/auth/me", Some(&admin)))["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let users = [
        ("ann", "user"),
        ("bob", "user"),
        ("carol", "user"),
        ("dan", "user"),
        ("vic", "viewer"),
        ("gus", "guest"),
    ]
    .into_iter()
    .map(|(name, role)| (name, app.create_user(&admin, name, role)))
    .collect();
    World {
        app,
        admin,
        admin_id,
        users,
    }
}

impl World {
    fn id(&self, name: &str) -> &str {
        &self.users[name].0
    }

    fn key(&self, name: &str) -> &str {
        &self.users[name].1
    }
}

#[test]
fn the_collection_matrix_holds_for_every_endpoint_caller_and_share() {
    let w = world(|_| {});
    let (bob, vic) = (w.id("bob"), w.id("vic"));
    let cases = [
        case("the owner", Some(w.key("ann")), None, OWNS),
        case("another user", Some(w.key("bob")), None, Holds::Nothing),
        case(
            "another user with read",
            Some(w.key("bob")),
            Some((bob, "read")),
            at(0),
        ),
        case(
            "another user with write",
            Some(w.key("bob")),
            Some((bob, "write")),
            at(1),
        ),
        case(
            "another user with admin",
            Some(w.key("bob")),
            Some((bob, "admin")),
            at(2),
        ),
        case("a viewer", Some(w.key("vic")), None, Holds::Nothing),
        // A Viewer's share is read, whatever they are given.
        case(
            "a viewer with read",
            Some(w.key("vic")),
            Some((vic, "read")),
            at(0),
        ),
        case(
            "a viewer with write",
            Some(w.key("vic")),
            Some((vic, "write")),
            at(0),
        ),
        case(
            "a viewer with admin",
            Some(w.key("vic")),
            Some((vic, "admin")),
            at(0),
        ),
        // Guests have no workspace: the route gate answers first
        // (anonymous callers are asked to sign in).
        case(
            "a guest account",
            Some(w.key("gus")),
            None,
            Holds::Gate(403),
        ),
        case("an anonymous guest", None, None, Holds::Gate(401)),
        case("an admin", Some(&w.admin), None, OWNS),
    ];
    let cells = run_matrix(&w.app, w.key("ann"), w.id("carol"), &cases);
    assert_eq!(cells, cases.len() * endpoints().len());
}

#[test]
fn with_admin_can_read_chats_off_an_admin_sees_and_deletes_but_reads_only_through_a_share() {
    let w = world(|s| s.admin_can_read_chats = false);
    let admin = |level, contents| Holds::Sees {
        level,
        contents,
        deletes: true,
    };
    let cases = [
        case("the owner", Some(w.key("ann")), None, OWNS),
        case("a private admin", Some(&w.admin), None, admin(0, false)),
        case(
            "a private admin with read",
            Some(&w.admin),
            Some((&w.admin_id, "read")),
            admin(0, true),
        ),
        case(
            "a private admin with admin",
            Some(&w.admin),
            Some((&w.admin_id, "admin")),
            admin(2, true),
        ),
        case(
            "another user with write",
            Some(w.key("bob")),
            Some((w.id("bob"), "write")),
            at(1),
        ),
    ];
    let cells = run_matrix(&w.app, w.key("ann"), w.id("carol"), &cases);
    assert_eq!(cells, cases.len() * endpoints().len());
}

/// Adds a text document and waits until it is ready; its id.
fn add_ready(app: &TestApp, auth: &str, collection: &str, name: &str, text: &str) -> String {
    let res = app.post(
        &format!("/v1/rag/collections/{collection}/documents"),
        Some(auth),
        json!({"name": name, "text": text}),
    );
    assert_eq!(res.status().as_u16(), 202);
    let id = body(res)["id"].as_str().expect("id").to_owned();
    let d = wait_indexed(app, Some(auth), collection, &id);
    assert_eq!(d["status"], "ready", "{d}");
    id
}

fn share(app: &TestApp, owner: &str, collection: &str, user: &str, level: &str) -> Value {
    let res = app.post(
        &format!("/v1/rag/collections/{collection}/shares"),
        Some(owner),
        json!({"user_id": user, "permission": level}),
    );
    assert_eq!(res.status().as_u16(), 201, "share");
    body(res)
}

/// The collections of the hits of a search.
fn hit_collections(hits: &Value) -> Vec<String> {
    hits["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|h| h["collection"]["id"].as_str().map(str::to_owned))
        .collect()
}

const WIFI: &str = "The wifi password for the guest network is Marmalade-42. \
                    The router is in the hallway cupboard.";
const WIFI_QUESTION: &str = "What is the password of the guest wifi?";
const BINS: &str = "Recycling goes out on Tuesday night; the green bin is collected \
                    every second Friday.";

#[test]
fn a_revoked_share_stops_retrieval_on_the_next_request() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (bob_id, bob) = app.create_user(&admin, "bob", "user");
    let anns = new_collection(&app, Some(&ann), "Ann's house");
    let wifi = add_ready(&app, &ann, &anns, "wifi.txt", WIFI);
    let bobs = new_collection(&app, Some(&bob), "Bob's chores");
    add_ready(&app, &bob, &bobs, "bins.txt", BINS);
    share(&app, &ann, &anns, &bob_id, "read");

    let search = |body: Value| app.post("/v1/rag/search", Some(&bob), body);
    let chat = |extra: Value| {
        let mut req = json!({"model": CHAT, "temperature": 0, "max_tokens": 8,
            "messages": [{"role": "user", "content": WIFI_QUESTION}]});
        for (k, v) in extra.as_object().expect("object") {
            req[k] = v.clone();
        }
        app.post("/v1/chat/completions", Some(&bob), req)
    };

    // Shared: bob's searches over everything he may read find ann's note,
    // and his chat cites it.
    let hits = body(search(json!({"query": WIFI_QUESTION})));
    assert_eq!(hits["data"][0]["collection"]["id"], anns.as_str(), "{hits}");
    assert_eq!(hits["data"][0]["document"]["id"], wifi.as_str(), "{hits}");
    let answer = chat(json!({"use_knowledge_base": true}));
    assert_eq!(answer.status().as_u16(), 200);
    let answer = body(answer);
    assert_eq!(
        answer["citations"][0]["collection"]["id"],
        anns.as_str(),
        "{answer}"
    );
    assert_eq!(
        answer["citations"][0]["document"]["name"], "wifi.txt",
        "{answer}"
    );

    let revoked = app.delete(
        &format!("/v1/rag/collections/{anns}/shares/{bob_id}"),
        Some(&ann),
    );
    assert_eq!(revoked.status().as_u16(), 204);

    // The very next requests: nothing of ann's.
    let hits = body(search(json!({"query": WIFI_QUESTION})));
    let found = hit_collections(&hits);
    assert!(!found.is_empty(), "bob's own note is still found: {hits}");
    assert!(found.iter().all(|c| c == &bobs), "{hits}");
    assert_error(
        search(json!({"query": WIFI_QUESTION, "collection_ids": [anns]})),
        404,
        "not_found",
    );
    assert_error(
        chat(json!({"rag": {"collection_ids": [anns]}})),
        404,
        "not_found",
    );
    let answer = chat(json!({"use_knowledge_base": true}));
    assert_eq!(answer.status().as_u16(), 200);
    let answer = body(answer);
    let cited: Vec<&Value> = answer["citations"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    assert!(
        cited.iter().all(|c| c["collection"]["id"] != anns.as_str()),
        "{answer}"
    );
    assert_eq!(
        app.get(&format!("/v1/rag/collections/{anns}"), Some(&bob))
            .status()
            .as_u16(),
        404
    );
    // Ann's collection itself is untouched.
    let hers = body(app.post(
        "/v1/rag/search",
        Some(&ann),
        json!({"query": WIFI_QUESTION, "collection_ids": [anns]}),
    ));
    assert_eq!(hers["data"][0]["document"]["id"], wifi.as_str(), "{hers}");
}

/// The ids of the collections `auth` lists with `query`.
fn listed(app: &TestApp, auth: &str, query: &str) -> Vec<String> {
    let res = app.get(&format!("/v1/rag/collections{query}"), Some(auth));
    assert_eq!(res.status().as_u16(), 200, "list{query}");
    body(res)["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect()
}

fn shares_of(app: &TestApp, auth: &str, collection: &str) -> Value {
    let res = app.get(
        &format!("/v1/rag/collections/{collection}/shares"),
        Some(auth),
    );
    assert_eq!(res.status().as_u16(), 200, "shares");
    body(res)["data"].clone()
}

#[test]
fn deleting_a_user_moves_or_removes_their_collections_and_orphans_nothing() {
    use offgrid_domain::workspace::ResourceKind;

    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (ann_id, ann) = app.create_user(&admin, "ann", "user");
    let (hal_id, hal) = app.create_user(&admin, "hal", "user");
    let (carol_id, carol) = app.create_user(&admin, "carol", "user");
    let anns = new_collection(&app, Some(&ann), "Ann's house");
    let wifi = add_ready(&app, &ann, &anns, "wifi.txt", WIFI);
    let carols = new_collection(&app, Some(&carol), "Carol's chores");
    add_ready(&app, &carol, &carols, "bins.txt", BINS);
    // Ann shares hers with carol and with her heir; carol shares hers
    // with ann.
    share(&app, &ann, &anns, &carol_id, "read");
    share(&app, &ann, &anns, &hal_id, "write");
    share(&app, &carol, &carols, &ann_id, "write");

    let gone = app.delete(
        &format!("/v1/users/{ann_id}?transfer_to={hal_id}"),
        Some(&admin),
    );
    assert_eq!(gone.status().as_u16(), 200);

    // Hal owns ann's collection, documents intact, without the shares ann
    // gave (his own included).
    assert_eq!(listed(&app, &hal, ""), [anns.as_str()]);
    let c = body(app.get(&format!("/v1/rag/collections/{anns}"), Some(&hal)));
    assert_eq!(c["permission"], "owner", "{c}");
    assert_eq!(c["owner"], json!({"id": hal_id, "username": "hal"}));
    assert_eq!(c["document_count"], 1, "{c}");
    let docs = body(app.get(&format!("/v1/rag/collections/{anns}/documents"), Some(&hal)));
    assert_eq!(docs["data"][0]["id"], wifi.as_str(), "{docs}");
    assert_eq!(docs["data"][0]["status"], "ready", "{docs}");
    let hits = body(app.post(
        "/v1/rag/search",
        Some(&hal),
        json!({"query": WIFI_QUESTION}),
    ));
    assert_eq!(hits["data"][0]["document"]["id"], wifi.as_str(), "{hits}");
    assert_eq!(shares_of(&app, &hal, &anns), json!([]));
    assert!(listed(&app, &hal, "?shared=true").is_empty());
    assert!(listed(&app, &carol, "?shared=true").is_empty());
    assert_eq!(
        app.get(&format!("/v1/rag/collections/{anns}"), Some(&carol))
            .status()
            .as_u16(),
        404
    );
    // The share ann held on carol's collection went with her.
    assert_eq!(shares_of(&app, &carol, &carols), json!([]));

    // Without transfer_to, the collections go with the user: the one hal
    // inherited and his own, with the shares he gave and held.
    let hals = new_collection(&app, Some(&hal), "Hal's garage");
    let tools = add_ready(
        &app,
        &hal,
        &hals,
        "tools.txt",
        "The torque wrench is in the red drawer.",
    );
    share(&app, &hal, &anns, &carol_id, "read");
    share(&app, &hal, &hals, &carol_id, "write");
    share(&app, &carol, &carols, &hal_id, "read");
    assert_eq!(listed(&app, &carol, "?shared=true").len(), 2);
    let gone = app.delete(&format!("/v1/users/{hal_id}"), Some(&admin));
    assert_eq!(gone.status().as_u16(), 200);

    assert_eq!(listed(&app, &admin, "?all=true"), [carols.as_str()]);
    for (collection, doc) in [(&anns, &wifi), (&hals, &tools)] {
        for path in [
            format!("/v1/rag/collections/{collection}"),
            format!("/v1/rag/collections/{collection}/documents/{doc}"),
        ] {
            for who in [&admin, &carol] {
                assert_eq!(app.get(&path, Some(who)).status().as_u16(), 404, "{path}");
            }
        }
    }
    assert!(listed(&app, &carol, "?shared=true").is_empty());
    assert_eq!(shares_of(&app, &carol, &carols), json!([]));
    let hits = body(app.post(
        "/v1/rag/search",
        Some(&carol),
        json!({"query": "Where is the torque wrench?"}),
    ));
    assert_eq!(hit_collections(&hits), [carols.as_str()], "{hits}");
    // No share row outlives its collection.
    let db = offgrid_storage::Database::open(&app.home.path().join("offgrid.db")).expect("db");
    let repos = db.repositories();
    for collection in [&anns, &hals] {
        let left = repos
            .grants
            .grants(ResourceKind::Collection, collection)
            .expect("grants");
        assert!(left.is_empty(), "{collection}: {left:?}");
    }
    assert!(
        repos
            .grants
            .grants(ResourceKind::Collection, &carols)
            .expect("grants")
            .is_empty()
    );
}

#[test]
fn a_viewer_cannot_create_a_guest_cannot_list_and_a_viewers_share_is_read() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (vic_id, vic) = app.create_user(&admin, "vic", "viewer");
    let (_, gus) = app.create_user(&admin, "gus", "guest");

    let refused = app.post("/v1/rag/collections", Some(&vic), json!({"name": "Mine"}));
    assert_error(refused, 403, "insufficient_permissions");
    assert!(listed(&app, &vic, "").is_empty());
    assert!(listed(&app, &admin, "?all=true").is_empty());

    for (who, credential, status) in [
        ("anonymous", None, 401),
        ("a guest account", Some(gus.as_str()), 403),
    ] {
        let list = app.get("/v1/rag/collections", credential);
        assert!(!list.status().is_success(), "{who}");
        assert_eq!(list.status().as_u16(), status, "{who}");
        let create = app.post(
            "/v1/rag/collections",
            credential,
            json!({"name": "Guest's"}),
        );
        assert!(!create.status().is_success(), "{who}");
        assert_eq!(create.status().as_u16(), status, "{who}");
        let search = app.post("/v1/rag/search", credential, json!({"query": "anything"}));
        assert_eq!(search.status().as_u16(), status, "{who}");
    }
    assert!(listed(&app, &admin, "?all=true").is_empty());

    // Shared at write, a Viewer holds read.
    let c = new_collection(&app, Some(&ann), "Ann's house");
    add_ready(&app, &ann, &c, "wifi.txt", WIFI);
    let given = share(&app, &ann, &c, &vic_id, "write");
    assert_eq!(given["permission"], "read", "{given}");
    assert_eq!(given["user"]["id"], vic_id.as_str());
    let raised = app.post(
        &format!("/v1/rag/collections/{c}/shares"),
        Some(&ann),
        json!({"username": "vic", "permission": "admin"}),
    );
    assert!(raised.status().is_success());
    assert_eq!(body(raised)["permission"], "read");
    let stored = shares_of(&app, &ann, &c);
    assert_eq!(stored.as_array().map(Vec::len), Some(1), "{stored}");
    assert_eq!(stored[0]["permission"], "read", "{stored}");
    let seen = body(app.get(&format!("/v1/rag/collections/{c}"), Some(&vic)));
    assert_eq!(seen["permission"], "read", "{seen}");
    assert_eq!(listed(&app, &vic, "?shared=true"), [c.as_str()]);
    let write = app.post(
        &format!("/v1/rag/collections/{c}/documents"),
        Some(&vic),
        json!({"name": "vic.txt", "text": "Written by a viewer."}),
    );
    assert_error(write, 403, "insufficient_permissions");
    let hits = body(app.post(
        "/v1/rag/search",
        Some(&vic),
        json!({"query": WIFI_QUESTION, "collection_ids": [c]}),
    ));
    assert_eq!(hits["data"][0]["document"]["name"], "wifi.txt", "{hits}");
    let docs = body(app.get(&format!("/v1/rag/collections/{c}/documents"), Some(&ann)));
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(1), "{docs}");
}
