//! The landing page, `/cvs` (the list of the user's CVs) and `/healthz`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;

use crate::http::error::Result;
use crate::http::extract::{CurrentUser, Page};
use crate::http::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
}

async fn home(
    State(state): State<AppState>,
    page: Page,
    CurrentUser(user): CurrentUser,
) -> Result<Response> {
    let recent: Vec<minijinja::Value> = match &user {
        Some(user) => state
            .cvs
            .list(user.id)
            .await?
            .iter()
            .filter(|cv| !cv.archived)
            .take(5)
            .map(|cv| {
                context! {
                    id => cv.id.to_string(),
                    title => cv.title,
                    updated => cv.updated_at.date().to_string(),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(page
        .render("home.html", context! { recent_cvs => recent })
        .await?
        .into_response())
}

/// 200 when the database answers a query, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&state.pool)
        .await
    {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(error) => {
            tracing::error!(?error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
