//! The browser's session cookie: its name, attributes and removal.
//!
//! Over plain HTTP it is `offgrid_session`. When clients reach the server
//! over HTTPS (`cookie_secure`, e.g. behind a TLS reverse proxy) it is
//! `Secure` and named `__Host-offgrid_session`: browsers accept a
//! `__Host-` cookie only when it is `Secure`, has `Path=/` and no
//! `Domain`, so neither a plain-HTTP page nor a sibling subdomain can set
//! or shadow it. Only the name in force is accepted on requests.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use offgrid_config::Settings;

/// The cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "offgrid_session";
/// The cookie's name when served over HTTPS.
pub const SECURE_SESSION_COOKIE: &str = "__Host-offgrid_session";

/// The device cookie's name over plain HTTP (see `offgrid_auth::device`).
pub const DEVICE_COOKIE: &str = "offgrid_device";
/// The device cookie's name when served over HTTPS.
pub const SECURE_DEVICE_COOKIE: &str = "__Host-offgrid_device";

/// The device cookie's name under these settings.
pub fn device_cookie_name(settings: &Settings) -> &'static str {
    if settings.cookie_secure {
        SECURE_DEVICE_COOKIE
    } else {
        DEVICE_COOKIE
    }
}

/// The session cookie's name under these settings.
pub fn session_cookie_name(settings: &Settings) -> &'static str {
    if settings.cookie_secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

fn build(settings: &Settings, value: String) -> Cookie<'static> {
    build_named(settings, session_cookie_name(settings), value)
}

fn build_named(settings: &Settings, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(SameSite::Strict)
        .path("/")
        .finish()
}

/// The cookie carrying a login token for `max_age_secs`.
pub(crate) fn session_cookie(
    settings: &Settings,
    token: String,
    max_age_secs: i64,
) -> Cookie<'static> {
    let mut cookie = build(settings, token);
    cookie.set_max_age(Duration::seconds(max_age_secs.max(0)));
    cookie
}

/// The long-lived device cookie a successful login leaves in the browser:
/// while the account is locked, only logins presenting it are checked.
/// Like the session cookie it is HttpOnly, SameSite=Strict, and `Secure`
/// with the `__Host-` prefix over HTTPS; logout leaves it in place.
pub(crate) fn device_cookie(settings: &Settings, token: String) -> Cookie<'static> {
    let mut cookie = build_named(settings, device_cookie_name(settings), token);
    cookie.set_max_age(Duration::seconds(offgrid_auth::device::DEVICE_TTL_SECS));
    cookie
}

/// A cookie that makes the browser forget the session cookie.
pub(crate) fn clearing_cookie(settings: &Settings) -> Cookie<'static> {
    let mut cookie = build(settings, String::new());
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_cookies_use_the_host_prefix_with_its_required_attributes() {
        let mut settings = Settings::defaults(std::path::PathBuf::new());
        let plain = session_cookie(&settings, "t".into(), 60).to_string();
        assert!(plain.starts_with("offgrid_session=t;"), "{plain}");
        assert!(!plain.contains("Secure"), "{plain}");
        settings.cookie_secure = true;
        for cookie in [
            session_cookie(&settings, "t".into(), 60).to_string(),
            clearing_cookie(&settings).to_string(),
            device_cookie(&settings, "t".into()).to_string(),
        ] {
            assert!(cookie.starts_with("__Host-offgrid_"), "{cookie}");
            assert!(cookie.contains("; Secure"), "{cookie}");
            assert!(cookie.contains("; Path=/"), "{cookie}");
            assert!(!cookie.contains("Domain"), "{cookie}");
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        }
    }
}
