//! Request tracing: one span per request carrying its method, route
//! pattern, status, latency and the caller's user id, and the same span
//! carried into the request's blocking work ([`block`]).
//!
//! What goes into the span is chosen so that no credential can: the route
//! *pattern* (`/v1/users/{id}`), never the path or query (a path may hold
//! an invitation code one day, a query anything); no header is recorded.
//! `RUST_LOG` decides what is shown: at the default `info` only failed
//! requests (5xx) get a line of their own, and every other event carries
//! its request's span; `RUST_LOG=info,offgrid_http=debug` logs one line per
//! request (kept off by default: at tens of thousands of requests a
//! second, a line each costs more than the request).

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing::field::Empty;

/// The middleware: opens the request's span, runs the request inside it,
/// then records the route, status and latency and logs one line.
pub(crate) async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = Empty,
        status = Empty,
        ms = Empty,
        user = Empty,
    );
    let started = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let result = next.call(req).instrument(span.clone()).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let _entered = span.enter();
    match &result {
        Ok(res) => {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let status = res.status().as_u16();
            if let Some(m) = &metrics {
                let code = res
                    .response()
                    .extensions()
                    .get::<crate::code::ErrorCode>()
                    .map(|c| c.as_str());
                m.request(&route, &method, status, code);
            }
            span.record("route", tracing::field::display(&route));
            span.record("status", status);
            span.record("ms", ms);
            if status >= 500 {
                tracing::warn!("request failed");
            } else {
                tracing::debug!("request");
            }
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            if let Some(m) = &metrics {
                let code = e
                    .as_error::<crate::error::ApiError>()
                    .map(|a| a.code.as_str());
                m.request("unmatched", &method, status, code);
            }
            span.record("status", status);
            span.record("ms", ms);
            if status >= 500 {
                tracing::warn!("request failed");
            } else {
                tracing::debug!("request refused");
            }
        }
    }
    result
}

/// Records the caller's user id on the current request's span.
pub(crate) fn record_user(user: &offgrid_domain::UserId) {
    tracing::Span::current().record("user", tracing::field::display(user));
}

/// `web::block` that carries the current span (and subscriber) into the
/// blocking thread, so what blocking work logs belongs to its request.
pub(crate) async fn block<F, R>(f: F) -> Result<R, actix_web::error::BlockingError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    actix_web::web::block(move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(f)))
        .await
}

/// `spawn_blocking` that carries the current span, for work whose result
/// nobody waits for (usage records).
pub(crate) fn spawn_blocking<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    actix_web::rt::task::spawn_blocking(move || {
        tracing::dispatcher::with_default(&dispatch, || span.in_scope(f))
    });
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn handler() -> HttpResponse {
        record_user(&offgrid_domain::UserId::from_string("u-42"));
        let inside = block(|| tracing::info!("inside blocking work")).await;
        assert!(inside.is_ok());
        HttpResponse::Ok().finish()
    }

    #[actix_web::test]
    async fn a_request_is_one_span_with_its_pattern_status_and_user_and_no_secret() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_span))
                .route("/v1/things/{code}", web::get().to(handler)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/v1/things/invite-code-123?key=query-secret-456")
            .insert_header(("Authorization", "Bearer token-secret-789"))
            .insert_header(("Cookie", "offgrid_session=cookie-secret-000"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        let log = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned();
        let line = log
            .lines()
            .find(|l| l.ends_with("request"))
            .unwrap_or_else(|| panic!("no request line in {log}"));
        for field in [
            "method=GET",
            "route=/v1/things/{code}",
            "status=200",
            "user=u-42",
            "ms=",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
        let inside = log
            .lines()
            .find(|l| l.contains("inside blocking work"))
            .unwrap_or_else(|| panic!("no blocking line in {log}"));
        assert!(inside.contains("request{method=GET"), "{inside}");
        for secret in [
            "invite-code-123",
            "query-secret-456",
            "token-secret-789",
            "cookie-secret-000",
        ] {
            assert!(!log.contains(secret), "{secret} reached the log: {log}");
        }
    }
}
