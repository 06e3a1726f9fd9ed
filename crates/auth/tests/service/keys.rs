//! API keys: scoping, revocation, the token epoch a new key is bound to, and
//! who may mint keys.

use offgrid_auth::{Actor, AuthError, KeyIssuer, KeyRequest};
use offgrid_domain::user::UserPatch;
use offgrid_domain::{OperatorCapability, Role, Scope};

use crate::fixtures::{account, fixture, login, operator};

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
