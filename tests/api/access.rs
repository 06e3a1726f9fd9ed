//! Default-deny: walk every registered route and prove nobody reaches one
//! without the permission the policy assigns it.

use offgrid_domain::Role;
use offgrid_http::{Access, route_table};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_multi_user};

/// The only routes anyone may call without credentials.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/v1/system/config"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/auth/setup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/accept-invite"),
    ("GET", "/api/version"),
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "0b6f3c1e-0000-4000-8000-000000000001")
        .replace("{key_id}", "0b6f3c1e-0000-4000-8000-000000000002")
}

#[test]
fn public_routes_are_exactly_the_short_list() {
    let public: Vec<_> = route_table()
        .into_iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(public, PUBLIC.to_vec());
}

#[test]
fn every_route_enforces_its_permission_for_every_role() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, user_key) = app.create_user(&admin, "u1", "user");
    let (_, viewer_key) = app.create_user(&admin, "v1", "viewer");
    let (_, guest_key) = app.create_user(&admin, "g1", "guest");
    let (_, admin_key) = app.create_user(&admin, "a2", "admin");
    let callers: Vec<(&str, Option<&str>, Role)> = vec![
        ("anonymous", None, Role::Guest),
        ("guest account", Some(&guest_key), Role::Guest),
        ("viewer", Some(&viewer_key), Role::Viewer),
        ("user", Some(&user_key), Role::User),
        ("admin", Some(&admin_key), Role::Admin),
    ];
    let routes = route_table();
    assert!(routes.len() >= 20);
    for route in &routes {
        for (name, credential, role) in &callers {
            let allowed = match route.access {
                Access::Public | Access::AnyPrincipal => true,
                Access::Requires(p) => offgrid_policy::role_has(*role, p),
            };
            let res = app
                .request(route.method, &concrete(route.path), *credential)
                .json(&json!({}))
                .send()
                .expect("send");
            let status = res.status().as_u16();
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{name} should reach {} {} but got {status}",
                    route.method,
                    route.path
                );
            } else {
                assert!(
                    status == 401 || status == 403,
                    "{name} must not reach {} {} but got {status}",
                    route.method,
                    route.path
                );
            }
        }
    }
}

#[test]
fn with_require_auth_only_public_routes_answer_without_credentials() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    for route in route_table() {
        let res = app
            .request(route.method, &concrete(route.path), None)
            .json(&json!({}))
            .send()
            .expect("send");
        let status = res.status().as_u16();
        if route.access == Access::Public {
            assert_ne!(status, 401, "{} {}", route.method, route.path);
        } else {
            assert_eq!(status, 401, "{} {}", route.method, route.path);
        }
    }
}

#[test]
fn guest_access_off_also_requires_credentials() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.guest_access = false;
    });
    assert_eq!(app.get("/v1/users/me", None).status(), 401);
    assert_eq!(app.get("/health", None).status(), 200);
}
