//! Login throttling: account and address locks, concurrent attempts, known
//! devices, IPv6 prefixes and the in-flight bounds.

use offgrid_auth::{AccountInput, AuthError};
use offgrid_domain::Role;

use crate::fixtures::{
    account, audit_actions, fixture, fixture_with, is_throttled, login, login_from, login_with,
    operator,
};

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
