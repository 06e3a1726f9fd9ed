//! Account changes: password changes and resets, role changes and disabling,
//! and what they end.

use offgrid_auth::{Actor, AuthError, KeyIssuer};
use offgrid_domain::user::UserPatch;
use offgrid_domain::{OperatorCapability, Role};

use crate::fixtures::{account, audit_actions, fixture, login, operator};

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
