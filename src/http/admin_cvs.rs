//! `/admin/cvs`: every CV with its owner and status, searchable; any CV opens read-only at
//! `/cvs/{id}`, and a superuser may archive it (recorded with them as actor).

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use projections::cvs::{self, PAGE_SIZE};
use uuid::Uuid;

use crate::administration::AdminError;
use crate::http::error::{Error, Result};
use crate::http::extract::{ClientInfo, Page, RequireSuperuser};
use crate::http::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/cvs", get(list))
        .route("/admin/cvs/{id}/archive", post(archive))
}

async fn list(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let pairs: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let q: String = get("q").chars().take(100).collect();
    let page_index = get("page").parse::<u32>().unwrap_or(1).clamp(1, 100_000) - 1;
    let (rows, total) = cvs::search_all(&state.pool, &q, page_index).await?;
    let pages = ((total + i64::from(PAGE_SIZE) - 1) / i64::from(PAGE_SIZE)).max(1);
    let link = |n: u32| {
        format!(
            "/admin/cvs?{}",
            serde_urlencoded::to_string([("q", q.clone()), ("page", n.to_string())])
                .unwrap_or_default()
        )
    };
    page.render(
        "admin/cvs.html",
        context! {
            cvs => rows,
            total => total,
            q => q,
            page_number => page_index + 1,
            pages => pages,
            previous => (page_index > 0).then(|| link(page_index)),
            next => (i64::from(page_index) + 1 < pages).then(|| link(page_index + 2)),
        },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn archive(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound)?;
    match state
        .administration
        .archive_cv(&admin, id, &client.metadata(Some(admin.id)))
        .await
    {
        Ok(()) => {
            page.session()
                .flash("success", "The CV has been archived.")
                .await?
        }
        Err(AdminError::NotFound) => return Err(Error::NotFound),
        Err(AdminError::Unchanged(message)) => page.session().flash("info", message).await?,
        Err(other) => return Err(Error::Internal(anyhow::anyhow!("{other}"))),
    }
    Ok(Redirect::to("/admin/cvs").into_response())
}
