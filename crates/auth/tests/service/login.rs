//! Setup of the first administrator (local and with the remote setup code),
//! login, logout and session lifetime.

use offgrid_auth::{AccountInput, Actor, AuthError, SetupCode, SetupProof};
use offgrid_domain::{Credential, Role};

use crate::fixtures::{account, audit_actions, fixture, login, operator};

#[test]
fn setup_creates_one_admin_then_refuses() {
    let f = fixture();
    assert!(f.auth.setup_required().expect("q"));
    let admin = f
        .auth
        .setup(
            account("root", Role::Viewer),
            SetupProof::Local,
            &Actor::default(),
        )
        .expect("setup");
    assert_eq!(admin.role, Role::Admin);
    assert!(!f.auth.setup_required().expect("q"));
    assert_eq!(
        f.auth
            .setup(
                account("other", Role::Admin),
                SetupProof::Local,
                &Actor::default()
            )
            .map(|_| ()),
        Err(AuthError::SetupDone)
    );
}

#[test]
fn login_yields_a_token_that_authenticates_until_logout() {
    let f = fixture();
    f.auth
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
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
        .create_user(account("alice", Role::User), None, &operator())
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
fn setup_refuses_before_validating_or_hashing_once_an_admin_exists() {
    // Validation comes before hashing, so an invalid password answered with
    // `SetupDone` proves the refusal comes before both.
    let f = fixture();
    f.auth
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
        .expect("setup");
    let bad = AccountInput {
        password: "short".into(),
        ..account("late", Role::Admin)
    };
    assert_eq!(
        f.auth
            .setup(bad, SetupProof::Local, &Actor::default())
            .map(|_| ()),
        Err(AuthError::SetupDone)
    );
}

#[test]
fn overlong_login_names_never_reach_the_database_audit_or_throttle() {
    let f = fixture();
    let huge = "a".repeat(10_000);
    assert!(matches!(
        login(&f.auth, &huge, "whatever-password"),
        Err(AuthError::Invalid {
            field: "username",
            ..
        })
    ));
    assert!(matches!(
        login(&f.auth, "alice", &"p".repeat(257)),
        Err(AuthError::Invalid {
            field: "password",
            ..
        })
    ));
    assert!(audit_actions(&f.auth, "login.").is_empty());
    let counter = f
        .auth
        .repos()
        .throttle
        .get(&format!("login:{huge}"))
        .expect("throttle");
    assert_eq!(counter.failures, 0);
    assert_eq!(
        f.auth
            .repos()
            .throttle
            .get("addr:127.0.0.1")
            .expect("addr")
            .failures,
        0
    );
}

#[test]
fn a_session_idle_past_the_timeout_stops_working() {
    // Timeout one hour. Use is recorded at most once a minute, so a session
    // last seen 50 minutes ago is fine, one last seen an hour and a bit
    // more than that minute ago is not.
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    let token = login(&f.auth, "alice", "alice-password").expect("login");
    let session = f
        .auth
        .authenticate_bearer(&token)
        .expect("auth")
        .principal
        .session_id()
        .cloned()
        .expect("session");
    let t = offgrid_auth::service::now();
    let sessions = &f.auth.repos().sessions;
    sessions
        .touch(&session, t.plus_secs(-50 * 60))
        .expect("touch");
    assert!(
        f.auth.authenticate_bearer(&token).is_ok(),
        "50 minutes idle"
    );
    sessions
        .touch(&session, t.plus_secs(-(3600 + 61)))
        .expect("touch");
    assert_eq!(
        f.auth.authenticate_bearer(&token),
        Err(AuthError::Unauthenticated)
    );
}

#[test]
fn remote_setup_needs_the_code_and_wrong_codes_are_throttled() {
    let f = fixture();
    let code = SetupCode::generate();
    let remote = Actor {
        client_addr: Some("10.0.0.5".into()),
        ..Actor::default()
    };
    fn with<'a>(code: &'a SetupCode, given: &'a str) -> SetupProof<'a> {
        SetupProof::Code {
            expected: Some(code),
            given,
        }
    }
    for _ in 0..3 {
        assert_eq!(
            f.auth
                .setup(
                    account("root", Role::Admin),
                    with(&code, "AAAAA-BBBBB"),
                    &remote
                )
                .map(|_| ()),
            Err(AuthError::InvalidSetupCode)
        );
    }
    assert!(matches!(
        f.auth.setup(
            account("root", Role::Admin),
            with(&code, &code.reveal()),
            &remote
        ),
        Err(AuthError::Throttled { .. })
    ));
    let elsewhere = Actor {
        client_addr: Some("10.0.0.6".into()),
        ..Actor::default()
    };
    let no_code = SetupProof::Code {
        expected: None,
        given: "anything",
    };
    assert_eq!(
        f.auth
            .setup(account("root", Role::Admin), no_code, &elsewhere)
            .map(|_| ()),
        Err(AuthError::InvalidSetupCode)
    );
    let admin = f
        .auth
        .setup(
            account("root", Role::Admin),
            with(&code, &code.reveal()),
            &elsewhere,
        )
        .expect("right code");
    assert_eq!(admin.role, Role::Admin);
}
