//! Every JSON request body, fuzzed over real HTTP: arbitrary JSON (deep
//! nesting, huge numbers, wrong types, long and hostile strings), bodies
//! shaped like the real ones with each field right or wrong, and raw bytes
//! that are not JSON at all, posted to the real server. The property: never
//! a 5xx, and every 4xx is the OpenAI error shape
//! `{"error": {"message", "type", "code"}}`.
//!
//! A few cases by default (CI); `cargo xtask fuzz` sets `PROPTEST_CASES` to
//! run many. Failing seeds are saved to `fuzz.proptest-regressions` beside
//! this file and replayed first.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Number, Value, json};

use crate::helpers::{TestApp, body, spawn_multi_user, spawn_with_models};

/// `PROPTEST_CASES` when set (`cargo xtask fuzz`), else `default_cases`.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";

// ------------------------------------------------------------ JSON values

/// Strings that break things: empty, long, control characters, template
/// and SQL syntax, path tricks, numbers and keywords as text.
fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        2 => proptest::sample::select(vec![
            "", " ", "0", "-1", "1e999", "NaN", "null", "true", "admin", "root", "system",
            "guest", "{{ 7*7 }}", "{% raw %}", "<|im_start|>", "'; DROP TABLE users; --",
            "../../etc/passwd", "/nonexistent/model.gguf", "%00", "\0", "\u{202e}",
            "\u{feff}", "🦀", "5m", "-5m", "1h30m", "500ms", "2030-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "og_", "v4.local.",
        ])
        .prop_map(str::to_owned),
        1 => ("[a-zA-Z0-9 _.@-]{1,8}", 100usize..5_000).prop_map(|(s, n)| s.repeat(n)),
    ]
    .boxed()
}

/// Numbers at the edges: zero, signs, the ends of i64/u64/f64, fractions.
fn hostile_number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(vec![
            json!(0),
            json!(-0.0),
            json!(1),
            json!(-1),
            json!(0.5),
            json!(1e19),
            json!(-1e19),
            json!(1e308),
            json!(-1e308),
            json!(5e-324),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(u32::MAX),
            json!(9_007_199_254_740_993u64),
        ]),
    ]
    .boxed()
}

/// Any JSON value, nested up to a few levels.
fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((hostile_string(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

// ------------------------------------------------------------ body shapes

/// What a field of a real body holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Bool,
    Int,
    Float,
    Role,
    Rfc3339,
    Model,
    Messages,
    Stop,
    Prompt,
    Input,
    KeepAlive,
    StreamOptions,
    Logprobs,
    EncodingFormat,
    Path,
}

/// A plausible value of `kind` (often valid), so fuzzing reaches past the
/// type check into each handler's own validation.
fn plausible(kind: Kind) -> BoxedStrategy<Value> {
    let text = || hostile_string().prop_map(Value::String);
    match kind {
        Kind::Text => {
            prop_oneof!["[a-z][a-z0-9_.-]{2,20}".prop_map(Value::String), text(),].boxed()
        }
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Int => prop_oneof![(-5i64..5000).prop_map(Value::from), hostile_number()].boxed(),
        Kind::Float => prop_oneof![(-2.0f64..3.0).prop_map(Value::from), hostile_number()].boxed(),
        Kind::Role => {
            proptest::sample::select(vec!["admin", "user", "viewer", "guest", "Admin", "root"])
                .prop_map(Value::from)
                .boxed()
        }
        Kind::Rfc3339 => prop_oneof![
            (1970i32..3000, 1u8..13, 1u8..29)
                .prop_map(|(y, m, d)| json!(format!("{y:04}-{m:02}-{d:02}T00:00:00Z"))),
            text(),
        ]
        .boxed(),
        Kind::Model => prop_oneof![
            proptest::sample::select(vec![CHAT, EMBED, "nope", ""]).prop_map(Value::from),
            text(),
        ]
        .boxed(),
        Kind::Messages => proptest::collection::vec(
            (
                proptest::sample::select(vec!["system", "user", "assistant", "tool", "x"]),
                prop_oneof![
                    text(),
                    proptest::collection::vec(
                        ("text|image_url|x", hostile_string())
                            .prop_map(|(t, s)| json!({"type": t, "text": s})),
                        0..3
                    )
                    .prop_map(Value::Array),
                    arbitrary_json(),
                ],
            )
                .prop_map(|(role, content)| json!({"role": role, "content": content})),
            0..4,
        )
        .prop_map(Value::Array)
        .boxed(),
        Kind::Stop | Kind::Prompt | Kind::Input => prop_oneof![
            text(),
            proptest::collection::vec(hostile_string(), 0..4)
                .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
        ]
        .boxed(),
        Kind::KeepAlive => prop_oneof![
            proptest::sample::select(vec!["0", "-1", "5m", "1h", "10s", "-5m", "1.5s", "x"])
                .prop_map(Value::from),
            (0i64..600).prop_map(Value::from),
        ]
        .boxed(),
        Kind::StreamOptions => prop_oneof![
            any::<bool>().prop_map(|b| json!({"include_usage": b})),
            arbitrary_json(),
        ]
        .boxed(),
        Kind::Logprobs => prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (-1i64..8).prop_map(Value::from),
        ]
        .boxed(),
        Kind::EncodingFormat => proptest::sample::select(vec!["float", "base64", "hex"])
            .prop_map(Value::from)
            .boxed(),
        // Never a real file: an import must not start hashing a device.
        Kind::Path => "(/nonexistent/[a-z]{1,8}(\\.gguf)?|[a-z]{1,8}|/|)"
            .prop_map(Value::String)
            .boxed(),
    }
}

const COMMON: &[(&str, Kind)] = &[
    ("model", Kind::Model),
    ("stream", Kind::Bool),
    ("stream_options", Kind::StreamOptions),
    ("max_tokens", Kind::Int),
    ("max_completion_tokens", Kind::Int),
    ("temperature", Kind::Float),
    ("top_p", Kind::Float),
    ("top_k", Kind::Int),
    ("repetition_penalty", Kind::Float),
    ("seed", Kind::Int),
    ("stop", Kind::Stop),
    ("n", Kind::Int),
    ("logprobs", Kind::Logprobs),
    ("top_logprobs", Kind::Int),
    ("echo", Kind::Bool),
    ("keep_alive", Kind::KeepAlive),
];

/// A body shaped like the real one: each known field absent, plausible or
/// anything at all, sometimes with an unknown field.
fn shaped(fields: Vec<(&'static str, Kind)>) -> BoxedStrategy<Value> {
    let per_field: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(name, kind)| {
            prop_oneof![
                2 => Just(None),
                5 => plausible(kind).prop_map(move |v| Some((name.to_owned(), v))),
                1 => arbitrary_json().prop_map(move |v| Some((name.to_owned(), v))),
            ]
            .boxed()
        })
        .collect();
    (
        per_field,
        proptest::option::weighted(0.1, (hostile_string(), arbitrary_json())),
    )
        .prop_map(|(present, extra)| {
            let mut obj: Map<String, Value> = present.into_iter().flatten().collect();
            if let Some((k, v)) = extra {
                obj.insert(k, v);
            }
            Value::Object(obj)
        })
        .boxed()
}

/// Bytes that are not (quite) JSON: deep nesting, huge numbers, truncated
/// text, invalid UTF-8, a byte-order mark.
fn raw_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        (1usize..100_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (1usize..50_000).prop_map(|n| "{\"a\":".repeat(n).into_bytes()),
        (1usize..2_000).prop_map(|n| format!("{{\"model\": 1{}}}", "0".repeat(n)).into_bytes()),
        proptest::sample::select(vec![
            "",
            "null",
            "[]",
            "{}",
            "1e999999",
            "-1e999999",
            "\"\\ud800\"",
            "{\"a\":1,\"a\":2}",
            "\u{feff}{}",
            "{\"model\":",
            "{'model': 'x'}",
            "{\"model\":\"x\"}garbage",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

/// A request body: JSON text of a value, or raw bytes.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

fn body_for(fields: Vec<(&'static str, Kind)>) -> BoxedStrategy<(Body, &'static str)> {
    let content_type = prop_oneof![
        12 => Just("application/json"),
        1 => Just("text/plain"),
        1 => Just(""),
        1 => Just("application/json; charset=utf-16"),
    ];
    let body = prop_oneof![
        6 => shaped(fields).prop_map(Body::Json),
        2 => arbitrary_json().prop_map(Body::Json),
        1 => raw_body().prop_map(Body::Raw),
    ];
    (body, content_type).boxed()
}

// ------------------------------------------------------------- the server

/// One server for all cases: multi-user, an admin, a user whose account
/// the admin fuzzes, and one who changes their own password.
struct Fixture {
    app: TestApp,
    admin: String,
    member: String,
    victim_id: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let app = spawn_multi_user();
        let admin = app.setup_admin();
        let (victim_id, _) = app.create_user(&admin, "victim", "user");
        app.create_user(&admin, "member", "user");
        let member = app.token("member", &crate::helpers::password_of("member"));
        Fixture {
            app,
            admin,
            member,
            victim_id,
        }
    })
}

/// Posts and checks the answer: below 500, and a 4xx is the error shape.
fn post_and_check(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: Option<&str>,
    (body, content_type): &(Body, &str),
) -> Result<(), TestCaseError> {
    let bytes = match body {
        Body::Json(v) => serde_json::to_vec(v).expect("serialize"),
        Body::Raw(b) => b.clone(),
    };
    let mut rb = app.request(method, path, auth).body(bytes);
    if !content_type.is_empty() {
        rb = rb.header("content-type", *content_type);
    }
    let res = rb
        .send()
        .map_err(|e| TestCaseError::fail(format!("{method} {path}: no answer: {e}")))?;
    check_answer(method, path, res)
}

fn check_answer(
    method: &str,
    path: &str,
    res: reqwest::blocking::Response,
) -> Result<(), TestCaseError> {
    let status = res.status().as_u16();
    let text = res
        .text()
        .map_err(|e| TestCaseError::fail(format!("{method} {path}: body: {e}")))?;
    prop_assert!(
        status < 500,
        "{} {} answered {}: {}",
        method,
        path,
        status,
        text
    );
    if status >= 400 {
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            TestCaseError::fail(format!("{method} {path} {status}: not JSON ({e}): {text}"))
        })?;
        let e = &v["error"];
        prop_assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty())
                && e["type"].is_string()
                && e["code"].is_string(),
            "{} {} {}: not the error shape: {}",
            method,
            path,
            status,
            text
        );
    }
    Ok(())
}

/// Which credential a route is fuzzed with.
#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Admin,
    Member,
}

fn credential(f: &Fixture, who: Who) -> Option<&str> {
    match who {
        Who::Nobody => None,
        Who::Admin => Some(&f.admin),
        Who::Member => Some(&f.member),
    }
}

/// A route with a JSON body: method, path, who calls it, its fields.
type Target = (&'static str, String, Who, Vec<(&'static str, Kind)>);

/// Every route with a JSON body.
fn targets() -> Vec<Target> {
    let f = fixture();
    let victim = &f.victim_id;
    let with_common = |own: &[(&'static str, Kind)]| {
        let mut v = own.to_vec();
        v.extend_from_slice(COMMON);
        v
    };
    vec![
        (
            "POST",
            "/v1/auth/setup".to_owned(),
            Who::Nobody,
            vec![
                ("username", Kind::Text),
                ("password", Kind::Text),
                ("email", Kind::Text),
                ("display_name", Kind::Text),
            ],
        ),
        (
            "POST",
            "/v1/auth/login".to_owned(),
            Who::Nobody,
            vec![
                ("username", Kind::Text),
                ("email", Kind::Text),
                ("password", Kind::Text),
                ("remember_me", Kind::Bool),
            ],
        ),
        (
            "POST",
            "/v1/auth/change-password".to_owned(),
            Who::Member,
            vec![
                ("current_password", Kind::Text),
                ("new_password", Kind::Text),
            ],
        ),
        (
            "POST",
            "/v1/users/me/api-keys".to_owned(),
            Who::Member,
            vec![
                ("name", Kind::Text),
                ("expires_at", Kind::Rfc3339),
                ("expires_in_days", Kind::Int),
            ],
        ),
        (
            "POST",
            "/v1/users".to_owned(),
            Who::Admin,
            vec![
                ("username", Kind::Text),
                ("password", Kind::Text),
                ("role", Kind::Role),
                ("email", Kind::Text),
                ("display_name", Kind::Text),
                ("create_api_key", Kind::Bool),
            ],
        ),
        (
            "PATCH",
            format!("/v1/users/{victim}"),
            Who::Admin,
            vec![
                ("role", Kind::Role),
                ("display_name", Kind::Text),
                ("email", Kind::Text),
                ("disabled", Kind::Bool),
            ],
        ),
        (
            "POST",
            format!("/v1/users/{victim}/reset-password"),
            Who::Admin,
            vec![("password", Kind::Text), ("new_password", Kind::Text)],
        ),
        (
            "POST",
            format!("/v1/users/{victim}/api-keys"),
            Who::Admin,
            vec![
                ("name", Kind::Text),
                ("expires_at", Kind::Rfc3339),
                ("expires_in_days", Kind::Int),
            ],
        ),
        (
            "POST",
            "/v1/models".to_owned(),
            Who::Admin,
            vec![("path", Kind::Path), ("name", Kind::Text)],
        ),
        (
            "POST",
            "/v1/chat/completions".to_owned(),
            Who::Member,
            with_common(&[("messages", Kind::Messages)]),
        ),
        (
            "POST",
            "/v1/completions".to_owned(),
            Who::Nobody,
            with_common(&[("prompt", Kind::Prompt)]),
        ),
        (
            "POST",
            "/v1/embeddings".to_owned(),
            Who::Member,
            vec![
                ("model", Kind::Model),
                ("input", Kind::Input),
                ("encoding_format", Kind::EncodingFormat),
                ("keep_alive", Kind::KeepAlive),
            ],
        ),
    ]
}

/// (target index, body) for any target.
fn any_request() -> impl Strategy<Value = (usize, (Body, &'static str))> {
    let strategies: Vec<_> = targets()
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, _, fields))| body_for(fields).prop_map(move |b| (i, b)))
        .collect();
    proptest::strategy::Union::new(strategies)
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn every_body_gets_a_clean_answer(request in any_request()) {
        let f = fixture();
        let (i, body) = request;
        let (method, path, who, _) = &targets()[i];
        post_and_check(&f.app, method, path, credential(f, *who), &body)?;
    }

    #[test]
    fn every_query_string_gets_a_clean_answer(
        path in proptest::sample::select(vec!["/v1/users", "/v1/audit", "/v1/usage", "/v1/models"]),
        pairs in proptest::collection::vec((
            prop_oneof![
                proptest::sample::select(vec![
                    "limit", "offset", "search", "q", "role", "days", "all", "action", "user_id",
                    "since", "until",
                ]).prop_map(str::to_owned),
                hostile_string().prop_map(|s| s.chars().take(200).collect::<String>()),
            ],
            prop_oneof![
                proptest::sample::select(vec![
                    "0", "1", "-1", "200", "201", "true", "false", "admin", "9223372036854775808",
                    "1e3", "", "%00", "%ZZ",
                ]).prop_map(str::to_owned),
                // Longer request lines: see `an_overlong_query_gets_the_error_shape`.
                hostile_string().prop_map(|s| s.chars().take(200).collect::<String>()),
            ],
        ), 0..5),
    ) {
        let f = fixture();
        let mut url = reqwest::Url::parse(&f.app.url(path)).expect("url");
        for (k, v) in &pairs {
            url.query_pairs_mut().append_pair(k, v);
        }
        let res = f.app.client.get(url).bearer_auth(&f.admin).send()
            .map_err(|e| TestCaseError::fail(format!("GET {path}: {e}")))?;
        check_answer("GET", path, res)?;
    }
}

// ---------------------------------------------------- with the real models

fn model_fixture() -> &'static (TestApp, String) {
    static FIXTURE: OnceLock<(TestApp, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let app = spawn_with_models(|s| s.multi_user_mode = true);
        let admin = app.setup_admin();
        (app, admin)
    })
}

/// A valid request for the real models with hostile content and at most a
/// few tokens to generate, so each case reaches tokenizing, the template,
/// the context check and the engine.
fn inference_request() -> impl Strategy<Value = (&'static str, Value)> {
    // Hostile but short: a long prompt costs seconds of prefill per case.
    let short = || {
        prop_oneof![
            hostile_string().prop_map(|s| s.chars().take(120).collect::<String>()),
            "[a-zA-Z ]{0,40}",
        ]
    };
    let sampling = (
        proptest::option::of(0i64..4),
        proptest::option::of(-1.0f64..3.0),
        proptest::option::of(-0.5f64..1.5),
        proptest::option::of(-3i64..100),
        proptest::option::of(-1.0f64..3.0),
        proptest::option::of(any::<i64>()),
        proptest::option::of(proptest::collection::vec(short(), 0..3)),
        any::<bool>(),
        proptest::option::of(0i64..25),
    );
    let chat = (
        proptest::collection::vec(
            (
                proptest::sample::select(vec!["system", "user", "assistant"]),
                short(),
            ),
            1..4,
        ),
        sampling.clone(),
    )
        .prop_map(|(messages, s)| {
            let mut v = json!({
                "model": CHAT,
                "messages": messages.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
            });
            apply_sampling(&mut v, s, true);
            ("/v1/chat/completions", v)
        });
    let text = (short(), any::<bool>(), sampling).prop_map(|(prompt, echo, s)| {
        let mut v = json!({"model": CHAT, "prompt": prompt, "echo": echo});
        apply_sampling(&mut v, s, false);
        ("/v1/completions", v)
    });
    let embed = (proptest::collection::vec(short(), 1..4), any::<bool>()).prop_map(|(input, b64)| {
        (
            "/v1/embeddings",
            json!({"model": EMBED, "input": input, "encoding_format": if b64 { "base64" } else { "float" }}),
        )
    });
    prop_oneof![3 => chat, 2 => text, 1 => embed]
}

type Sampling = (
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    Option<Vec<String>>,
    bool,
    Option<i64>,
);

fn apply_sampling(v: &mut Value, s: Sampling, chat: bool) {
    let (max_tokens, temperature, top_p, top_k, repetition, seed, stop, stream, logprobs) = s;
    // Never unbounded: the default would generate 512 tokens per case.
    v["max_tokens"] = json!(max_tokens.unwrap_or(2));
    let set = |v: &mut Value, k: &str, x: Option<Value>| {
        if let Some(x) = x {
            v[k] = x;
        }
    };
    set(v, "temperature", temperature.map(Value::from));
    set(v, "top_p", top_p.map(Value::from));
    set(v, "top_k", top_k.map(Value::from));
    set(v, "repetition_penalty", repetition.map(Value::from));
    set(v, "seed", seed.map(Value::from));
    set(v, "stop", stop.map(|s| json!(s)));
    v["stream"] = json!(stream);
    if let Some(n) = logprobs {
        if chat {
            v["logprobs"] = json!(true);
            v["top_logprobs"] = json!(n);
        } else {
            v["logprobs"] = json!(n);
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn inference_with_hostile_content_gets_a_clean_answer(request in inference_request()) {
        let (app, admin) = model_fixture();
        let (path, value) = request;
        post_and_check(app, "POST", path, Some(admin), &(Body::Json(value), "application/json"))?;
    }
}

/// Issue 7, defect 2: a huge `keep_alive` overflowed an `Instant` in the
/// reaper, which died holding its lock; every later model listing panicked.
#[test]
fn huge_keep_alive_values_leave_the_server_answering() {
    let app = spawn_with_models(|_| {});
    for keep_alive in [
        json!(1e19),
        json!(u64::MAX),
        json!(1e300),
        json!("99999999999999h"),
    ] {
        let res = app.post(
            "/v1/embeddings",
            None,
            json!({"model": EMBED, "input": "hello", "keep_alive": keep_alive}),
        );
        let status = res.status().as_u16();
        assert!(status < 500, "keep_alive {keep_alive}: {status}");
        // The reaper runs at least every two seconds.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let list = app.get("/v1/models", None);
        assert_eq!(
            list.status(),
            200,
            "GET /v1/models after keep_alive {keep_alive}"
        );
        body(list);
    }
}

/// Sends `request` on a fresh connection and reads the whole answer.
fn raw_exchange(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    conn.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request line of about 90 kB (reqwest refuses to build such a URL, so
/// it goes over a raw socket): longer than a URI may be (64 kB), so actix's
/// HTTP parser refuses it before any handler runs. The promise kept: a
/// clean 4xx and a server that goes on serving.
#[test]
fn an_overlong_request_line_is_refused_and_the_server_goes_on() {
    let f = fixture();
    let long = "a".repeat(30_000);
    let request = format!(
        "GET /v1/users?{long}={long}&q={long} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        f.admin
    );
    let answer = raw_exchange(&f.app.base, request.as_bytes());
    let status: u16 = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    assert!((400..500).contains(&status), "{answer}");
    assert_eq!(f.app.get("/v1/users/me", Some(&f.admin)).status(), 200);
}

/// The same request should get the OpenAI error shape like every other
/// refusal. It cannot yet: actix-http answers URI and header-size parse
/// errors itself with an empty body, before any service or middleware can
/// shape it (docs/SECURITY.md, known limitations).
#[test]
#[ignore = "actix-http answers request-line parse errors itself, with an empty body; see docs/SECURITY.md"]
fn an_overlong_request_line_gets_the_error_shape() {
    let f = fixture();
    let long = "a".repeat(30_000);
    let request = format!(
        "GET /v1/users?{long}={long}&q={long} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_exchange(&f.app.base, request.as_bytes());
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    assert!(v["error"]["code"].is_string(), "{answer}");
}
