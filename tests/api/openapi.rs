//! The OpenAPI document at `/openapi.json` matches the route table: every
//! route is documented, nothing documented is missing from the table, and
//! each operation's security says what the gate does.

use std::collections::BTreeSet;

use offgrid_http::{Access, route_table};
use serde_json::Value;

use crate::helpers::{body, spawn_app, spawn_multi_user};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (METHOD, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

fn fetch(app: &offgrid_tests::TestApp) -> Value {
    let res = app.get("/openapi.json", None);
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/json"))
    );
    body(res)
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let app = spawn_app(|_| {});
    let doc = fetch(&app);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let table: BTreeSet<(String, String)> = route_table()
        .into_iter()
        // actix's `{id}` is OpenAPI's `{id}`.
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let documented = documented(&doc);
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes not documented: {undocumented:?}"
    );
    assert!(phantom.is_empty(), "documented but not routes: {phantom:?}");
}

#[test]
fn path_parameters_are_declared_and_errors_use_the_error_body() {
    let app = spawn_app(|_| {});
    let doc = fetch(&app);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({"type": "http", "scheme": "bearer"})
    );
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let names: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(
                declared,
                names.iter().copied().collect(),
                "{method} {path}: path parameters"
            );
            // Ollama's routes answer errors Ollama's way.
            let shape = if path.starts_with("/api/") {
                "#/components/responses/OllamaError"
            } else {
                "#/components/responses/Error"
            };
            assert_eq!(
                op["responses"]["400"]["$ref"], shape,
                "{method} {path}: error responses"
            );
        }
    }
}

#[test]
fn security_follows_the_access_rules() {
    let app = spawn_multi_user();
    let doc = fetch(&app);
    let bearer = serde_json::json!([{"bearer": []}]);
    let optional = serde_json::json!([{}, {"bearer": []}]);
    for route in route_table() {
        let op = &doc["paths"][route.path][route.method.to_lowercase()];
        let expected = match route.access {
            Access::Public => serde_json::json!([]),
            Access::AnyPrincipal => optional.clone(),
            Access::Requires(p) if offgrid_policy::role_has(offgrid_domain::Role::Guest, p) => {
                optional.clone()
            }
            Access::Requires(_) => bearer.clone(),
        };
        assert_eq!(
            op["security"], expected,
            "{} {}: security",
            route.method, route.path
        );
    }

    // Without guests, only public routes go without a bearer credential.
    let closed = spawn_app(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    let doc = fetch(&closed);
    for route in route_table()
        .into_iter()
        .filter(|r| r.access != Access::Public)
    {
        assert_eq!(
            doc["paths"][route.path][route.method.to_lowercase()]["security"],
            bearer,
            "{} {}",
            route.method,
            route.path
        );
    }
}

/// Found by schemathesis: serde fills a struct from a JSON array element by
/// element, so `[null, null]` was accepted as a `PATCH /v1/users/{id}` body
/// (and an array as a login). Every JSON body must be an object.
#[test]
fn array_bodies_are_refused_everywhere() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let me = body(app.get("/v1/users/me", Some(&admin)));
    let id = me["user"]["id"].as_str().expect("id").to_owned();
    let cases = [
        ("PATCH", format!("/v1/users/{id}")),
        ("POST", "/v1/users".to_owned()),
        ("POST", format!("/v1/users/{id}/reset-password")),
        ("POST", format!("/v1/users/{id}/api-keys")),
        ("POST", "/v1/users/me/api-keys".to_owned()),
        ("POST", "/v1/auth/login".to_owned()),
        ("POST", "/v1/auth/setup".to_owned()),
        ("POST", "/v1/auth/change-password".to_owned()),
        ("POST", "/v1/models".to_owned()),
        ("POST", "/v1/chat/completions".to_owned()),
        ("POST", "/v1/completions".to_owned()),
        ("POST", "/v1/embeddings".to_owned()),
    ];
    for (method, path) in &cases {
        for bad in [
            serde_json::json!([null, null]),
            serde_json::json!(["admin", "password"]),
            serde_json::json!("text"),
            serde_json::json!(1),
        ] {
            let res = app
                .request(method, path, Some(&admin))
                .json(&bad)
                .send()
                .expect("send");
            assert_eq!(res.status(), 400, "{method} {path} with {bad}");
            let b = body(res);
            assert!(b["error"]["code"].is_string(), "{method} {path}: {b}");
        }
    }
    // Nothing changed.
    let after = body(app.get("/v1/users/me", Some(&admin)));
    assert_eq!(after["user"]["updated_at"], me["user"]["updated_at"]);
}

#[test]
fn model_fields_list_the_installed_models() {
    let app = crate::helpers::spawn_with_models(|_| {});
    let doc = fetch(&app);
    let schemas = &doc["components"]["schemas"];
    for request in ["ChatCompletionRequest", "CompletionRequest"] {
        let chat = &schemas[request]["properties"]["model"]["enum"];
        assert!(
            chat.as_array()
                .is_some_and(|ids| ids.iter().any(|id| id == "smollm2-135m-instruct")),
            "{request}: {chat}"
        );
    }
    let embed = &schemas["EmbeddingRequest"]["properties"]["model"]["enum"];
    assert!(
        embed
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id == "all-minilm-l6-v2")),
        "{embed}"
    );
}
