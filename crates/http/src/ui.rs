//! The web UI over HTTP: `/` and the console's page paths serve the entry
//! page (never cached, with the UI's Content-Security-Policy), `/assets/…`
//! the embedded files (ETags, `304 Not Modified`, gzip when the client
//! takes it). Outside the API's route table: these are static, public
//! files, and the console asks the API for everything else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

/// Registers `/` and `/assets/{path}`. Page paths (`/sessions`, …) are
/// served from the app's fallback, see [`page`].
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // HEAD as GET (actix leaves the body out): `curl -I` and monitors.
    cfg.service(
        web::resource("/")
            .route(web::route().method(Method::GET).to(index))
            .route(web::route().method(Method::HEAD).to(index)),
    )
    .service(
        web::resource("/assets/{path:.*}")
            .route(web::route().method(Method::GET).to(asset))
            .route(web::route().method(Method::HEAD).to(asset)),
    );
}

/// The entry page for `req` when its path is one of the console's pages.
pub(crate) fn page(req: &HttpRequest) -> Option<HttpResponse> {
    let path = req.path().strip_prefix('/')?;
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    (read && offgrid_ui::is_page(path)).then(|| index_response(req))
}

async fn index(req: HttpRequest) -> HttpResponse {
    index_response(&req)
}

fn index_response(req: &HttpRequest) -> HttpResponse {
    let page = offgrid_ui::index();
    let mut res = HttpResponse::Ok();
    res.insert_header((
        header::CONTENT_SECURITY_POLICY,
        offgrid_ui::CONTENT_SECURITY_POLICY,
    ))
    .insert_header((header::CACHE_CONTROL, "no-store"));
    send(req, res, page)
}

async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(file) = offgrid_ui::asset(&path) else {
        return actix_web::ResponseError::error_response(&crate::error::ApiError::not_found(
            "no such file",
        ));
    };
    // The gzip form is another representation, with its own ETag.
    let tag = if file.gzip.is_some() && accepts_gzip(&req) {
        format!("{}-gz\"", file.etag.trim_end_matches('"'))
    } else {
        file.etag.clone()
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = HttpResponse::build(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    // Revalidated on every use: a new binary's files show at once, and an
    // unchanged file costs a 304.
    res.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::VARY, "Accept-Encoding"));
    if let Ok(etag) = HeaderValue::from_str(&tag) {
        res.insert_header((header::ETAG, etag));
    }
    if fresh {
        return res.finish();
    }
    send(&req, res, file)
}

/// Sends `file`, gzipped when it has a gzip form and the client accepts
/// one.
fn send(req: &HttpRequest, mut res: HttpResponseBuilder, file: offgrid_ui::Asset) -> HttpResponse {
    res.insert_header((header::CONTENT_TYPE, file.content_type))
        .insert_header((header::VARY, "Accept-Encoding"));
    match file.gzip {
        Some(gz) if accepts_gzip(req) => res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(gz),
        // Embedded files are sent from the binary, not copied.
        _ => match file.bytes {
            std::borrow::Cow::Borrowed(bytes) => res.body(bytes),
            std::borrow::Cow::Owned(bytes) => res.body(bytes),
        },
    }
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn gzip_is_taken_only_when_offered_without_q_zero() {
        let with = |v: &str| {
            accepts_gzip(
                &TestRequest::default()
                    .insert_header((header::ACCEPT_ENCODING, v))
                    .to_http_request(),
            )
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br"));
        assert!(!accepts_gzip(&TestRequest::default().to_http_request()));
    }
}
