//! Request guards and response finishing that apply to every route: the cross-site / CSRF guard
//! on state-changing requests, and friendly error pages for every error response.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use tower_sessions::Session;

use crate::http::error::{message_for, Error, ErrorPage};
use crate::http::extract::request_id;
use crate::http::session::{tokens_match, AppSession};
use crate::http::AppState;

/// Largest urlencoded form body accepted on most routes (the router's default body limit);
/// routes that take more (JSON Resume import) raise it for themselves.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// Most the CSRF guard buffers to find the token: above every route's own limit, which the
/// route's extractor then enforces with a 413.
const GUARD_BUFFER_LIMIT: usize = 2 * 1024 * 1024;

/// Name of the form field (or multipart's `X-CSRF-Token` header) that carries the token.
pub const CSRF_FIELD: &str = "csrf_token";

/// Refuses state-changing requests that come from another site or lack the session's token.
///
/// Two independent checks, as DESIGN.md §4 asks: the browser's own provenance headers
/// (`Sec-Fetch-Site`, `Origin`) must not name another site, and the body must echo the
/// per-session token. Safe methods pass untouched.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if let Err(reason) = check_provenance(request.headers(), &state.config.public_origin()) {
        return Error::CrossSite(reason).into_response();
    }
    let Some(session) = request
        .extensions()
        .get::<Session>()
        .cloned()
        .map(AppSession)
    else {
        return Error::Internal(anyhow::anyhow!("csrf guard runs outside the session layer"))
            .into_response();
    };
    let expected = match session.expected_csrf_token().await {
        Ok(Some(token)) => token,
        Ok(None) => return Error::CrossSite("no CSRF token in the session").into_response(),
        Err(error) => return error.into_response(),
    };

    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // Uploads stream to their handler; their forms carry the token in the query string.
        let given = request
            .uri()
            .query()
            .and_then(|query| form_value(query.as_bytes(), CSRF_FIELD));
        return match given {
            Some(given) if tokens_match(&expected, &given) => next.run(request).await,
            _ => Error::CrossSite("missing or wrong CSRF token").into_response(),
        };
    }

    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, GUARD_BUFFER_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return error_status(StatusCode::PAYLOAD_TOO_LARGE),
    };
    let given = if content_type.starts_with("application/x-www-form-urlencoded") {
        form_value(&bytes, CSRF_FIELD)
    } else {
        None
    };
    match given {
        Some(given) if tokens_match(&expected, &given) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => Error::CrossSite("missing or wrong CSRF token").into_response(),
    }
}

/// The first value of `field` in an urlencoded body (invalid UTF-8 is replaced, not fatal).
fn form_value(body: &[u8], field: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(name, _)| name == field)
        .map(|(_, value)| value)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    serde_urlencoded::from_str::<Vec<(String, String)>>(&text).unwrap_or_default()
}

/// `Err(reason)` when the browser says the request was started by another site.
fn check_provenance(headers: &HeaderMap, public_origin: &str) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err("Sec-Fetch-Site is not same-origin");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        let same = origin == public_origin || (!host.is_empty() && origin_host == host);
        if !same {
            return Err("Origin is another site");
        }
    }
    Ok(())
}

fn error_status(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response.extensions_mut().insert(ErrorPage {
        message: message_for(status),
    });
    response
}

/// Draws a friendly HTML page, with the request id, for every error response that is not
/// already a page (handler errors, 404 for unknown routes, 405, 413, timeouts, rejections).
pub async fn error_pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = request_id(request.headers());
    let response = next.run(request).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_html {
        return response;
    }
    let message = response
        .extensions()
        .get::<ErrorPage>()
        .map(|page| page.message)
        .unwrap_or_else(|| message_for(status));
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let page = state.templates.render(
        "error.html",
        context! {
            status => status.as_u16(),
            reason => status.canonical_reason().unwrap_or("Error"),
            message => message,
            request_id => request_id,
        },
    );
    let mut finished = match page {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(?error, "error page template failed");
            (status, format!("{status}\nRequest id: {request_id}\n")).into_response()
        }
    };
    if let Some(retry_after) = retry_after {
        finished
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_same_origin_post_passes() {
        let h = headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check_provenance(&h, "http://127.0.0.1:3000").is_ok());
    }

    #[test]
    fn a_post_without_provenance_headers_relies_on_the_token() {
        assert!(check_provenance(&HeaderMap::new(), "http://127.0.0.1:3000").is_ok());
    }

    #[test]
    fn a_cross_site_fetch_is_refused() {
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(check_provenance(&h, "http://127.0.0.1:3000").is_err());
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let h = headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert!(check_provenance(&h, "http://127.0.0.1:3000").is_err());
    }

    #[test]
    fn an_origin_matching_the_host_header_passes() {
        let h = headers(&[
            ("origin", "http://localhost:8080"),
            ("host", "localhost:8080"),
        ]);
        assert!(check_provenance(&h, "http://127.0.0.1:3000").is_ok());
    }

    #[test]
    fn form_values_survive_invalid_utf8() {
        assert_eq!(
            form_value(b"a=%FF&csrf_token=abc", "csrf_token"),
            Some("abc".into())
        );
    }
}
