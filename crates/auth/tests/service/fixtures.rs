//! Shared fixtures: a service over a fresh SQLite database, accounts, logins
//! and audit queries.

use offgrid_auth::service::LoginRequest;
use offgrid_auth::{
    AccountInput, Actor, AuthConfig, AuthError, AuthService, ServerSecret, ThrottlePolicy,
};
use offgrid_domain::{OperatorCapability, Role};
use offgrid_storage::Database;

pub struct Fixture {
    pub auth: AuthService,
    _dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    fixture_with(|_| {})
}

pub fn fixture_with(adjust: impl FnOnce(&mut AuthConfig)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
    db.migrate().expect("migrate");
    let mut config = AuthConfig {
        bcrypt_cost: 4,
        session_ttl_secs: 3600,
        remember_me_secs: 7 * 86400,
        throttle: ThrottlePolicy {
            user_threshold: 3,
            addr_threshold: 10,
            base_secs: 60,
            max_secs: 600,
            ..ThrottlePolicy::default()
        },
        session_idle_timeout_secs: 3600,
        adopt_existing_data: true,
    };
    adjust(&mut config);
    let auth =
        AuthService::new(db.repositories(), &ServerSecret::generate(), config).expect("auth");
    Fixture { auth, _dir: dir }
}

/// The operator, as `offgrid-admin` acts.
pub fn operator() -> Actor {
    Actor::operator(&OperatorCapability::assume())
}

pub fn account(name: &str, role: Role) -> AccountInput {
    AccountInput {
        username: name.to_owned(),
        password: format!("{name}-password"),
        email: None,
        display_name: None,
        role,
    }
}

pub fn login(auth: &AuthService, name: &str, password: &str) -> Result<String, AuthError> {
    login_from(auth, "127.0.0.1", name, password)
}

pub fn login_from(
    auth: &AuthService,
    addr: &str,
    name: &str,
    password: &str,
) -> Result<String, AuthError> {
    auth.login(&LoginRequest {
        login: name.to_owned(),
        password: password.to_owned(),
        remember_me: false,
        client_addr: Some(addr.into()),
        user_agent: None,
        device: None,
    })
    .map(|o| o.token)
}

pub fn login_with(
    auth: &AuthService,
    addr: &str,
    name: &str,
    password: &str,
    device: Option<&str>,
) -> Result<offgrid_auth::LoginOutcome, AuthError> {
    auth.login(&LoginRequest {
        login: name.to_owned(),
        password: password.to_owned(),
        remember_me: false,
        client_addr: Some(addr.into()),
        user_agent: None,
        device: device.map(str::to_owned),
    })
}

pub fn is_throttled(r: &Result<String, AuthError>) -> bool {
    matches!(r, Err(AuthError::Throttled { .. }))
}

pub fn audit_actions(auth: &AuthService, action: &str) -> Vec<offgrid_domain::audit::AuditEvent> {
    auth.repos()
        .audit
        .list(&offgrid_domain::audit::AuditQuery {
            action: Some(action.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .expect("audit")
        .data
}
