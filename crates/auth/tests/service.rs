//! The account service against real SQLite storage.

use offgrid_auth::service::LoginRequest;
use offgrid_auth::{
    AccountInput, Actor, AuthConfig, AuthError, AuthService, ServerSecret, ThrottlePolicy,
};
use offgrid_domain::user::UserPatch;
use offgrid_domain::{Credential, Role, Scope};
use offgrid_storage::Database;

struct Fixture {
    auth: AuthService,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
    db.migrate().expect("migrate");
    let config = AuthConfig {
        bcrypt_cost: 4,
        session_ttl_secs: 3600,
        remember_me_secs: 7 * 86400,
        throttle: ThrottlePolicy {
            user_threshold: 3,
            addr_threshold: 10,
            base_secs: 60,
            max_secs: 600,
        },
    };
    let auth =
        AuthService::new(db.repositories(), &ServerSecret::generate(), config).expect("auth");
    Fixture { auth, _dir: dir }
}

fn account(name: &str, role: Role) -> AccountInput {
    AccountInput {
        username: name.to_owned(),
        password: format!("{name}-password"),
        email: None,
        display_name: None,
        role,
    }
}

fn login(auth: &AuthService, name: &str, password: &str) -> Result<String, AuthError> {
    auth.login(&LoginRequest {
        login: name.to_owned(),
        password: password.to_owned(),
        remember_me: false,
        client_addr: Some("127.0.0.1".into()),
        user_agent: None,
    })
    .map(|o| o.token)
}

#[test]
fn setup_creates_one_admin_then_refuses() {
    let f = fixture();
    assert!(f.auth.setup_required().expect("q"));
    let admin = f
        .auth
        .setup(account("root", Role::Viewer), &Actor::default())
        .expect("setup");
    assert_eq!(admin.role, Role::Admin);
    assert!(!f.auth.setup_required().expect("q"));
    assert_eq!(
        f.auth
            .setup(account("other", Role::Admin), &Actor::default())
            .map(|_| ()),
        Err(AuthError::SetupDone)
    );
}

#[test]
fn login_yields_a_token_that_authenticates_until_logout() {
    let f = fixture();
    f.auth
        .setup(account("root", Role::Admin), &Actor::default())
        .expect("setup");
    let token = login(&f.auth, "ROOT", "root-password").expect("login");
    let principal = f.auth.authenticate_bearer(&token).expect("auth").principal;
    assert_eq!(principal.role, Role::Admin);
    assert!(matches!(
        principal.credential,
        Credential::Session {
            from_cookie: false,
            ..
        }
    ));
    f.auth
        .logout(&principal, &Actor::default())
        .expect("logout");
    assert_eq!(
        f.auth.authenticate_bearer(&token),
        Err(AuthError::Unauthenticated)
    );
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_error() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), false, &Actor::operator())
        .expect("create");
    assert_eq!(
        login(&f.auth, "nobody", "whatever-pw"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        login(&f.auth, "alice", "wrong-password"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        login(&f.auth, "system", "whatever-pw"),
        Err(AuthError::InvalidCredentials)
    );
}

#[test]
fn throttling_locks_even_the_right_password() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), false, &Actor::operator())
        .expect("create");
    for _ in 0..3 {
        assert_eq!(
            login(&f.auth, "alice", "wrong-password"),
            Err(AuthError::InvalidCredentials)
        );
    }
    match login(&f.auth, "Alice", "alice-password") {
        Err(AuthError::Throttled { retry_after_secs }) => {
            assert!(retry_after_secs > 0 && retry_after_secs <= 60)
        }
        other => panic!("expected throttling, got {other:?}"),
    }
}

#[test]
fn role_change_disable_and_password_reset_end_tokens_and_keys() {
    let f = fixture();
    let op = Actor::operator();
    for change in ["role", "disable", "reset"] {
        let name = format!("u-{change}");
        let (user, key) = f
            .auth
            .create_user(account(&name, Role::User), true, &op)
            .expect("create");
        let key = key.expect("key").secret;
        let token = login(&f.auth, &name, &format!("{name}-password")).expect("login");
        assert!(f.auth.authenticate_bearer(&token).is_ok());
        assert!(f.auth.authenticate_bearer(&key).is_ok());
        match change {
            "role" => {
                f.auth
                    .update_user(
                        &user.id,
                        UserPatch {
                            role: Some(Role::Viewer),
                            ..UserPatch::default()
                        },
                        &op,
                    )
                    .expect("patch");
            }
            "disable" => {
                f.auth
                    .update_user(
                        &user.id,
                        UserPatch {
                            disabled: Some(true),
                            ..UserPatch::default()
                        },
                        &op,
                    )
                    .expect("patch");
            }
            _ => f
                .auth
                .reset_password(&user.id, "a brand new password", &op)
                .expect("reset"),
        }
        assert_eq!(
            f.auth.authenticate_bearer(&token),
            Err(AuthError::Unauthenticated),
            "{change}: token"
        );
        assert_eq!(
            f.auth.authenticate_bearer(&key),
            Err(AuthError::Unauthenticated),
            "{change}: key"
        );
    }
}

#[test]
fn change_password_keeps_this_session_and_ends_the_others() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), false, &Actor::operator())
        .expect("create");
    let mine = login(&f.auth, "alice", "alice-password").expect("login");
    let other = login(&f.auth, "alice", "alice-password").expect("login");
    let me = f.auth.authenticate_bearer(&mine).expect("auth").principal;
    assert_eq!(
        f.auth
            .change_password(&me, "wrong-current", "new password 1", &Actor::default()),
        Err(AuthError::WrongCurrentPassword)
    );
    f.auth
        .change_password(&me, "alice-password", "new password 1", &Actor::default())
        .expect("change");
    assert!(f.auth.authenticate_bearer(&mine).is_ok());
    assert_eq!(
        f.auth.authenticate_bearer(&other),
        Err(AuthError::Unauthenticated)
    );
    assert!(login(&f.auth, "alice", "new password 1").is_ok());
}

#[test]
fn revoked_and_expired_keys_fail_and_scopes_hide_other_users_keys() {
    let f = fixture();
    let op = Actor::operator();
    let (alice, _) = f
        .auth
        .create_user(account("alice", Role::User), false, &op)
        .expect("alice");
    let (bob, _) = f
        .auth
        .create_user(account("bob", Role::User), false, &op)
        .expect("bob");
    let mine = Scope::owned_by(alice.id.clone());
    let key = f
        .auth
        .create_api_key(&mine, &alice.id, "laptop", None, &op)
        .expect("key");
    let p = f
        .auth
        .authenticate_bearer(&key.secret)
        .expect("auth")
        .principal;
    assert_eq!(p.user_id.as_ref(), Some(&alice.id));
    let bobs = Scope::owned_by(bob.id.clone());
    assert_eq!(
        f.auth
            .revoke_api_key(&bobs, &alice.id, &key.key.id, &op)
            .map(|_| ()),
        Err(AuthError::NotFound)
    );
    f.auth
        .revoke_api_key(&mine, &alice.id, &key.key.id, &op)
        .expect("revoke");
    assert_eq!(
        f.auth.authenticate_bearer(&key.secret),
        Err(AuthError::Unauthenticated)
    );
    let mut forged = key.secret.clone();
    forged.pop();
    forged.push('A');
    assert_eq!(
        f.auth.authenticate_bearer(&forged),
        Err(AuthError::Unauthenticated)
    );
}

#[test]
fn audit_records_security_events() {
    let f = fixture();
    f.auth
        .setup(account("root", Role::Admin), &Actor::default())
        .expect("setup");
    let _ = login(&f.auth, "root", "bad-password");
    login(&f.auth, "root", "root-password").expect("login");
    let page = f
        .auth
        .repos()
        .audit
        .list(&offgrid_domain::audit::AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    let actions: Vec<_> = page.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["login.ok", "login.failed", "setup.admin_created"]
    );
}
