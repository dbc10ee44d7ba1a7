//! `/admin`: the superusers' area. For now the dashboard shows the account counts it can
//! already know; analytics, user and CV management arrive with their issues.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use projections::users;

use crate::http::error::Result;
use crate::http::extract::{Page, RequireSuperuser};
use crate::http::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(dashboard))
}

async fn dashboard(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
) -> Result<Response> {
    let total_users = users::count(&state.pool).await?;
    Ok(page
        .render("admin/index.html", context! { total_users => total_users })
        .await?
        .into_response())
}
