//! The CV pages: list, create, view, print, the editor and its forms, archive, duplicate,
//! history and time travel, JSON Resume export and import.
//!
//! Access: the owner does everything; a superuser may read any CV (an edit is 403); for anyone
//! else every CV route answers 404, as if the CV did not exist.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::{
    parse_basics, parse_entry, CvCommand, CvContent, CvError, CvOrigin, CvTitle, FieldKind,
    MoveDirection, Section, BASICS_FIELDS, TITLE_MAX,
};
use minijinja::context;
use projections::users::UserRow;
use serde::Serialize;
use uuid::Uuid;

use crate::cv_view;
use crate::cvs::{CvAccess, CvFailure};
use crate::http::error::{Error, Result};
use crate::http::extract::{ClientInfo, Page, RequireUser};
use crate::http::AppState;

/// Largest JSON Resume document accepted by the import (DESIGN.md: 1 MiB).
pub const IMPORT_LIMIT: usize = 1024 * 1024;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cvs", get(list))
        .route("/cvs/new", get(new_page).post(create))
        .route(
            "/cvs/import",
            get(import_page)
                .post(import)
                .layer(DefaultBodyLimit::max(IMPORT_LIMIT + 64 * 1024)),
        )
        .route("/cvs/{id}", get(show))
        .route("/cvs/{id}/print", get(print))
        .route("/cvs/{id}/edit", get(edit).post(rename))
        .route("/cvs/{id}/basics", post(basics))
        .route("/cvs/{id}/sections/{section}", post(add_entry))
        .route("/cvs/{id}/sections/{section}/{entry}", post(update_entry))
        .route(
            "/cvs/{id}/sections/{section}/{entry}/delete",
            post(remove_entry),
        )
        .route(
            "/cvs/{id}/sections/{section}/{entry}/move",
            post(move_entry),
        )
        .route("/cvs/{id}/archive", post(archive))
        .route("/cvs/{id}/unarchive", post(unarchive))
        .route("/cvs/{id}/duplicate", post(duplicate))
        .route("/cvs/{id}/history", get(history))
        .route("/cvs/{id}/versions/{n}", get(version))
        .route("/cvs/{id}/versions/{n}/restore", post(restore))
        .route("/cvs/{id}/export.json", get(export))
}

fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound)
}

/// The CV if `user` may read it.
async fn readable(state: &AppState, user: &UserRow, id: &str) -> Result<CvAccess> {
    let id = parse_id(id)?;
    state.cvs.access(user, id).await?.ok_or(Error::NotFound)
}

/// The CV if `user` may edit it: 404 for strangers, 403 for a superuser who is not the owner.
async fn editable(state: &AppState, user: &UserRow, id: &str) -> Result<CvAccess> {
    let access = readable(state, user, id).await?;
    if access.is_owner {
        Ok(access)
    } else {
        Err(Error::Forbidden)
    }
}

/// The submitted fields of a form; for a repeated name the first value counts.
fn form_map(pairs: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (name, value) in pairs {
        map.entry(name).or_insert(value);
    }
    map
}

fn expected_version(form: &BTreeMap<String, String>) -> Option<u64> {
    form.get("expected_version")?.trim().parse().ok()
}

/// A form that is being shown again (after a refused submission) with what the user typed.
#[derive(Debug, Clone, Default)]
struct Pending {
    form: String,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    message: Option<String>,
}

#[derive(Serialize)]
struct FieldForm {
    name: &'static str,
    label: &'static str,
    kind: FieldKind,
    value: String,
    error: Option<String>,
}

fn field_forms(
    specs: &'static [domain::FieldSpec],
    current: impl Fn(&str) -> String,
    pending: Option<&Pending>,
) -> Vec<FieldForm> {
    specs
        .iter()
        .map(|spec| FieldForm {
            name: spec.name,
            label: spec.label,
            kind: spec.kind,
            value: match pending {
                Some(p) => p.values.get(spec.name).cloned().unwrap_or_default(),
                None => current(spec.name),
            },
            error: pending.and_then(|p| p.errors.get(spec.name).cloned()),
        })
        .collect()
}

async fn render_editor(
    state: &AppState,
    page: &Page,
    access: &CvAccess,
    status: StatusCode,
    pending: Option<Pending>,
) -> Result<Response> {
    let _ = state;
    let cv = &access.cv;
    let matching = |form: &str| pending.as_ref().filter(|p| p.form == form);
    let basics = field_forms(
        BASICS_FIELDS,
        |name| cv.content.basic(name).to_owned(),
        matching("basics"),
    );
    let sections: Vec<minijinja::Value> = Section::ALL
        .into_iter()
        .map(|section| {
            let entries: Vec<minijinja::Value> = cv
                .content
                .entries(section)
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    let form = format!("entry:{}", entry.id);
                    context! {
                        id => entry.id.to_string(),
                        heading => entry.text(section.title_field()),
                        first => index == 0,
                        last => index + 1 == cv.content.entries(section).len(),
                        has_pending => matching(&form).is_some(),
                        fields => field_forms(
                            section.fields(),
                            |name| entry.fields.get(name).map(|v| v.as_form_text()).unwrap_or_default(),
                            matching(&form),
                        ),
                    }
                })
                .collect();
            let add_form = format!("add:{}", section.as_str());
            context! {
                name => section.as_str(),
                title => section.title(),
                noun => section.entry_noun(),
                entries => entries,
                add_open => matching(&add_form).is_some(),
                add_fields => field_forms(section.fields(), |_| String::new(), matching(&add_form)),
            }
        })
        .collect();
    let title_value = matching("title")
        .and_then(|p| p.values.get("title").cloned())
        .unwrap_or_else(|| cv.title.clone());
    page.render_with_status(
        status,
        "cvs/edit.html",
        context! {
            cv => context! {
                id => access.summary.id.to_string(),
                title => cv.title,
                version => cv.version,
                archived => cv.archived,
            },
            title_value => title_value,
            title_error => matching("title").and_then(|p| p.errors.get("title").cloned()),
            basics => basics,
            sections => sections,
            pending_form => pending.as_ref().map(|p| p.form.clone()),
            message => pending.as_ref().and_then(|p| p.message.clone()),
        },
    )
    .await
}

/// Turns a refused command into the right status and the editor with the input kept.
async fn refused(
    state: &AppState,
    page: &Page,
    user: &UserRow,
    id: Uuid,
    failure: CvFailure,
    mut pending: Pending,
) -> Result<Response> {
    let status = match &failure {
        CvFailure::Rejected(CvError::Stale { current }) => {
            pending.message = Some(format!(
                "This CV was changed since you opened this form (it is now at version {current}). \
                 Your input is kept below: check the current CV and submit again."
            ));
            StatusCode::CONFLICT
        }
        CvFailure::Rejected(CvError::Archived) => {
            pending.message = Some(CvError::Archived.to_string());
            StatusCode::CONFLICT
        }
        CvFailure::Rejected(CvError::InvalidEntry(errors)) => {
            pending.errors = errors.clone();
            pending.message = Some("Please correct the fields marked below.".into());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        CvFailure::Rejected(
            rule @ (CvError::EmptyEntry | CvError::SectionFull | CvError::DuplicateEntry),
        ) => {
            pending.message = Some(rule.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        CvFailure::Rejected(CvError::NotOwner) => return Err(Error::Forbidden),
        CvFailure::Rejected(
            CvError::NotFound | CvError::EntryNotFound | CvError::InvalidVersion,
        ) => return Err(Error::NotFound),
        CvFailure::Rejected(rule) => {
            pending.message = Some(rule.to_string());
            StatusCode::CONFLICT
        }
        CvFailure::Internal(error) => return Err(Error::Internal(anyhow::anyhow!("{error}"))),
    };
    // Show the form again over the CV as it is now.
    let access = state.cvs.access(user, id).await?.ok_or(Error::NotFound)?;
    render_editor(state, page, &access, status, Some(pending)).await
}

fn stale_form(form: &str, values: BTreeMap<String, String>) -> Pending {
    Pending {
        form: form.to_owned(),
        values,
        errors: BTreeMap::new(),
        message: Some(
            "This form is missing its version; reload the page and try again.".to_owned(),
        ),
    }
}

async fn list(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
) -> Result<Response> {
    let all = state.cvs.list(user.id).await?;
    let (archived, active): (Vec<_>, Vec<_>) = all.into_iter().partition(|cv| cv.archived);
    let row = |cv: &projections::cvs::CvSummary| {
        context! {
            id => cv.id.to_string(),
            title => cv.title,
            updated => format!("{} {:02}:{:02} UTC", cv.updated_at.date(), cv.updated_at.hour(), cv.updated_at.minute()),
            version => cv.version,
            entries => cv.entry_count,
        }
    };
    let active: Vec<_> = active.iter().map(row).collect();
    let archived: Vec<_> = archived.iter().map(row).collect();
    page.render(
        "cvs/index.html",
        context! { active => active, archived => archived },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn new_page(page: Page, RequireUser(_user): RequireUser) -> Result<Response> {
    page.render("cvs/new.html", context! {})
        .await
        .map(IntoResponse::into_response)
}

async fn create(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let form = form_map(pairs);
    let raw_title = form.get("title").cloned().unwrap_or_default();
    let title = match CvTitle::parse(&raw_title) {
        Ok(title) => title,
        Err(error) => {
            return page
                .render_with_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "cvs/new.html",
                    context! { title => raw_title, error => error.to_string() },
                )
                .await
        }
    };
    let id = state
        .cvs
        .create(
            user.id,
            title,
            CvContent::default(),
            CvOrigin::Blank,
            &client.metadata(Some(user.id)),
        )
        .await?;
    page.session()
        .flash("success", "Your CV has been created. Start filling it in.")
        .await?;
    Ok(Redirect::to(&format!("/cvs/{id}/edit")).into_response())
}

async fn show(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = readable(&state, &user, &id).await?;
    page.render(
        "cvs/show.html",
        context! {
            id => access.summary.id.to_string(),
            cv => cv_view::of(&access.cv),
            is_owner => access.is_owner,
        },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn print(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = readable(&state, &user, &id).await?;
    page.render(
        "cvs/print.html",
        context! { id => access.summary.id.to_string(), cv => cv_view::of(&access.cv) },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn edit(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = editable(&state, &user, &id).await?;
    render_editor(&state, &page, &access, StatusCode::OK, None).await
}

/// What every editor POST works with: the CV (already checked editable), who asks, and the page
/// to answer with. Its methods are the three ways such a request ends: the editor shown again
/// with the input kept (422/409), or a redirect after the command was recorded.
struct Edit {
    state: AppState,
    page: Page,
    client: ClientInfo,
    user: UserRow,
    access: CvAccess,
}

impl Edit {
    async fn open(
        state: AppState,
        page: Page,
        client: ClientInfo,
        user: UserRow,
        id: &str,
    ) -> Result<Self> {
        let access = editable(&state, &user, id).await?;
        Ok(Self {
            state,
            page,
            client,
            user,
            access,
        })
    }

    fn id(&self) -> Uuid {
        self.access.summary.id
    }

    /// The editor again, with `pending` filled in.
    async fn reshow(&self, status: StatusCode, pending: Pending) -> Result<Response> {
        render_editor(&self.state, &self.page, &self.access, status, Some(pending)).await
    }

    /// 422: the form `form_name` had invalid fields.
    async fn invalid(
        &self,
        form_name: &str,
        values: BTreeMap<String, String>,
        errors: BTreeMap<String, String>,
    ) -> Result<Response> {
        let pending = Pending {
            form: form_name.to_owned(),
            values,
            errors,
            message: Some("Please correct the fields marked below.".into()),
        };
        self.reshow(StatusCode::UNPROCESSABLE_ENTITY, pending).await
    }

    /// The `expected_version` a form must carry, or the 422 page saying it is missing.
    async fn version(
        &self,
        form_name: &str,
        form: &BTreeMap<String, String>,
    ) -> std::result::Result<u64, Result<Response>> {
        match expected_version(form) {
            Some(version) => Ok(version),
            None => Err(self
                .reshow(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    stale_form(form_name, form.clone()),
                )
                .await),
        }
    }

    /// Records `command`; on success flashes `done` (if any) and redirects to `then`, otherwise
    /// answers as [`refused`] does, with `pending` kept.
    async fn commit(
        &self,
        command: CvCommand,
        pending: Pending,
        done: Option<String>,
        then: String,
    ) -> Result<Response> {
        let id = self.id();
        let metadata = self.client.metadata(Some(self.user.id));
        match self.state.cvs.execute(id, command, &metadata).await {
            Ok(()) => {
                if let Some(message) = done {
                    self.page.session().flash("success", message).await?;
                }
                Ok(Redirect::to(&then).into_response())
            }
            Err(failure) => {
                refused(&self.state, &self.page, &self.user, id, failure, pending).await
            }
        }
    }
}

/// A pending form of `form_name` holding `values`, for when a command is refused.
fn keep(form_name: &str, values: BTreeMap<String, String>) -> Pending {
    Pending {
        form: form_name.to_owned(),
        values,
        ..Pending::default()
    }
}

async fn rename(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let form = form_map(pairs);
    let expected = match edit.version("title", &form).await {
        Ok(version) => version,
        Err(response) => return response,
    };
    let raw = form.get("title").cloned().unwrap_or_default();
    let title = match CvTitle::parse(&raw) {
        Ok(title) => title,
        Err(error) => {
            let errors = BTreeMap::from([("title".to_owned(), error.to_string())]);
            return edit.invalid("title", form, errors).await;
        }
    };
    let command = CvCommand::Rename {
        actor: edit.user.id,
        expected_version: Some(expected),
        title,
    };
    let then = format!("/cvs/{}/edit", edit.id());
    edit.commit(
        command,
        keep("title", form),
        Some("The title has been saved.".into()),
        then,
    )
    .await
}

async fn basics(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let form = form_map(pairs);
    let expected = match edit.version("basics", &form).await {
        Ok(version) => version,
        Err(response) => return response,
    };
    let basics = match parse_basics(&form) {
        Ok(basics) => basics,
        Err(errors) => return edit.invalid("basics", form, errors).await,
    };
    let command = CvCommand::UpdateBasics {
        actor: edit.user.id,
        expected_version: Some(expected),
        basics,
    };
    let then = format!("/cvs/{}/edit#basics", edit.id());
    edit.commit(
        command,
        keep("basics", form),
        Some("Basics saved.".into()),
        then,
    )
    .await
}

fn parse_section(text: &str) -> Result<Section> {
    text.parse().map_err(|_| Error::NotFound)
}

async fn add_entry(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path((id, section)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let section = parse_section(&section)?;
    let form = form_map(pairs);
    let form_name = format!("add:{}", section.as_str());
    let expected = match edit.version(&form_name, &form).await {
        Ok(version) => version,
        Err(response) => return response,
    };
    let fields = match parse_entry(section, &form) {
        Ok(fields) => fields,
        Err(errors) => return edit.invalid(&form_name, form, errors).await,
    };
    let entry_id = Uuid::new_v4();
    let command = CvCommand::AddEntry {
        actor: edit.user.id,
        expected_version: Some(expected),
        section,
        entry_id,
        fields,
    };
    let done = format!("The {} has been added.", section.entry_noun());
    let then = format!("/cvs/{}/edit#entry-{entry_id}", edit.id());
    edit.commit(command, keep(&form_name, form), Some(done), then)
        .await
}

async fn update_entry(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path((id, section, entry)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let section = parse_section(&section)?;
    let entry_id = parse_id(&entry)?;
    let form = form_map(pairs);
    let form_name = format!("entry:{entry_id}");
    let expected = match edit.version(&form_name, &form).await {
        Ok(version) => version,
        Err(response) => return response,
    };
    let fields = match parse_entry(section, &form) {
        Ok(fields) => fields,
        Err(errors) => return edit.invalid(&form_name, form, errors).await,
    };
    let command = CvCommand::UpdateEntry {
        actor: edit.user.id,
        expected_version: Some(expected),
        section,
        entry_id,
        fields,
    };
    let then = format!("/cvs/{}/edit#entry-{entry_id}", edit.id());
    edit.commit(command, keep(&form_name, form), Some("Saved.".into()), then)
        .await
}

async fn remove_entry(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path((id, section, entry)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let section = parse_section(&section)?;
    let entry_id = parse_id(&entry)?;
    let form = form_map(pairs);
    let command = CvCommand::RemoveEntry {
        actor: edit.user.id,
        expected_version: expected_version(&form),
        section,
        entry_id,
    };
    let done = format!("The {} has been removed.", section.entry_noun());
    let then = format!("/cvs/{}/edit#section-{section}", edit.id());
    edit.commit(command, Pending::default(), Some(done), then)
        .await
}

async fn move_entry(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path((id, section, entry)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let section = parse_section(&section)?;
    let entry_id = parse_id(&entry)?;
    let form = form_map(pairs);
    let direction = match form.get("direction").map(String::as_str) {
        Some("up") => MoveDirection::Up,
        Some("down") => MoveDirection::Down,
        _ => {
            let pending = Pending {
                message: Some("Choose a direction: up or down.".into()),
                ..Pending::default()
            };
            return edit.reshow(StatusCode::UNPROCESSABLE_ENTITY, pending).await;
        }
    };
    let command = CvCommand::MoveEntry {
        actor: edit.user.id,
        expected_version: expected_version(&form),
        section,
        entry_id,
        direction,
    };
    let then = format!("/cvs/{}/edit#entry-{entry_id}", edit.id());
    edit.commit(command, Pending::default(), None, then).await
}

async fn archive(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let command = CvCommand::Archive {
        actor: edit.user.id,
        by_admin: false,
    };
    let done = "The CV has been archived. It is read-only until you unarchive it.";
    let then = format!("/cvs/{}", edit.id());
    edit.commit(command, Pending::default(), Some(done.into()), then)
        .await
}

async fn unarchive(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let command = CvCommand::Unarchive {
        actor: edit.user.id,
    };
    let then = format!("/cvs/{}", edit.id());
    edit.commit(
        command,
        Pending::default(),
        Some("The CV is active again.".into()),
        then,
    )
    .await
}

/// "Copy of <title>", cut to fit the title limit.
fn copy_title(title: &str) -> CvTitle {
    let text: String = format!("Copy of {title}").chars().take(TITLE_MAX).collect();
    CvTitle::parse(&text).unwrap_or_else(|_| CvTitle::parse("Copy").expect("a valid title"))
}

async fn duplicate(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = editable(&state, &user, &id).await?;
    let origin = CvOrigin::Duplicate {
        source_id: access.summary.id,
        source_version: access.cv.version,
    };
    let new_id = state
        .cvs
        .create(
            user.id,
            copy_title(&access.cv.title),
            access.cv.content.clone(),
            origin,
            &client.metadata(Some(user.id)),
        )
        .await?;
    page.session()
        .flash("success", "A copy has been made; this is the copy.")
        .await?;
    Ok(Redirect::to(&format!("/cvs/{new_id}")).into_response())
}

async fn history(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = readable(&state, &user, &id).await?;
    let items = state.cvs.history(access.summary.id).await?;
    page.render(
        "cvs/history.html",
        context! {
            id => access.summary.id.to_string(),
            title => access.cv.title,
            current => access.cv.version,
            items => items,
        },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn version(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response> {
    let access = readable(&state, &user, &id).await?;
    let n: u64 = n.parse().map_err(|_| Error::NotFound)?;
    let (cv, change) = state
        .cvs
        .at_version(access.summary.id, n)
        .await?
        .ok_or(Error::NotFound)?;
    page.render(
        "cvs/version.html",
        context! {
            id => access.summary.id.to_string(),
            n => n,
            current => access.cv.version,
            change => change,
            cv => cv_view::of(&cv),
            can_restore => access.is_owner && n < access.cv.version && !access.cv.archived,
        },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn restore(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Path((id, n)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let edit = Edit::open(state, page, client, user, &id).await?;
    let n: u64 = n.parse().map_err(|_| Error::NotFound)?;
    let (past, _) = edit
        .state
        .cvs
        .at_version(edit.id(), n)
        .await?
        .ok_or(Error::NotFound)?;
    let form = form_map(pairs);
    let title = CvTitle::parse(&past.title).map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    let command = CvCommand::RestoreVersion {
        actor: edit.user.id,
        expected_version: expected_version(&form),
        version: n,
        title,
        content: past.content,
    };
    let done = format!("Version {n} has been restored as a new version.");
    let then = format!("/cvs/{}", edit.id());
    edit.commit(command, Pending::default(), Some(done), then)
        .await
}

/// A file name from a title: letters, digits and dashes.
fn file_name(title: &str) -> String {
    let slug: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if slug.is_empty() {
        "cv.json".to_owned()
    } else {
        format!("{slug}.json")
    }
}

async fn export(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let access = readable(&state, &user, &id).await?;
    let document = domain::to_json_resume(&access.cv.title, &access.cv.content);
    let body = serde_json::to_string_pretty(&document).map_err(anyhow::Error::from)?;
    let disposition = format!("attachment; filename=\"{}\"", file_name(&access.cv.title));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

async fn import_page(page: Page, RequireUser(_user): RequireUser) -> Result<Response> {
    page.render("cvs/import.html", context! {})
        .await
        .map(IntoResponse::into_response)
}

/// The document text from a multipart upload (`file`, or the `json` textarea); `Err(413)`
/// when a field is over the limit.
async fn multipart_document(multipart: &mut Multipart) -> std::result::Result<String, StatusCode> {
    let mut pasted = String::new();
    let mut uploaded = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(error.status()),
        };
        let name = field.name().unwrap_or("").to_owned();
        if name != "file" && name != "json" {
            continue;
        }
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > IMPORT_LIMIT {
                        return Err(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return Err(error.status()),
            }
        }
        if name == "file" {
            uploaded = bytes;
        } else {
            pasted = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    if uploaded.is_empty() {
        Ok(pasted)
    } else {
        String::from_utf8(uploaded).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)
    }
}

async fn import(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = if content_type.starts_with("multipart/form-data") {
        let mut multipart = match <Multipart as axum::extract::FromRequest<AppState>>::from_request(
            request, &state,
        )
        .await
        {
            Ok(multipart) => multipart,
            Err(_) => {
                return import_error(
                    &page,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "",
                    "The upload could not be read.",
                )
                .await
            }
        };
        match multipart_document(&mut multipart).await {
            Ok(text) => text,
            Err(StatusCode::PAYLOAD_TOO_LARGE) => {
                return import_error(
                    &page,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "",
                    "The document is too large: at most 1 MiB.",
                )
                .await
            }
            Err(_) => {
                return import_error(
                    &page,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "",
                    "The file is not UTF-8 text, or the upload was incomplete.",
                )
                .await
            }
        }
    } else {
        let form: Form<Vec<(String, String)>> =
            match <Form<Vec<(String, String)>> as axum::extract::FromRequest<AppState>>::from_request(request, &state).await {
                Ok(form) => form,
                Err(rejection) => {
                    let status = axum::response::IntoResponse::into_response(rejection).status();
                    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                        "The document is too large: at most 1 MiB."
                    } else {
                        "The form could not be read."
                    };
                    return import_error(&page, status, "", message).await;
                }
            };
        form_map(form.0).remove("json").unwrap_or_default()
    };
    if text.len() > IMPORT_LIMIT {
        return import_error(
            &page,
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
            "The document is too large: at most 1 MiB.",
        )
        .await;
    }
    if text.trim().is_empty() {
        return import_error(
            &page,
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            "Choose a file or paste a JSON Resume document.",
        )
        .await;
    }
    let imported = match domain::parse_json_resume(&text, &mut Uuid::new_v4) {
        Ok(imported) => imported,
        Err(error) => {
            return import_error(
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &text,
                &error.to_string(),
            )
            .await
        }
    };
    let title_text = imported
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            let name = imported.content.basic("name");
            (!name.is_empty()).then(|| format!("{name} (imported)"))
        })
        .unwrap_or_else(|| "Imported CV".to_owned());
    let title_text: String = title_text.chars().take(TITLE_MAX).collect();
    let title = CvTitle::parse(&title_text)
        .or_else(|_| CvTitle::parse("Imported CV"))
        .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    let id = match state
        .cvs
        .create(
            user.id,
            title,
            imported.content,
            CvOrigin::Import,
            &client.metadata(Some(user.id)),
        )
        .await
    {
        Ok(id) => id,
        Err(CvFailure::Rejected(rule)) => {
            return import_error(
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &text,
                &rule.to_string(),
            )
            .await
        }
        Err(CvFailure::Internal(error)) => return Err(Error::Internal(error)),
    };
    page.session()
        .flash("success", "The CV has been imported.")
        .await?;
    Ok(Redirect::to(&format!("/cvs/{id}")).into_response())
}

async fn import_error(
    page: &Page,
    status: StatusCode,
    text: &str,
    message: &str,
) -> Result<Response> {
    page.render_with_status(
        status,
        "cvs/import.html",
        context! { json => text, error => message },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_slugs_of_the_title() {
        assert_eq!(file_name("Main CV — 2026!"), "main-cv-2026.json");
        assert_eq!(file_name("ÄÖÜ"), "cv.json");
    }

    #[test]
    fn a_repeated_form_field_keeps_its_first_value() {
        let form = form_map(vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert_eq!(form["a"], "1");
    }

    #[test]
    fn copies_are_titled_within_the_limit() {
        let long = "t".repeat(TITLE_MAX);
        assert_eq!(copy_title(&long).as_str().chars().count(), TITLE_MAX);
        assert_eq!(copy_title("Main").as_str(), "Copy of Main");
    }
}
