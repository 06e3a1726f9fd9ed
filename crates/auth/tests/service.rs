//! The account service against real SQLite storage.

use offgrid_auth::service::LoginRequest;
use offgrid_auth::{
    AccountInput, Actor, AuthConfig, AuthError, AuthService, KeyIssuer, KeyRequest, ServerSecret,
    SetupCode, SetupProof, ThrottlePolicy,
};
use offgrid_domain::user::UserPatch;
use offgrid_domain::{Credential, OperatorCapability, Role, Scope};
use offgrid_storage::Database;

struct Fixture {
    auth: AuthService,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(adjust: impl FnOnce(&mut AuthConfig)) -> Fixture {
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
    };
    adjust(&mut config);
    let auth =
        AuthService::new(db.repositories(), &ServerSecret::generate(), config).expect("auth");
    Fixture { auth, _dir: dir }
}

/// The operator, as `offgrid-admin` acts.
fn operator() -> Actor {
    Actor::operator(&OperatorCapability::assume())
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
    login_from(auth, "127.0.0.1", name, password)
}

fn login_from(
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

fn login_with(
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

fn is_throttled(r: &Result<String, AuthError>) -> bool {
    matches!(r, Err(AuthError::Throttled { .. }))
}

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
fn throttling_locks_even_the_right_password() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
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
    let op = operator();
    for change in ["role", "disable", "reset"] {
        let name = format!("u-{change}");
        let (user, key) = f
            .auth
            .create_user(
                account(&name, Role::User),
                Some(KeyIssuer::Operator(&OperatorCapability::assume())),
                &op,
            )
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
        .create_user(account("alice", Role::User), None, &operator())
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
    let op = operator();
    let (alice, _) = f
        .auth
        .create_user(account("alice", Role::User), None, &op)
        .expect("alice");
    let (bob, _) = f
        .auth
        .create_user(account("bob", Role::User), None, &op)
        .expect("bob");
    let mine = Scope::owned_by(alice.id.clone());
    let key = f
        .auth
        .create_api_key(
            KeyIssuer::Operator(&OperatorCapability::assume()),
            &mine,
            KeyRequest {
                owner: alice.id.clone(),
                name: "laptop".into(),
                expires_at: None,
                can_create_keys: false,
            },
            &op,
        )
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
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
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

#[test]
fn a_key_asked_for_before_a_password_reset_is_not_stored_after_it() {
    // The caller's credential was checked at epoch 0; the reset lands
    // before the key is stored. The key must not be born at the new epoch.
    let f = fixture();
    let (alice, _) = f
        .auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    let token = login(&f.auth, "alice", "alice-password").expect("login");
    let caller = f.auth.authenticate_bearer(&token).expect("auth");
    f.auth
        .reset_password(&alice.id, "a brand new password", &operator())
        .expect("reset");
    let scope = Scope::owned_by(alice.id.clone());
    let request = KeyRequest {
        owner: alice.id.clone(),
        name: "in flight".into(),
        expires_at: None,
        can_create_keys: false,
    };
    assert_eq!(
        f.auth
            .create_api_key(
                KeyIssuer::Caller(&caller),
                &scope,
                request,
                &Actor::default()
            )
            .map(|_| ()),
        Err(AuthError::Unauthenticated)
    );
    assert!(
        f.auth
            .list_api_keys(&scope, &alice.id)
            .expect("list")
            .is_empty()
    );
}

#[test]
fn an_admin_demoted_mid_request_gets_no_key_for_another_user() {
    // The admin's credential was checked at its epoch; a demotion lands
    // before the key for bob (or bob's first key) is stored.
    let f = fixture();
    let (root, _) = f
        .auth
        .create_user(account("root", Role::Admin), None, &operator())
        .expect("root");
    f.auth
        .create_user(account("boss", Role::Admin), None, &operator())
        .expect("boss");
    let (bob, _) = f
        .auth
        .create_user(account("bob", Role::User), None, &operator())
        .expect("bob");
    let token = login(&f.auth, "root", "root-password").expect("login");
    let caller = f.auth.authenticate_bearer(&token).expect("auth");
    let everything = Scope::everything_for(&caller.principal).expect("admin scope");
    f.auth
        .update_user(
            &root.id,
            UserPatch {
                role: Some(Role::Viewer),
                ..UserPatch::default()
            },
            &operator(),
        )
        .expect("demote");
    let request = KeyRequest {
        owner: bob.id.clone(),
        name: "in flight".into(),
        expires_at: None,
        can_create_keys: false,
    };
    assert_eq!(
        f.auth
            .create_api_key(
                KeyIssuer::Caller(&caller),
                &everything,
                request,
                &Actor::default()
            )
            .map(|_| ()),
        Err(AuthError::Unauthenticated)
    );
    assert!(
        f.auth
            .list_api_keys(&everything, &bob.id)
            .expect("list")
            .is_empty()
    );
    // A new user with a first key: the key is not issued either.
    let created = f.auth.create_user(
        account("carol", Role::User),
        Some(KeyIssuer::Caller(&caller)),
        &Actor::default(),
    );
    assert!(
        matches!(created, Err(AuthError::Unauthenticated)),
        "{created:?}"
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
fn concurrent_wrong_passwords_cannot_all_pass_the_lock_check() {
    // 32 attempts from one address start together. Each is counted before
    // its password is verified, so at most the threshold (3) are judged;
    // the rest are refused. The in-flight bounds are lifted so that only
    // the counting is under test, and bcrypt is made slow enough (cost 10)
    // that every attempt reaches the lock check before the first password
    // check ends.
    let f = std::sync::Arc::new(fixture_with(|c| {
        c.bcrypt_cost = 10;
        c.throttle.max_in_flight_per_account = 64;
        c.throttle.max_in_flight_per_addr = 64;
    }));
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    let start = std::sync::Arc::new(std::sync::Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (f, start) = (f.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                login_from(&f.auth, "10.0.0.9", "alice", "wrong-password")
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    let judged = results
        .iter()
        .filter(|r| **r == Err(AuthError::InvalidCredentials))
        .count();
    let refused = results.iter().filter(|r| is_throttled(r)).count();
    assert!(judged <= 3, "{judged} attempts were judged: {results:?}");
    assert_eq!(judged + refused, 32, "{results:?}");
}

#[test]
fn a_fresh_address_gets_no_password_check_against_a_locked_account() {
    // The owner's right password from an address with no failures used to
    // be let through: an attacker rotating addresses could then guess
    // without limit. Now only a known device of the account is checked.
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    for _ in 0..3 {
        assert_eq!(
            login_from(&f.auth, "10.0.0.66", "alice", "guess-password"),
            Err(AuthError::InvalidCredentials)
        );
    }
    for i in 1..=20 {
        let addr = format!("10.0.1.{i}");
        assert!(is_throttled(&login_from(
            &f.auth,
            &addr,
            "alice",
            "guess-password"
        )));
    }
    // Not even the right password gets a bcrypt check from a fresh address.
    assert!(is_throttled(&login_from(
        &f.auth,
        "10.0.0.1",
        "alice",
        "alice-password"
    )));
    // None of those attempts was judged.
    assert_eq!(audit_actions(&f.auth, "login.failed").len(), 3);
}

#[test]
fn a_locked_account_lets_its_owners_known_device_in() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    f.auth
        .create_user(account("bob", Role::User), None, &operator())
        .expect("create");
    // Alice logged in from her laptop before: it holds a device cookie.
    let device = login_with(&f.auth, "10.0.0.1", "alice", "alice-password", None)
        .expect("login")
        .device;
    let bobs_device = login_with(&f.auth, "10.0.0.9", "bob", "bob-password", None)
        .expect("login")
        .device;
    // Someone at 10.0.0.66 locks alice.
    for _ in 0..3 {
        let _ = login_from(&f.auth, "10.0.0.66", "alice", "guess-password");
    }
    assert!(is_throttled(&login_from(
        &f.auth,
        "10.0.0.66",
        "alice",
        "alice-password"
    )));
    // Her device gets in, from wherever she is now.
    assert!(
        login_with(
            &f.auth,
            "10.0.0.2",
            "alice",
            "alice-password",
            Some(&device)
        )
        .is_ok()
    );
    // Locked again: another account's device, a forged or tampered cookie,
    // or a locked address get nothing.
    for _ in 0..3 {
        let _ = login_from(&f.auth, "10.0.0.66", "alice", "guess-password");
    }
    let flipped = if device.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &device[..device.len() - 1]);
    for cookie in [bobs_device.as_str(), forged.as_str(), "d1.junk"] {
        assert!(matches!(
            login_with(&f.auth, "10.0.0.3", "alice", "alice-password", Some(cookie)),
            Err(AuthError::Throttled { .. })
        ));
    }
    for i in 0..10 {
        let _ = login_from(&f.auth, "10.0.0.5", &format!("nobody{i}"), "guess-password");
    }
    assert!(matches!(
        login_with(
            &f.auth,
            "10.0.0.5",
            "alice",
            "alice-password",
            Some(&device)
        ),
        Err(AuthError::Throttled { .. })
    ));
    // A wrong password with her device is judged and answered as locked.
    assert!(matches!(
        login_with(
            &f.auth,
            "10.0.0.2",
            "alice",
            "guess-password",
            Some(&device)
        ),
        Err(AuthError::Throttled { .. })
    ));
    assert!(
        login_with(
            &f.auth,
            "10.0.0.2",
            "alice",
            "alice-password",
            Some(&device)
        )
        .is_ok()
    );
}

#[test]
fn a_known_device_gets_only_a_few_guesses_against_a_locked_account() {
    // A stolen device cookie must not become a way around the lock: while
    // the account is locked, the device itself is throttled like an
    // account (user_threshold is 3 here).
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    let device = login_with(&f.auth, "10.0.0.1", "alice", "alice-password", None)
        .expect("login")
        .device;
    for _ in 0..3 {
        let _ = login_from(&f.auth, "10.0.0.66", "alice", "guess-password");
    }
    for i in 0..3 {
        let addr = format!("10.0.2.{i}");
        assert!(matches!(
            login_with(&f.auth, &addr, "alice", "guess-password", Some(&device)),
            Err(AuthError::Throttled { .. })
        ));
    }
    assert_eq!(audit_actions(&f.auth, "login.failed").len(), 6);
    assert!(matches!(
        login_with(
            &f.auth,
            "10.0.0.1",
            "alice",
            "alice-password",
            Some(&device)
        ),
        Err(AuthError::Throttled { .. })
    ));
    assert_eq!(
        audit_actions(&f.auth, "login.failed").len(),
        6,
        "not judged"
    );
}

#[test]
fn ipv6_clients_are_throttled_by_their_64_prefix() {
    // One host owns a whole /64: failures from any address in it count
    // together (addr_threshold is 10 here).
    let f = fixture();
    for i in 1..=10 {
        assert_eq!(
            login_from(
                &f.auth,
                &format!("2001:db8:0:1::{i:x}"),
                &format!("nobody{i}"),
                "wrong-password"
            ),
            Err(AuthError::InvalidCredentials)
        );
    }
    assert!(is_throttled(&login_from(
        &f.auth,
        "2001:db8:0:1:ffff:eeee:dddd:1",
        "someone",
        "wrong-password"
    )));
    assert_eq!(
        login_from(&f.auth, "2001:db8:0:2::1", "someone", "wrong-password"),
        Err(AuthError::InvalidCredentials)
    );
}

#[test]
fn username_and_email_share_one_throttle_counter() {
    let f = fixture();
    let input = AccountInput {
        email: Some("alice@example.org".into()),
        ..account("alice", Role::User)
    };
    f.auth
        .create_user(input, None, &operator())
        .expect("create");
    for login in ["alice", "alice@example.org", "ALICE"] {
        assert_eq!(
            login_from(&f.auth, "10.0.0.7", login, "wrong-password"),
            Err(AuthError::InvalidCredentials)
        );
    }
    assert!(is_throttled(&login_from(
        &f.auth,
        "10.0.0.7",
        "Alice@Example.org",
        "alice-password"
    )));
}

fn audit_actions(auth: &AuthService, action: &str) -> Vec<offgrid_domain::audit::AuditEvent> {
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
fn throttled_attempts_make_one_audit_entry_per_lock_window() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    for _ in 0..3 {
        let _ = login(&f.auth, "alice", "wrong-password");
    }
    for _ in 0..20 {
        assert!(is_throttled(&login(&f.auth, "alice", "wrong-password")));
    }
    // Refusals write nothing: the window's first makes the entry, the
    // rest are counted in memory until the next flush (once a minute).
    let throttled = audit_actions(&f.auth, "login.throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0].repeats, 1, "written once, not per refusal");
    f.auth.flush_throttled_audit();
    let throttled = audit_actions(&f.auth, "login.throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0].repeats, 20);
    // A key still being refused stays known: more refusals wait for the
    // next flush instead of writing again.
    for _ in 0..5 {
        assert!(is_throttled(&login(&f.auth, "alice", "wrong-password")));
    }
    assert_eq!(audit_actions(&f.auth, "login.throttled")[0].repeats, 20);
    f.auth.flush_throttled_audit();
    assert_eq!(audit_actions(&f.auth, "login.throttled")[0].repeats, 25);
}

#[test]
fn refused_attempts_never_hold_the_accounts_in_flight_slots() {
    // Attempts from a locked address hammer alice's account; they are
    // refused before taking one of its (2) in-flight slots, so alice
    // herself is never turned away as busy.
    let f = std::sync::Arc::new(fixture());
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    for i in 0..10 {
        let _ = login_from(
            &f.auth,
            "10.0.0.66",
            &format!("nobody{i}"),
            "guess-password",
        );
    }
    assert!(is_throttled(&login_from(
        &f.auth,
        "10.0.0.66",
        "alice",
        "guess-password"
    )));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = login_from(&f.auth, "10.0.0.66", "alice", "guess-password");
                }
            })
        })
        .collect();
    let turned_away = (0..40)
        .filter(|_| is_throttled(&login_from(&f.auth, "10.0.0.1", "alice", "alice-password")))
        .count();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for a in attackers {
        a.join().expect("join");
    }
    assert_eq!(turned_away, 0, "the owner was turned away as busy");
}

#[test]
fn audit_retention_prunes_entries_older_than_the_setting() {
    let f = fixture();
    let old = offgrid_auth::service::now().plus_secs(-100 * 86_400);
    f.auth
        .repos()
        .audit
        .append(offgrid_domain::audit::NewAuditEvent {
            at: old,
            actor_id: None,
            actor: None,
            action: "login.failed".into(),
            target: Some("ancient".into()),
            client_addr: None,
            details: None,
        })
        .expect("append");
    f.auth
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
        .expect("setup");
    assert_eq!(f.auth.prune_audit(0, &operator()).expect("off"), 0);
    assert_eq!(f.auth.prune_audit(90, &operator()).expect("prune"), 1);
    assert!(audit_actions(&f.auth, "login.failed").is_empty());
    assert_eq!(audit_actions(&f.auth, "setup.admin_created").len(), 1);
    assert_eq!(audit_actions(&f.auth, "audit.pruned").len(), 1);
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
fn wrong_current_passwords_are_throttled_per_user() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    let token = login(&f.auth, "alice", "alice-password").expect("login");
    let me = f.auth.authenticate_bearer(&token).expect("auth").principal;
    for _ in 0..3 {
        assert_eq!(
            f.auth
                .change_password(&me, "a wrong guess", "new password 1", &Actor::default()),
            Err(AuthError::WrongCurrentPassword)
        );
    }
    // Locked now, whatever the guess.
    assert!(matches!(
        f.auth
            .change_password(&me, "alice-password", "new password 1", &Actor::default()),
        Err(AuthError::Throttled { retry_after_secs }) if retry_after_secs > 0
    ));
    assert_eq!(audit_actions(&f.auth, "password.change_throttled").len(), 1);
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

#[test]
fn logout_with_an_api_key_revokes_nothing_and_plain_keys_cannot_mint_keys() {
    let f = fixture();
    let (alice, key) = f
        .auth
        .create_user(
            account("alice", Role::User),
            Some(KeyIssuer::Operator(&OperatorCapability::assume())),
            &operator(),
        )
        .expect("create");
    let key = key.expect("key").secret;
    let caller = f.auth.authenticate_bearer(&key).expect("auth");
    assert_eq!(
        f.auth.logout(&caller.principal, &Actor::default()),
        Err(AuthError::NotASession)
    );
    assert!(f.auth.authenticate_bearer(&key).is_ok(), "still valid");
    let request = |can_create_keys| KeyRequest {
        owner: alice.id.clone(),
        name: "more".into(),
        expires_at: None,
        can_create_keys,
    };
    let scope = Scope::owned_by(alice.id.clone());
    assert_eq!(
        f.auth
            .create_api_key(
                KeyIssuer::Caller(&caller),
                &scope,
                request(false),
                &Actor::default()
            )
            .map(|_| ()),
        Err(AuthError::KeyCannotCreateKeys)
    );
    let token = login(&f.auth, "alice", "alice-password").expect("login");
    let signed_in = f.auth.authenticate_bearer(&token).expect("auth");
    let minting = f
        .auth
        .create_api_key(
            KeyIssuer::Caller(&signed_in),
            &scope,
            request(true),
            &Actor::default(),
        )
        .expect("a login may");
    let by_key = f.auth.authenticate_bearer(&minting.secret).expect("auth");
    assert!(
        f.auth
            .create_api_key(
                KeyIssuer::Caller(&by_key),
                &scope,
                request(false),
                &Actor::default()
            )
            .is_ok(),
        "a key made with can_create_keys may"
    );
}
