//! `/admin/audit`: the audit trail. Every event ever recorded, newest first, filtered by actor,
//! aggregate, event type and date range, paged with a keyset cursor (`before`), with a detail
//! view per event and downloads of the filtered trail as CSV or JSON Lines.
//!
//! Superusers only. Every route is a GET: nothing here can change or delete an event (and the
//! database refuses to, with triggers on the `events` table). Secrets in payloads are replaced by
//! [`audit::redact`] before anything is shown or exported.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use projections::audit::{self, AuditFilter, AuditRow};
use projections::{cvs, users};
use serde::Serialize;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::http::error::{Error, Result};
use crate::http::extract::{Page, RequireSuperuser};
use crate::http::AppState;

/// Events per page.
const PAGE_SIZE: u32 = 50;

/// Events read per query while exporting: bounded memory per step, few round trips.
const EXPORT_CHUNK: u32 = 1_000;

/// Most events in one download. A larger trail is cut here with a note saying how to continue
/// (`before=`), so a download can never exhaust the server's memory.
const EXPORT_MAX_ROWS: usize = 100_000;

/// Most bytes in one download (JSON Lines carry payloads, which can be large CV documents).
const EXPORT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Longest user agent shown in a table cell (the full text is in the cell's title).
const USER_AGENT_SHOWN: usize = 40;

/// Longest free-text filter value accepted (ids are 36 characters; event types are short).
const FILTER_MAX: usize = 100;

/// Routes of this module. The static `export.*` segments take precedence over `{position}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(trail))
        .route("/admin/audit/export.csv", get(export_csv))
        .route("/admin/audit/export.jsonl", get(export_jsonl))
        .route("/admin/audit/{position}", get(detail))
}

/// The filter fields as typed, kept to show them again.
#[derive(Debug, Default, Serialize)]
struct FilterInput {
    actor: String,
    aggregate_id: String,
    event_type: String,
    from: String,
    to: String,
    before: String,
}

impl FilterInput {
    /// Reads the query string; for a repeated name the first value counts. An unreadable query
    /// string is treated as empty (a GET with garbage should still show the trail).
    fn from_query(raw: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> = raw
            .and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_owned())
                .unwrap_or_default()
        };
        Self {
            actor: get("actor"),
            aggregate_id: get("aggregate_id"),
            event_type: get("event_type"),
            from: get("from"),
            to: get("to"),
            before: get("before"),
        }
    }

    /// The filter and cursor, or a message per invalid field.
    fn parse(
        &self,
    ) -> std::result::Result<(AuditFilter, Option<i64>), BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
        let mut filter = AuditFilter::default();
        if !self.actor.is_empty() {
            match Uuid::parse_str(&self.actor) {
                Ok(actor) => filter.actor = Some(actor),
                Err(_) => {
                    errors.insert("actor", "Enter a user id (a UUID), or leave empty.".into());
                }
            }
        }
        if !self.aggregate_id.is_empty() {
            if self.aggregate_id.chars().count() > FILTER_MAX {
                errors.insert("aggregate_id", "That id is too long.".into());
            } else {
                filter.aggregate_id = Some(self.aggregate_id.clone());
            }
        }
        if !self.event_type.is_empty() {
            let plausible = self.event_type.len() <= FILTER_MAX
                && self
                    .event_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if plausible {
                filter.event_type = Some(self.event_type.clone());
            } else {
                errors.insert("event_type", "Choose an event type from the list.".into());
            }
        }
        let mut date = |name: &'static str, text: &str| -> Option<Date> {
            if text.is_empty() {
                return None;
            }
            let parsed = Date::parse(text, format_description!("[year]-[month]-[day]")).ok();
            if parsed.is_none() {
                errors.insert(name, "Enter a date as YYYY-MM-DD.".into());
            }
            parsed
        };
        filter.from = date("from", &self.from);
        filter.to = date("to", &self.to);
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if to < from {
                errors.insert("to", "The end date is before the start date.".into());
            }
        }
        let mut before = None;
        if !self.before.is_empty() {
            match self.before.parse::<i64>() {
                Ok(position) if position > 0 => before = Some(position),
                _ => {
                    errors.insert(
                        "before",
                        "That page link is not valid; start again from the newest events.".into(),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok((filter, before))
        } else {
            Err(errors)
        }
    }

    /// The filters (not the cursor) as a query string, for page and download links.
    fn query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("actor", self.actor.as_str()),
            ("aggregate_id", self.aggregate_id.as_str()),
            ("event_type", self.event_type.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// `path` with the filters and, if given, the cursor.
    fn link(&self, path: &str, before: Option<i64>) -> String {
        let mut query = self.query();
        if let Some(before) = before {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!("before={before}"));
        }
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// Looks up the users and CVs that rows name, once each per request.
struct Names<'a> {
    state: &'a AppState,
    users: HashMap<Uuid, Option<String>>,
    cvs: HashMap<Uuid, Option<String>>,
}

impl<'a> Names<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            state,
            users: HashMap::new(),
            cvs: HashMap::new(),
        }
    }

    /// Looks up, in one query per kind, every user and CV that `rows` name and that is not
    /// known yet; the per-row lookups after it find them here.
    async fn preload(&mut self, rows: &[audit::AuditRow]) -> Result<()> {
        let mut user_ids = Vec::new();
        let mut cv_ids = Vec::new();
        for row in rows {
            user_ids.extend(row.actor_id);
            if let Ok(id) = Uuid::parse_str(&row.aggregate_id) {
                match row.aggregate_type.as_str() {
                    "User" => user_ids.push(id),
                    "Cv" => cv_ids.push(id),
                    _ => {}
                }
            }
        }
        user_ids.retain(|id| !self.users.contains_key(id));
        user_ids.sort_unstable();
        user_ids.dedup();
        cv_ids.retain(|id| !self.cvs.contains_key(id));
        cv_ids.sort_unstable();
        cv_ids.dedup();
        let mut found = users::usernames(&self.state.pool, &user_ids).await?;
        for id in user_ids {
            self.users.insert(id, found.remove(&id));
        }
        let mut found = cvs::titles(&self.state.pool, &cv_ids).await?;
        for id in cv_ids {
            self.cvs.insert(id, found.remove(&id));
        }
        Ok(())
    }

    /// The username, if the account (still) exists.
    async fn user(&mut self, id: Uuid) -> Result<Option<String>> {
        if let Some(name) = self.users.get(&id) {
            return Ok(name.clone());
        }
        let name = users::find_by_id(&self.state.pool, id)
            .await?
            .map(|user| user.username);
        self.users.insert(id, name.clone());
        Ok(name)
    }

    /// The CV's title, if it (still) exists.
    async fn cv(&mut self, id: Uuid) -> Result<Option<String>> {
        if let Some(title) = self.cvs.get(&id) {
            return Ok(title.clone());
        }
        let title = cvs::find(&self.state.pool, id).await?.map(|cv| cv.title);
        self.cvs.insert(id, title.clone());
        Ok(title)
    }
}

/// A link to something a row names.
#[derive(Debug, Serialize)]
struct Link {
    href: Option<String>,
    label: String,
}

/// One row as the templates show it.
#[derive(Debug, Serialize)]
struct RowView {
    position: i64,
    /// `2026-11-28 12:34:56` (UTC), or empty if unknown.
    at: String,
    /// RFC 3339, for `<time datetime>`.
    at_iso: String,
    actor: Option<Link>,
    /// Who acted when no one was logged in: `anonymous` for a web request, `system` otherwise
    /// (the command line, jobs).
    no_actor: &'static str,
    summary: String,
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    target: Link,
    ip: String,
    user_agent: String,
    user_agent_short: String,
    request_id: String,
}

fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

async fn row_view(names: &mut Names<'_>, row: AuditRow) -> Result<RowView> {
    // A user or CV the read models no longer hold was erased (nothing else removes one): its
    // rows stay in the trail, named as erased and linking nowhere.
    let user_link = |id: Uuid, name: Option<String>| match name {
        Some(label) => Link {
            href: Some(format!("/admin/users/{id}")),
            label,
        },
        None => Link {
            href: None,
            label: format!("erased user {}", short_id(&id.to_string())),
        },
    };
    let actor = match row.actor_id {
        Some(id) => Some(user_link(id, names.user(id).await?)),
        None => None,
    };
    let target_id = Uuid::parse_str(&row.aggregate_id).ok();
    let target = match (row.aggregate_type.as_str(), target_id) {
        ("User", Some(id)) => user_link(id, names.user(id).await?),
        ("Cv", Some(id)) => match names.cv(id).await? {
            Some(title) => Link {
                href: Some(format!("/cvs/{id}")),
                label: format!("CV “{title}”"),
            },
            None => Link {
                href: None,
                label: format!("CV {} of an erased user", short_id(&row.aggregate_id)),
            },
        },
        _ => Link {
            href: None,
            label: format!("{} {}", row.aggregate_type, short_id(&row.aggregate_id)),
        },
    };
    // Only web requests record an IP, so an event without an actor but with an IP came from
    // someone not logged in (a failed login, a reset request), not from the machine itself.
    let no_actor = if row.ip.is_some() {
        "anonymous"
    } else {
        "system"
    };
    let user_agent = row.user_agent.unwrap_or_default();
    let user_agent_short = if user_agent.chars().count() > USER_AGENT_SHOWN {
        let cut: String = user_agent.chars().take(USER_AGENT_SHOWN - 1).collect();
        format!("{cut}…")
    } else {
        user_agent.clone()
    };
    Ok(RowView {
        position: row.position,
        at: row.at.map(display_time).unwrap_or_default(),
        at_iso: row.at.map(iso_time).unwrap_or_default(),
        actor,
        no_actor,
        summary: row.summary,
        event_type: row.event_type,
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id,
        target,
        ip: row.ip.unwrap_or_default(),
        user_agent,
        user_agent_short,
        request_id: row.request_id.unwrap_or_default(),
    })
}

fn display_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

fn iso_time(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The trail page, or the filter form again with a message per invalid field (422).
async fn trail(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let input = FilterInput::from_query(raw.as_deref());
    let (filter, before) = match input.parse() {
        Ok(parsed) => parsed,
        Err(errors) => return invalid_filters(&state, &page, &input, errors).await,
    };
    // The rows are shared by the views of this query until the read models move on (see
    // `crate::http::memo`).
    let position = projections::projector::read_position(&state.pool).await?;
    let listing = state
        .memos
        .audit
        .get_or_compute(
            position,
            raw.unwrap_or_default(),
            listing(&state, &input, &filter, before),
        )
        .await?;
    page.render(
        "admin/audit.html",
        context! {
            filters => input,
            errors => BTreeMap::<&str, String>::new(),
            filtered => !input.query().is_empty(),
            newest => before.map(|_| input.link("/admin/audit", None)),
            csv_href => input.link("/admin/audit/export.csv", before),
            jsonl_href => input.link("/admin/audit/export.jsonl", before),
            ..listing
        },
    )
    .await
    .map(IntoResponse::into_response)
}

/// One page of the trail: its rows (as the template shows them), the link to the older page
/// and the event types for the filter's list.
async fn listing(
    state: &AppState,
    input: &FilterInput,
    filter: &audit::AuditFilter,
    before: Option<i64>,
) -> Result<minijinja::Value> {
    let mut rows = audit::page(&state.pool, filter, before, PAGE_SIZE + 1).await?;
    // One row more than a page tells whether an older page exists without counting.
    let has_older = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    let older = rows
        .last()
        .filter(|_| has_older)
        .map(|last| input.link("/admin/audit", Some(last.position)));
    let mut names = Names::new(state);
    names.preload(&rows).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(row_view(&mut names, row).await?);
    }
    // The table is rendered here, once for every view that shares this listing: with fifty
    // rows it was most of the page's rendering.
    let rows_html = if views.is_empty() {
        None
    } else {
        let html = state
            .templates
            .render("admin/_audit_rows.html", context! { rows => views })?;
        Some(minijinja::Value::from_safe_string(html))
    };
    Ok(context! {
        rows_html => rows_html,
        older => older,
        event_types => audit::event_types(&state.pool).await?,
    })
}

async fn invalid_filters(
    state: &AppState,
    page: &Page,
    input: &FilterInput,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    page.render_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "admin/audit.html",
        context! {
            filters => input,
            errors => errors,
            event_types => audit::event_types(&state.pool).await?,
            filtered => true,
        },
    )
    .await
}

/// One event with its (redacted) payload and metadata.
async fn detail(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    Path(position): Path<String>,
) -> Result<Response> {
    let position: i64 = position.parse().map_err(|_| Error::NotFound)?;
    let (row, payload, metadata) = audit::entry(&state.log, position)
        .await?
        .ok_or(Error::NotFound)?;
    let pretty = |value: &serde_json::Value| {
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    };
    let mut names = Names::new(&state);
    let actor_id = row.actor_id.map(|id| id.to_string());
    let view = row_view(&mut names, row).await?;
    page.render(
        "admin/audit_event.html",
        context! {
            event => view,
            actor_id => actor_id,
            payload => pretty(&payload),
            metadata => pretty(&metadata),
        },
    )
    .await
    .map(IntoResponse::into_response)
}

/// The filtered trail as CSV (RFC 4180).
async fn export_csv(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let input = FilterInput::from_query(raw.as_deref());
    let (filter, before) = match input.parse() {
        Ok(parsed) => parsed,
        Err(errors) => return invalid_filters(&state, &page, &input, errors).await,
    };
    let mut body = csv_record(&[
        "position",
        "at",
        "actor_id",
        "actor",
        "aggregate_type",
        "aggregate_id",
        "event_type",
        "summary",
        "ip",
        "user_agent",
        "request_id",
    ]);
    let mut names = Names::new(&state);
    let mut export = Export::new(before);
    while let Some(rows) = export.next_chunk(&state, &filter, body.len()).await? {
        names.preload(&rows).await?;
        for row in rows {
            let actor = match row.actor_id {
                Some(id) => names.user(id).await?.unwrap_or_default(),
                None => String::new(),
            };
            body.push_str(&csv_record(&[
                &row.position.to_string(),
                &row.at.map(iso_time).unwrap_or_default(),
                &row.actor_id.map(|id| id.to_string()).unwrap_or_default(),
                &actor,
                &row.aggregate_type,
                &row.aggregate_id,
                &row.event_type,
                &row.summary,
                row.ip.as_deref().unwrap_or_default(),
                row.user_agent.as_deref().unwrap_or_default(),
                row.request_id.as_deref().unwrap_or_default(),
            ]));
        }
    }
    if let Some(note) = export.truncation_note(&input, "/admin/audit/export.csv") {
        body.push_str(&csv_record(&[&format!("# {note}")]));
    }
    Ok(download(
        body,
        "text/csv; charset=utf-8",
        "audit.csv",
        export.truncated_at,
    ))
}

/// One line of the JSON Lines export.
#[derive(Serialize)]
struct JsonLine<'a> {
    position: i64,
    at: Option<String>,
    actor_id: Option<String>,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    event_type: &'a str,
    summary: &'a str,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    payload: serde_json::Value,
}

/// The filtered trail as JSON Lines, each with the event's redacted payload.
async fn export_jsonl(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let input = FilterInput::from_query(raw.as_deref());
    let (filter, before) = match input.parse() {
        Ok(parsed) => parsed,
        Err(errors) => return invalid_filters(&state, &page, &input, errors).await,
    };
    let mut body = String::new();
    let mut export = Export::new(before);
    while let Some(rows) = export.next_chunk(&state, &filter, body.len()).await? {
        let positions: Vec<i64> = rows.iter().map(|row| row.position).collect();
        let mut payloads = audit::payloads(&state.log, &positions).await?;
        for row in &rows {
            let line = JsonLine {
                position: row.position,
                at: row.at.map(iso_time),
                actor_id: row.actor_id.map(|id| id.to_string()),
                aggregate_type: &row.aggregate_type,
                aggregate_id: &row.aggregate_id,
                event_type: &row.event_type,
                summary: &row.summary,
                ip: row.ip.as_deref(),
                user_agent: row.user_agent.as_deref(),
                request_id: row.request_id.as_deref(),
                payload: payloads
                    .remove(&row.position)
                    .unwrap_or(serde_json::Value::Null),
            };
            let json = serde_json::to_string(&line)
                .map_err(|error| Error::Internal(anyhow::Error::new(error)))?;
            body.push_str(&json);
            body.push('\n');
        }
    }
    if let Some(note) = export.truncation_note(&input, "/admin/audit/export.jsonl") {
        let json = serde_json::json!({ "truncated": true, "note": note });
        body.push_str(&json.to_string());
        body.push('\n');
    }
    Ok(download(
        body,
        "application/x-ndjson; charset=utf-8",
        "audit.jsonl",
        export.truncated_at,
    ))
}

/// Walks the filtered trail for a download in keyset chunks, stopping at the size limits.
struct Export {
    before: Option<i64>,
    rows: usize,
    done: bool,
    /// Set when the limits cut the trail: the position the rest continues before.
    truncated_at: Option<i64>,
}

impl Export {
    fn new(before: Option<i64>) -> Self {
        Self {
            before,
            rows: 0,
            done: false,
            truncated_at: None,
        }
    }

    /// The next rows to write (`None` when finished), given how large the body already is.
    async fn next_chunk(
        &mut self,
        state: &AppState,
        filter: &AuditFilter,
        bytes_so_far: usize,
    ) -> Result<Option<Vec<AuditRow>>> {
        if self.done {
            return Ok(None);
        }
        let mut rows = audit::page(&state.pool, filter, self.before, EXPORT_CHUNK).await?;
        if rows.len() < EXPORT_CHUNK as usize {
            self.done = true;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        // Only rows that exist are cut off, so a trail of exactly the limit is not "truncated".
        let room = EXPORT_MAX_ROWS - self.rows;
        if bytes_so_far >= EXPORT_MAX_BYTES || room == 0 {
            self.truncated_at = self.before;
            self.done = true;
            return Ok(None);
        }
        if rows.len() > room {
            rows.truncate(room);
            self.truncated_at = rows.last().map(|row| row.position);
            self.done = true;
        }
        self.rows += rows.len();
        self.before = rows.last().map(|row| row.position);
        Ok(Some(rows))
    }

    /// A closing line for a cut-off download: how to fetch the rest.
    fn truncation_note(&self, input: &FilterInput, path: &str) -> Option<String> {
        self.truncated_at.map(|position| {
            format!(
                "export stopped after {} events; the rest continues at {}",
                self.rows,
                input.link(path, Some(position))
            )
        })
    }
}

fn download(
    body: String,
    content_type: &'static str,
    filename: &'static str,
    truncated_at: Option<i64>,
) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
            // The trail names people and addresses: no copies in shared caches or history.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response();
    if let Some(position) = truncated_at {
        if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
            response
                .headers_mut()
                .insert("x-export-continues-before", value);
        }
    }
    response
}

/// One CSV record (with its CRLF): each field made formula-safe and quoted when RFC 4180 needs
/// it.
fn csv_record(fields: &[&str]) -> String {
    let mut record = fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",");
    record.push_str("\r\n");
    record
}

/// A field for a spreadsheet: a value a spreadsheet would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or carriage return; OWASP's list) gets a leading `'`, so a username such
/// as `=HYPERLINK(…)` stays text. Then, if it holds a comma, quote or line break, it is quoted
/// with inner quotes doubled.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_are_left_alone() {
        assert_eq!(csv_field("logged in"), "logged in");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_record(&["a", "b"]), "a,b\r\n");
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r\nlf"), "\"cr\r\nlf\"");
    }

    #[test]
    fn formulas_become_text() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
    }

    #[test]
    fn filters_round_trip_into_links() {
        let input = FilterInput::from_query(Some("event_type=UserLoginFailed&from=2026-01-01&x=1"));
        assert_eq!(
            input.link("/admin/audit", Some(42)),
            "/admin/audit?event_type=UserLoginFailed&from=2026-01-01&before=42"
        );
        assert_eq!(
            FilterInput::default().link("/admin/audit", None),
            "/admin/audit"
        );
    }

    #[test]
    fn invalid_filters_are_named() {
        let input = FilterInput::from_query(Some(
            "actor=nope&from=2024-13-45&to=2024-01-01&before=-3&event_type=a%20b",
        ));
        let errors = input.parse().unwrap_err();
        for field in ["actor", "from", "before", "event_type"] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
        let reversed = FilterInput::from_query(Some("from=2024-02-01&to=2024-01-01"));
        assert!(reversed.parse().unwrap_err().contains_key("to"));
    }
}
