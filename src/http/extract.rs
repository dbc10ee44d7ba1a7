//! Extractors: who is asking (session user, role), from where (client IP, user agent, request
//! id), and the page context every template needs.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use projections::users::{self, UserRow};
use projections::EventMetadata;
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::http::error::{Error, Result};
use crate::http::session::AppSession;
use crate::http::AppState;

/// Longest `User-Agent` kept in event metadata.
const USER_AGENT_MAX: usize = 256;

impl FromRequestParts<AppState> for AppSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Session::from_request_parts(parts, state)
            .await
            .map(AppSession)
            .map_err(|(_, message)| Error::Internal(anyhow::anyhow!("session layer: {message}")))
    }
}

/// Where a request comes from, for metadata and throttling.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's IP (the peer, or from `X-Forwarded-For` when the peer is a trusted proxy).
    pub ip: String,
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
    /// This request's id (`X-Request-Id`).
    pub request_id: String,
}

impl ClientInfo {
    /// Metadata for a command caused by this request on behalf of `actor`.
    pub fn metadata(&self, actor: Option<uuid::Uuid>) -> EventMetadata {
        EventMetadata {
            actor,
            ip: Some(self.ip.clone()),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            at: Some(OffsetDateTime::now_utc()),
        }
    }
}

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// The client IP: the peer address, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or(Some(peer))
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = client_ip(peer, &parts.headers, &state.config.trusted_proxies)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let user_agent = parts.headers.get(header::USER_AGENT).map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(USER_AGENT_MAX)
                .collect()
        });
        Ok(Self {
            ip,
            user_agent,
            request_id: request_id(&parts.headers),
        })
    }
}

/// The logged-in user, if any. An account that was deactivated, vanished, whose sessions were
/// all ended (password changed or reset, demoted), or whose session is past its absolute
/// lifetime is logged out here, on its next request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<UserRow>);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(cached) = parts.extensions.get::<CurrentUser>() {
            return Ok(cached.clone());
        }
        let session = AppSession::from_request_parts(parts, state).await?;
        let mut user = None;
        if let Some(login) = session.login().await? {
            let age = OffsetDateTime::now_utc() - login.logged_in_at;
            let within_lifetime = age <= state.config.session_absolute;
            match users::find_by_id(&state.pool, login.user_id).await? {
                Some(row) if row.active && within_lifetime && row.session_epoch == login.epoch => {
                    session.keep_alive().await?;
                    user = Some(row)
                }
                _ => session.log_out().await?,
            }
        }
        let current = CurrentUser(user);
        parts.extensions.insert(current.clone());
        Ok(current)
    }
}

/// A logged-in user; anonymous requests are sent to the login page (and back afterwards).
#[derive(Debug, Clone)]
pub struct RequireUser(pub UserRow);

/// Sends an anonymous visitor to log in, remembering where they were going.
pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        let next: String = form_encode(&self.0);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Rejection of the access extractors.
pub enum AccessRejection {
    /// Anonymous: log in first.
    Login(LoginRedirect),
    /// Logged in but not allowed (403), or a failure.
    Error(Error),
}

impl IntoResponse for AccessRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Login(redirect) => redirect.into_response(),
            Self::Error(error) => error.into_response(),
        }
    }
}

impl From<Error> for AccessRejection {
    fn from(error: Error) -> Self {
        Self::Error(error)
    }
}

impl FromRequestParts<AppState> for RequireUser {
    type Rejection = AccessRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, AccessRejection> {
        match CurrentUser::from_request_parts(parts, state).await?.0 {
            Some(user) => Ok(Self(user)),
            None => {
                let target = parts
                    .uri
                    .path_and_query()
                    .map(|pq| pq.as_str().to_owned())
                    .unwrap_or_else(|| "/".to_owned());
                Err(AccessRejection::Login(LoginRedirect(target)))
            }
        }
    }
}

/// A logged-in superuser; other users get 403, anonymous visitors the login page.
#[derive(Debug, Clone)]
pub struct RequireSuperuser(pub UserRow);

impl FromRequestParts<AppState> for RequireSuperuser {
    type Rejection = AccessRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, AccessRejection> {
        let RequireUser(user) = RequireUser::from_request_parts(parts, state).await?;
        if user.is_superuser() {
            Ok(Self(user))
        } else {
            Err(AccessRejection::Error(Error::Forbidden))
        }
    }
}

/// Everything `base.html` needs: the user for the navigation, the CSRF token for forms, flash
/// messages and the request id.
pub struct Page {
    state: AppState,
    session: AppSession,
    user: Option<UserRow>,
    request_id: String,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            session: AppSession::from_request_parts(parts, state).await?,
            user,
            request_id: request_id(&parts.headers),
        })
    }
}

impl Page {
    /// The session, for handlers that change it.
    pub fn session(&self) -> &AppSession {
        &self.session
    }

    /// Renders `template` with the page's own `values` plus the shared context.
    pub async fn render(&self, template: &str, values: minijinja::Value) -> Result<Html<String>> {
        let user = self.user.as_ref().map(|user| {
            context! {
                id => user.id.to_string(),
                username => user.username,
                is_superuser => user.is_superuser(),
            }
        });
        let shared = context! {
            current_user => user,
            csrf_token => self.session.csrf_token().await?,
            flashes => self.session.take_flashes().await?,
            request_id => self.request_id,
        };
        let html = self
            .state
            .templates
            .render(template, context! { ..values, ..shared })?;
        Ok(Html(html))
    }

    /// Renders `template` with a status other than 200 (422 for a form with errors, …).
    pub async fn render_with_status(
        &self,
        status: StatusCode,
        template: &str,
        values: minijinja::Value,
    ) -> Result<Response> {
        Ok((status, self.render(template, values).await?).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let ip = client_ip(Some(peer), &headers("198.51.100.1"), &[]);
        assert_eq!(ip, Some(peer));
    }

    #[test]
    fn forwarded_for_is_believed_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let ip = client_ip(Some(proxy), &headers("6.6.6.6, 198.51.100.1"), &[proxy]);
        assert_eq!(ip, Some("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn a_login_redirect_encodes_the_target() {
        assert_eq!(form_encode("/cvs?a=1&b=2"), "%2Fcvs%3Fa%3D1%26b%3D2");
    }
}
