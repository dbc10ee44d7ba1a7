//! `/register`, `/login`, `/logout`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::Role;
use minijinja::context;
use serde::Deserialize;

use crate::accounts::{LoginError, Registration, RegistrationError};
use crate::http::error::Result;
use crate::http::extract::{ClientInfo, CurrentUser, Page};
use crate::http::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_page).post(register))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

/// Where to go after login when no (valid) `next` is given.
const AFTER_LOGIN: &str = "/cvs";

/// The registration form. Fields default to empty so that a missing field is a validation
/// message, not a rejection; there is deliberately no `role` (registration makes users only).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    username: String,
    email: String,
    password: String,
    password_confirm: String,
}

async fn register_page(page: Page, CurrentUser(user): CurrentUser) -> Result<Response> {
    if user.is_some() {
        return Ok(Redirect::to(AFTER_LOGIN).into_response());
    }
    Ok(page
        .render("accounts/register.html", context! { form => context! {} })
        .await?
        .into_response())
}

async fn register(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    Form(form): Form<RegisterForm>,
) -> Result<Response> {
    let registration = Registration {
        username: form.username.clone(),
        email: form.email.clone(),
        password: form.password,
        password_confirm: form.password_confirm,
    };
    match state
        .accounts
        .register(&registration, Role::User, &client.metadata(None))
        .await
    {
        Ok(user_id) => {
            page.session().log_in(user_id, 0).await?;
            page.session()
                .flash("success", "Welcome! Your account is ready.")
                .await?;
            tracing::info!(%user_id, "user registered");
            Ok(Redirect::to(AFTER_LOGIN).into_response())
        }
        Err(RegistrationError::Invalid(errors)) => {
            // The input comes back, never the passwords.
            page.render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "accounts/register.html",
                context! {
                    form => context! { username => form.username, email => form.email },
                    errors => errors,
                },
            )
            .await
        }
        Err(RegistrationError::Internal(error)) => Err(error.into()),
    }
}

/// `?next=` on the login page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
}

/// The login form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    next: String,
}

/// `next` if it is a path on this site, else `None`. Rejects absolute and scheme-relative URLs
/// (`//evil.example`, `/\evil.example`) and anything with control characters: an open redirect
/// is a bug.
pub fn safe_next(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

async fn login_page(
    page: Page,
    CurrentUser(user): CurrentUser,
    Query(query): Query<NextQuery>,
) -> Result<Response> {
    let next = safe_next(&query.next).unwrap_or("");
    if user.is_some() {
        return Ok(Redirect::to(if next.is_empty() { AFTER_LOGIN } else { next }).into_response());
    }
    Ok(page
        .render(
            "accounts/login.html",
            context! { form => context! { next => next } },
        )
        .await?
        .into_response())
}

async fn login(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let next = safe_next(&form.next).unwrap_or("").to_owned();
    let metadata = client.metadata(None);
    let outcome = state
        .accounts
        .log_in(&form.email, &form.password, &client.ip, &metadata)
        .await;
    let (status, message, retry_after) = match outcome {
        Ok(user) => {
            page.session().log_in(user.id, user.session_epoch).await?;
            tracing::info!(user_id = %user.id, "user logged in");
            let target = if next.is_empty() { AFTER_LOGIN } else { &next };
            return Ok(Redirect::to(target).into_response());
        }
        Err(LoginError::InvalidCredentials) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid email or password.".to_owned(),
            None,
        ),
        Err(LoginError::Deactivated) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "This account has been deactivated. Please contact an administrator.".to_owned(),
            None,
        ),
        Err(LoginError::Throttled(wait)) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed login attempts. Please try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
                Some(wait.as_secs().max(1)),
            )
        }
        Err(LoginError::Internal(error)) => return Err(error.into()),
    };
    let mut response = page
        .render_with_status(
            status,
            "accounts/login.html",
            context! {
                form => context! { email => form.email.trim(), next => next },
                login_error => message,
            },
        )
        .await?;
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

async fn logout(page: Page) -> Result<Response> {
    page.session().log_out().await?;
    Ok(Redirect::to("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_are_safe_next_targets() {
        assert_eq!(safe_next("/cvs/1?tab=a"), Some("/cvs/1?tab=a"));
    }

    #[test]
    fn absolute_and_scheme_relative_urls_are_not() {
        for target in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(target), None, "{target}");
        }
    }

    #[test]
    fn control_characters_are_not() {
        assert_eq!(safe_next("/a\r\nLocation: x"), None);
    }
}
