//! The web UI over HTTP: the entry page at `/` and at every console page
//! path, never cached and under a strict Content-Security-Policy; the
//! embedded files with ETags, 304s and gzip; the API's JSON 404 kept for
//! everything else; and the security headers on every answer.

use crate::helpers::*;

fn header<'a>(res: &'a reqwest::blocking::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[test]
fn the_console_is_served_with_a_strict_policy_at_every_page_path() {
    let app = spawn_app(|_| {});
    for path in [
        "/",
        "/sessions",
        "/chat/abc",
        "/rag/xyz",
        "/invite/some-code",
        "/login",
    ] {
        let res = app.get(path, None);
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            header(&res, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&res, "cache-control"), "no-store", "{path}");
        let csp = header(&res, "content-security-policy").to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "x-frame-options"), "DENY");
        let page = res.text().expect("body");
        assert!(page.contains("/assets/js/main.js"), "{path}");
    }
    // Not a page: the API's JSON 404, not the console.
    for path in ["/unknown", "/chat", "/sessions/x/y", "/v1/nothing"] {
        assert_error(app.get(path, None), 404, "not_found");
    }
    // Writes to a page path are not pages either.
    let res = app.post("/sessions", None, serde_json::json!({}));
    assert_eq!(res.status(), 404);
}

#[test]
fn assets_have_etags_answer_304_and_come_gzipped_when_asked() {
    let app = spawn_app(|_| {});
    let res = app.get("/assets/js/main.js", None);
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/javascript"));
    assert_eq!(header(&res, "cache-control"), "no-cache");
    let etag = header(&res, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let plain = res.bytes().expect("body");
    assert!(plain.starts_with(b"//"));

    let again = app
        .request("GET", "/assets/js/main.js", None)
        .header("if-none-match", &etag)
        .send()
        .expect("send");
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().expect("body").is_empty());

    let zipped = app
        .request("GET", "/assets/vendor/dompurify/purify.es.mjs", None)
        .header("accept-encoding", "gzip")
        .send()
        .expect("send");
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_eq!(header(&zipped, "vary"), "Accept-Encoding");
    let gz = zipped.bytes().expect("body");
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let unzipped = app
        .get("/assets/vendor/dompurify/purify.es.mjs", None)
        .bytes()
        .expect("body");
    assert!(gz.len() * 2 < unzipped.len());

    // The gzip form has its own ETag; a 304 says what it varies on.
    let gz_etag = header(&zipped_again(&app, None), "etag").to_owned();
    assert!(gz_etag.ends_with("-gz\""), "{gz_etag}");
    let revalidated = zipped_again(&app, Some(&gz_etag));
    assert_eq!(revalidated.status(), 304);
    assert_eq!(header(&revalidated, "vary"), "Accept-Encoding");

    for bad in [
        "/assets/nope.js",
        "/assets/..%2FCargo.toml",
        "/assets/js//main.js",
    ] {
        assert_eq!(app.get(bad, None).status(), 404, "{bad}");
    }
    // Dot segments sent as they are (a client would normalise them away).
    for raw in [
        "/assets/../Cargo.toml",
        "/assets/js/../../src/lib.rs",
        "/assets/%2e%2e/src/lib.rs",
    ] {
        let answer = raw_get(&app, raw);
        assert!(answer.starts_with("HTTP/1.1 404"), "{raw}: {answer}");
    }
    // HEAD works like GET, without a body.
    for path in ["/", "/sessions", "/assets/js/main.js"] {
        let res = app.request("HEAD", path, None).send().expect("head");
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.bytes().expect("body").is_empty());
    }
}

fn zipped_again(app: &TestApp, etag: Option<&str>) -> reqwest::blocking::Response {
    let mut req = app
        .request("GET", "/assets/vendor/dompurify/purify.es.mjs", None)
        .header("accept-encoding", "gzip");
    if let Some(etag) = etag {
        req = req.header("if-none-match", etag);
    }
    req.send().expect("send")
}

/// A GET with its path sent byte for byte over a socket.
fn raw_get(app: &TestApp, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = app.base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn api_answers_carry_the_security_headers_and_a_deny_all_policy() {
    let app = spawn_app(|_| {});
    for res in [
        app.get("/v1/system/config", None),
        app.get("/v1/nothing", None),
    ] {
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        assert_eq!(header(&res, "cross-origin-opener-policy"), "same-origin");
        assert!(
            header(&res, "content-security-policy").starts_with("default-src 'none'"),
            "{:?}",
            res.headers()
        );
    }
}
