//! `/account/password` (change, knowing the current one), `/password-reset` (forgotten: ask
//! for a link by email, then set a new password through it), and the account's personal data:
//! `/account/data` (download all of it) and `/account/delete` (erase it).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;

use crate::accounts::{PasswordChangeError, ResetError};
use crate::http::error::{Error, Result};
use crate::http::extract::{ClientInfo, CurrentUser, Page, RequireUser};
use crate::http::AppState;
use crate::privacy::{DataExport, ErasureError};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
        .route(
            "/password-reset",
            get(reset_request_page).post(request_reset),
        )
        .route("/password-reset/{token}", get(reset_page).post(reset))
        .route("/account/data", get(download_data))
        .route("/account/delete", get(delete_page).post(delete))
}

/// A data archive as a download.
pub fn archive_response(export: DataExport) -> Response {
    let mut response = export.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let disposition = format!("attachment; filename=\"{}\"", export.file_name);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

async fn download_data(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
) -> Result<Response> {
    let export = state
        .privacy
        .export(user.id)
        .await?
        .ok_or(Error::NotFound)?;
    tracing::info!(user_id = %user.id, "data archive downloaded");
    Ok(archive_response(export))
}

/// The account-deletion form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    password: String,
}

async fn render_delete(
    state: &AppState,
    page: &Page,
    user: &projections::users::UserRow,
    status: StatusCode,
    errors: minijinja::Value,
    message: Option<&str>,
) -> Result<Response> {
    let cv_count = state.cvs.list(user.id).await?.len();
    page.render_with_status(
        status,
        "account/delete.html",
        context! {
            user => context! { username => user.username, email => user.email },
            cv_count => cv_count,
            errors => errors,
            message => message,
        },
    )
    .await
}

async fn delete_page(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
) -> Result<Response> {
    render_delete(&state, &page, &user, StatusCode::OK, context! {}, None).await
}

async fn delete(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Form(form): Form<DeleteForm>,
) -> Result<Response> {
    if form.password.is_empty() {
        let errors = context! { password => "Enter your password to confirm." };
        return render_delete(
            &state,
            &page,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            None,
        )
        .await;
    }
    let outcome = state
        .privacy
        .erase(&user, Some(form.password), &client.metadata(Some(user.id)))
        .await;
    match outcome {
        Ok(_) => {
            page.session().log_out().await?;
            page.session()
                .flash(
                    "success",
                    "Your account and your personal data have been erased. Goodbye.",
                )
                .await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(ErasureError::WrongPassword) => {
            let errors = context! { password => "That is not your password." };
            render_delete(
                &state,
                &page,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                None,
            )
            .await
        }
        Err(error @ ErasureError::LastSuperuser) => {
            let message = error.to_string();
            render_delete(
                &state,
                &page,
                &user,
                StatusCode::CONFLICT,
                context! {},
                Some(&message),
            )
            .await
        }
        Err(ErasureError::NotFound) => Err(Error::NotFound),
        Err(ErasureError::Internal(error)) => Err(Error::Internal(error)),
    }
}

/// The password-change form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_confirm: String,
}

async fn password_page(page: Page, RequireUser(_user): RequireUser) -> Result<Response> {
    Ok(page
        .render("account/password.html", context! {})
        .await?
        .into_response())
}

async fn change_password(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let outcome = state
        .accounts
        .change_password(
            &user,
            &form.current_password,
            &form.new_password,
            &form.new_password_confirm,
            &client.metadata(Some(user.id)),
        )
        .await;
    match outcome {
        Ok(epoch) => {
            page.session().move_to_epoch(epoch).await?;
            page.session()
                .flash(
                    "success",
                    "Your password has been changed. You have been logged out everywhere else.",
                )
                .await?;
            tracing::info!(user_id = %user.id, "password changed");
            Ok(Redirect::to("/profile").into_response())
        }
        Err(PasswordChangeError::Invalid(errors)) => {
            page.render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "account/password.html",
                context! { errors => errors },
            )
            .await
        }
        Err(PasswordChangeError::Internal(error)) => Err(error.into()),
    }
}

/// The "forgot password" form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetRequestForm {
    email: String,
}

async fn reset_request_page(page: Page) -> Result<Response> {
    Ok(page
        .render("account/reset_request.html", context! {})
        .await?
        .into_response())
}

async fn request_reset(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CurrentUser(user): CurrentUser,
    Form(form): Form<ResetRequestForm>,
) -> Result<Response> {
    if form.email.trim().is_empty() {
        return page
            .render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "account/reset_request.html",
                context! { errors => context! { email => "Enter your email address." } },
            )
            .await;
    }
    // The same page whether or not the email is known; the work happens in the background.
    state
        .accounts
        .request_password_reset(&form.email, client.metadata(user.map(|u| u.id)));
    page.render("account/reset_sent.html", context! {})
        .await
        .map(IntoResponse::into_response)
}

/// The new-password form behind a reset link.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    new_password: String,
    new_password_confirm: String,
}

/// Tokens are 64 hex characters; anything else cannot be one.
fn plausible_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn invalid_link(page: &Page, message: &str) -> Result<Response> {
    page.render_with_status(
        StatusCode::NOT_FOUND,
        "account/reset_invalid.html",
        context! { message => message },
    )
    .await
}

const NOT_A_LINK: &str =
    "This password reset link is not valid. It may have been used already; you can ask for a new one.";

async fn reset_page(
    State(state): State<AppState>,
    page: Page,
    Path(token): Path<String>,
) -> Result<Response> {
    if !plausible_token(&token) {
        return invalid_link(&page, NOT_A_LINK).await;
    }
    match state.accounts.reset_link_status(&token).await? {
        Ok(()) => page
            .render("account/reset_form.html", context! { token => token })
            .await
            .map(IntoResponse::into_response),
        Err(message) => invalid_link(&page, message).await,
    }
}

async fn reset(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response> {
    if !plausible_token(&token) {
        return invalid_link(&page, NOT_A_LINK).await;
    }
    let outcome = state
        .accounts
        .reset_password(
            &token,
            &form.new_password,
            &form.new_password_confirm,
            &client.metadata(None),
        )
        .await;
    match outcome {
        Ok(()) => {
            page.session()
                .flash(
                    "success",
                    "Your password has been reset and every session ended. Please log in.",
                )
                .await?;
            Ok(Redirect::to("/login").into_response())
        }
        Err(ResetError::Invalid(errors)) => {
            page.render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "account/reset_form.html",
                context! { token => token, errors => errors },
            )
            .await
        }
        Err(ResetError::Link(message)) => invalid_link(&page, message).await,
        Err(ResetError::Internal(error)) => Err(Error::Internal(error)),
    }
}
