//! The HTTP layer: one module per feature, each with its `router()`, merged in [`router`] with
//! the layers every response passes through.

pub mod account;
pub mod accounts;
pub mod admin;
pub mod admin_cvs;
pub mod admin_users;
pub mod assets;
pub mod audit;
pub mod cvs;
pub mod error;
pub mod extract;
pub mod memo;
pub mod middleware;
pub mod pages;
pub mod profile;
pub mod routes;
pub mod session;
pub mod templates;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::Router;
use sqlx::SqlitePool;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tracing::Level;

use crate::accounts::Accounts;
use crate::administration::Administration;
use crate::config::ServeConfig;
use crate::cvs::Cvs;
use crate::privacy::Privacy;
use crate::profiles::Profiles;
use templates::Templates;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Server settings.
    pub config: Arc<ServeConfig>,
    /// The database of the event log and read models.
    pub pool: SqlitePool,
    /// The event log (for pages that show events themselves: the audit detail).
    pub log: projections::EventLog,
    /// Account use cases.
    pub accounts: Arc<Accounts>,
    /// Profile use cases.
    pub profiles: Arc<Profiles>,
    /// CV use cases.
    pub cvs: Arc<Cvs>,
    /// What superusers do to accounts and CVs.
    pub administration: Arc<Administration>,
    /// Export and erasure of personal data.
    pub privacy: Arc<Privacy>,
    /// Page templates.
    pub templates: Arc<Templates>,
    /// Admin views shared between requests until the read models move.
    pub memos: Arc<memo::Memos>,
}

/// The content security policy: only our own scripts, styles and images; no framing; forms
/// post only to us.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole application: routes, sessions, guards and the layers every response passes.
pub fn router<S>(state: AppState, session_store: S) -> Router
where
    S: SessionStore + Clone,
{
    let config = &state.config;
    let sessions = SessionManagerLayer::new(session_store)
        .with_name("cvm_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::hours(2)),
        ));

    let request_id = HeaderName::from_static("x-request-id");
    let routes = Router::new()
        .merge(pages::router())
        .merge(accounts::router())
        .merge(account::router())
        .merge(cvs::router())
        .merge(profile::router(config.avatar_max_bytes))
        .merge(admin::router())
        .merge(admin_users::router())
        .merge(admin_cvs::router())
        .merge(audit::router())
        .merge(assets::router())
        .fallback(|| async { error::Error::NotFound })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::error_pages,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    config.request_timeout,
                ))
                .layer(sessions)
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::csrf_guard,
                ))
                .layer(DefaultBodyLimit::max(middleware::FORM_BODY_LIMIT)),
        )
        .with_state(state);

    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        let id = extract::request_id(request.headers());
                        tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id = %id,
                        )
                    })
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(security_header(
                header::CONTENT_SECURITY_POLICY,
                CONTENT_SECURITY_POLICY,
            ))
            .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
            .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(security_header(header::REFERRER_POLICY, "same-origin")),
    )
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}
