//! `/admin/users`: search and filter accounts, create one for someone, see one in full,
//! change its role or whether it can log in, download its data and erase it.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::Role;
use minijinja::context;
use projections::users::{self, UserQuery, UserSort, PAGE_SIZE};
use serde::Deserialize;
use uuid::Uuid;

use crate::accounts::{Registration, RegistrationError};
use crate::administration::AdminError;
use crate::http::error::{Error, Result};
use crate::http::extract::{ClientInfo, Page, RequireSuperuser};
use crate::http::AppState;
use crate::privacy::ErasureError;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/new", get(new_page).post(create))
        .route("/admin/users/{id}", get(show))
        .route("/admin/users/{id}/role", post(change_role))
        .route("/admin/users/{id}/deactivate", post(deactivate))
        .route("/admin/users/{id}/activate", post(activate))
        .route("/admin/users/{id}/data", get(download_data))
        .route("/admin/users/{id}/erase", post(erase))
}

/// The list's query string; unknown or malformed values fall back to "no filter".
fn parse_query(raw: Option<&str>) -> (UserQuery, minijinja::Value) {
    let pairs: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let query = UserQuery {
        q: get("q").chars().take(100).collect(),
        role: get("role").parse().ok(),
        active: match get("active").as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        sort: match get("sort").as_str() {
            "joined_oldest" => UserSort::JoinedOldest,
            "last_login" => UserSort::LastLogin,
            _ => UserSort::JoinedNewest,
        },
        page: get("page").parse::<u32>().unwrap_or(1).clamp(1, 100_000) - 1,
    };
    let shown = context! {
        q => query.q,
        role => query.role.map(|r| r.as_str()).unwrap_or(""),
        active => query.active.map(|a| a.to_string()).unwrap_or_default(),
        sort => get("sort"),
    };
    (query, shown)
}

/// The list's query string for another page (filters kept).
fn page_link(query: &UserQuery, sort: &str, page: u32) -> String {
    let mut pairs = vec![("q", query.q.clone())];
    if let Some(role) = query.role {
        pairs.push(("role", role.as_str().to_owned()));
    }
    if let Some(active) = query.active {
        pairs.push(("active", active.to_string()));
    }
    if !sort.is_empty() {
        pairs.push(("sort", sort.to_owned()));
    }
    pairs.push(("page", (page + 1).to_string()));
    format!(
        "/admin/users?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

async fn list(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (query, shown) = parse_query(raw.as_deref());
    let (rows, total) = users::search(&state.pool, &query).await?;
    let pages = ((total + i64::from(PAGE_SIZE) - 1) / i64::from(PAGE_SIZE)).max(1);
    let sort = shown
        .get_attr("sort")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let previous = (query.page > 0).then(|| page_link(&query, &sort, query.page - 1));
    let next =
        (i64::from(query.page) + 1 < pages).then(|| page_link(&query, &sort, query.page + 1));
    page.render(
        "admin/users.html",
        context! {
            users => rows,
            total => total,
            filters => shown,
            page_number => query.page + 1,
            pages => pages,
            previous => previous,
            next => next,
        },
    )
    .await
    .map(IntoResponse::into_response)
}

/// The form to create an account for someone else.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewUserForm {
    username: String,
    email: String,
    password: String,
    role: String,
}

async fn new_page(page: Page, RequireSuperuser(_admin): RequireSuperuser) -> Result<Response> {
    page.render(
        "admin/user_new.html",
        context! { form => context! { role => "user" } },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn create(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Form(form): Form<NewUserForm>,
) -> Result<Response> {
    let role = form.role.parse::<Role>();
    let kept = context! { username => form.username, email => form.email, role => form.role };
    let Ok(role) = role else {
        return page
            .render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "admin/user_new.html",
                context! { form => kept, errors => context! { role => "Choose user or superuser." } },
            )
            .await;
    };
    // The admin types the password once; it still goes through the whole password policy.
    let registration = Registration {
        username: form.username.clone(),
        email: form.email.clone(),
        password: form.password.clone(),
        password_confirm: form.password,
    };
    match state
        .accounts
        .register(&registration, role, &client.metadata(Some(admin.id)))
        .await
    {
        Ok(id) => {
            tracing::info!(admin = %admin.id, user_id = %id, "account created by a superuser");
            page.session()
                .flash("success", "The account has been created.")
                .await?;
            Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
        }
        Err(RegistrationError::Invalid(errors)) => {
            page.render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "admin/user_new.html",
                context! { form => kept, errors => errors },
            )
            .await
        }
        Err(RegistrationError::Internal(error)) => Err(Error::Internal(error)),
    }
}

fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound)
}

async fn render_user(
    state: &AppState,
    page: &Page,
    id: Uuid,
    status: StatusCode,
    message: Option<String>,
) -> Result<Response> {
    let user = users::find_by_id(&state.pool, id)
        .await?
        .ok_or(Error::NotFound)?;
    let profile = state.profiles.find(id).await?;
    let cvs: Vec<minijinja::Value> = state
        .cvs
        .list(id)
        .await?
        .iter()
        .map(|cv| {
            context! {
                id => cv.id.to_string(),
                title => cv.title,
                archived => cv.archived,
                version => cv.version,
                updated => cv.updated_at.date().to_string(),
            }
        })
        .collect();
    let about = projections::audit::AuditFilter {
        aggregate_id: Some(id.to_string()),
        ..Default::default()
    };
    let events = crate::http::admin::audit_lines(&state.pool, &about, 15).await?;
    page.render_with_status(
        status,
        "admin/user.html",
        context! {
            user => context! {
                id => user.id.to_string(),
                username => user.username,
                email => user.email,
                role => user.role.as_str(),
                is_superuser => user.is_superuser(),
                active => user.active,
                date_joined => user.date_joined.date().to_string(),
                last_login => user.last_login.map(|at| format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())),
            },
            profile => profile,
            cvs => cvs,
            events => events,
            message => message,
        },
    )
    .await
}

async fn show(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    render_user(&state, &page, id, StatusCode::OK, None).await
}

/// Fields of the role/deactivate forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    role: String,
    confirm: String,
}

async fn outcome(
    state: &AppState,
    page: &Page,
    id: Uuid,
    result: std::result::Result<(), AdminError>,
    done: &str,
) -> Result<Response> {
    match result {
        Ok(()) => {
            page.session().flash("success", done).await?;
            Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
        }
        Err(AdminError::NotFound) => Err(Error::NotFound),
        Err(error @ AdminError::LastSuperuser) => {
            render_user(
                state,
                page,
                id,
                StatusCode::CONFLICT,
                Some(error.to_string()),
            )
            .await
        }
        Err(error @ (AdminError::NeedsConfirmation | AdminError::WrongPassword)) => {
            render_user(
                state,
                page,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(error.to_string()),
            )
            .await
        }
        Err(AdminError::Unchanged(message)) => {
            page.session().flash("info", message).await?;
            Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
        }
        Err(AdminError::Internal(error)) => Err(Error::Internal(error)),
    }
}

async fn change_role(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let Ok(role) = form.role.parse::<Role>() else {
        return render_user(
            &state,
            &page,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Choose user or superuser.".into()),
        )
        .await;
    };
    let result = state
        .administration
        .change_role(
            &admin,
            id,
            role,
            form.confirm == "yes",
            &client.metadata(Some(admin.id)),
        )
        .await;
    let done = format!("The role is now {role}.");
    outcome(&state, &page, id, result, &done).await
}

async fn deactivate(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let result = state
        .administration
        .deactivate(
            &admin,
            id,
            form.confirm == "yes",
            &client.metadata(Some(admin.id)),
        )
        .await;
    outcome(
        &state,
        &page,
        id,
        result,
        "The account has been deactivated and its sessions ended.",
    )
    .await
}

async fn activate(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let result = state
        .administration
        .activate(id, &client.metadata(Some(admin.id)))
        .await;
    outcome(&state, &page, id, result, "The account can log in again.").await
}

/// The user's data archive, as they would download it themselves.
async fn download_data(
    State(state): State<AppState>,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let export = state.privacy.export(id).await?.ok_or(Error::NotFound)?;
    tracing::info!(user_id = %id, admin_id = %admin.id, "data archive produced by a superuser");
    Ok(crate::http::account::archive_response(export))
}

async fn erase(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireSuperuser(admin): RequireSuperuser,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let user = users::find_by_id(&state.pool, id)
        .await?
        .ok_or(Error::NotFound)?;
    if form.confirm != "yes" {
        return render_user(
            &state,
            &page,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Tick the box to confirm: erasing cannot be undone.".into()),
        )
        .await;
    }
    match state
        .privacy
        .erase(&user, None, &client.metadata(Some(admin.id)))
        .await
    {
        Ok(_) => {
            // The message names no one: a session must not keep the erased person's name.
            page.session()
                .flash("success", "The account has been erased.")
                .await?;
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(error @ ErasureError::LastSuperuser) => {
            render_user(
                &state,
                &page,
                id,
                StatusCode::CONFLICT,
                Some(error.to_string()),
            )
            .await
        }
        Err(ErasureError::NotFound) => Err(Error::NotFound),
        Err(ErasureError::WrongPassword) => Err(Error::Internal(anyhow::anyhow!(
            "a password was checked for an erasure by a superuser"
        ))),
        Err(ErasureError::Internal(error)) => Err(Error::Internal(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_filters_mean_no_filter() {
        let (query, _) = parse_query(Some("role=admin&active=maybe&page=-3&sort=x"));
        assert_eq!(query.role, None);
        assert_eq!(query.active, None);
        assert_eq!(query.page, 0);
        assert_eq!(query.sort, UserSort::JoinedNewest);
    }

    #[test]
    fn page_links_keep_the_filters() {
        let (query, _) = parse_query(Some("q=ada&role=superuser&active=true"));
        let link = page_link(&query, "last_login", 1);
        assert_eq!(
            link,
            "/admin/users?q=ada&role=superuser&active=true&sort=last_login&page=2"
        );
    }
}
