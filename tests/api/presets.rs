//! Presets over HTTP: private to their owner or public and read-only to
//! others, validated field by field, and usable by sessions.

use serde_json::json;

use crate::helpers::*;

#[test]
fn presets_are_private_or_public_and_read_only_to_others() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (_, bob) = app.create_user(&admin, "bob", "user");
    let (_, vic) = app.create_user(&admin, "vic", "viewer");
    let private = body(app.post(
        "/v1/presets",
        Some(&ann),
        json!({"name": "Terse", "system_prompt": "Answer in one line.", "temperature": 0.2}),
    ));
    assert_eq!(private["is_public"], false);
    assert_eq!(private["owner"]["username"], "ann");
    let private_id = private["id"].as_str().expect("id").to_owned();
    let public = app.post(
        "/v1/presets",
        Some(&ann),
        json!({"name": "Poet", "system_prompt": "Rhyme.", "is_public": true, "max_tokens": 64}),
    );
    assert_eq!(public.status().as_u16(), 201);
    let public_id = body(public)["id"].as_str().expect("id").to_owned();

    // Bob sees the public one only.
    let listed = body(app.get("/v1/presets", Some(&bob)));
    let names: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["Poet"]);
    assert_eq!(
        app.get(&format!("/v1/presets/{private_id}"), Some(&bob))
            .status()
            .as_u16(),
        404
    );
    let edit = json!({"name": "Mine", "system_prompt": "x"});
    for (path, expected) in [
        (format!("/v1/presets/{private_id}"), 404),
        (format!("/v1/presets/{public_id}"), 403),
    ] {
        assert_eq!(
            app.patch(&path, Some(&bob), edit.clone()).status().as_u16(),
            expected
        );
        assert_eq!(app.delete(&path, Some(&bob)).status().as_u16(), expected);
    }
    // Viewers read public presets and make none.
    assert_eq!(
        app.get(&format!("/v1/presets/{public_id}"), Some(&vic))
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.post("/v1/presets", Some(&vic), json!({"name": "v"}))
            .status()
            .as_u16(),
        403
    );
    // Ann's presets are as she made them.
    let again = body(app.get(&format!("/v1/presets/{public_id}"), Some(&ann)));
    assert_eq!(again["name"], "Poet");
    // An admin may change anyone's.
    let changed = app.patch(&format!("/v1/presets/{private_id}"), Some(&admin), edit);
    assert_eq!(changed.status().as_u16(), 200);

    // Sessions may name their own or a public preset, nobody else's.
    let with_public = app.post("/v1/sessions", Some(&bob), json!({"preset_id": public_id}));
    assert_eq!(with_public.status().as_u16(), 201);
    assert_eq!(body(with_public)["preset_id"], public_id.as_str());
    let with_private = app.post("/v1/sessions", Some(&bob), json!({"preset_id": private_id}));
    assert_eq!(with_private.status().as_u16(), 422);
    assert_eq!(body(with_private)["error"]["code"], "invalid_value");
    // Deleting a preset leaves the sessions that named it, without it.
    let gone = app.delete(&format!("/v1/presets/{public_id}"), Some(&ann));
    assert_eq!(gone.status().as_u16(), 204);
    let sessions = body(app.get("/v1/sessions", Some(&bob)));
    assert_eq!(sessions["data"][0]["preset_id"], serde_json::Value::Null);
}

#[test]
fn preset_fields_are_validated_one_by_one() {
    let app = spawn_app(|_| {});
    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (
            json!({"name": "n", "system_prompt": "x".repeat(32 * 1024 + 1)}),
            "system_prompt",
        ),
        (json!({"name": "n", "temperature": 2.5}), "temperature"),
        (json!({"name": "n", "temperature": -0.1}), "temperature"),
        (json!({"name": "n", "top_p": 0.0}), "top_p"),
        (json!({"name": "n", "max_tokens": 0}), "max_tokens"),
        (json!({"name": "n", "model": ""}), "model"),
    ] {
        let res = app.post("/v1/presets", None, bad.clone());
        assert_eq!(res.status().as_u16(), 422, "{bad}");
        let error = body(res);
        assert_eq!(error["error"]["code"], "invalid_value", "{bad}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{bad}: {message}");
    }
    let unknown = app.post("/v1/presets", None, json!({"name": "n", "colour": "red"}));
    assert_eq!(unknown.status().as_u16(), 400);
    let ok = app.post("/v1/presets", None, json!({"name": "  Plain  "}));
    assert_eq!(ok.status().as_u16(), 201);
    assert_eq!(body(ok)["name"], "Plain");
}
