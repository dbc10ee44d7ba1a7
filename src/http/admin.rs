//! `/admin`: the superusers' dashboard, and `/admin/analytics.json`, its data for scripts.
//!
//! Everything shown comes from small read models that the projector keeps up to date
//! (`projections::analytics`), plus the newest rows of two indexes of `users` and the job-run
//! table, so the page costs the same with a hundred users or a million events. Days and hours
//! are UTC.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use minijinja::context;
use projections::analytics::{self, Counts, RecentKind, Series, Totals, MAX_DAYS};
use projections::job_runs;
use projections::time_format::from_sql;
use serde::Serialize;
use time::OffsetDateTime;

use crate::charts;
use crate::http::error::Result;
use crate::http::extract::{Page, RequireSuperuser};
use crate::http::AppState;

/// Days shown when `?days=` is absent or not a number in `1..=MAX_DAYS`.
const DEFAULT_DAYS: u32 = 30;
/// The periods the dashboard offers as links (any `1..=MAX_DAYS` works in the URL).
const PERIODS: [u32; 2] = [30, 90];
/// Lines of "recent activity".
const RECENT: u32 = 10;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/analytics.json", get(analytics_json))
}

/// The `days` query parameter: a whole number of days in `1..=MAX_DAYS`, else the default. A
/// malformed query is not an error worth a 400 for a period selector; it just shows the default.
fn requested_days(query: Option<&str>) -> u32 {
    let pairs: Vec<(String, String)> = query
        .and_then(|query| serde_urlencoded::from_str(query).ok())
        .unwrap_or_default();
    pairs
        .iter()
        .find(|(name, _)| name == "days")
        .and_then(|(_, value)| value.trim().parse::<u32>().ok())
        .filter(|days| (1..=MAX_DAYS).contains(days))
        .unwrap_or(DEFAULT_DAYS)
}

/// `/admin/analytics.json`, field for field (see DESIGN.md §3).
#[derive(Debug, Serialize)]
struct AnalyticsJson {
    days: Vec<String>,
    series: SeriesJson,
    totals: TotalsJson,
}

#[derive(Debug, Serialize)]
struct SeriesJson {
    signups: Vec<i64>,
    logins: Vec<i64>,
    cvs_created: Vec<i64>,
    cv_edits: Vec<i64>,
}

#[derive(Debug, Serialize)]
struct TotalsJson {
    users: i64,
    active_users: i64,
    superusers: i64,
    cvs: i64,
    archived_cvs: i64,
}

impl AnalyticsJson {
    fn new(series: Series, totals: Totals) -> Self {
        Self {
            days: series.days,
            series: SeriesJson {
                signups: series.signups,
                logins: series.logins,
                cvs_created: series.cvs_created,
                cv_edits: series.cv_edits,
            },
            totals: TotalsJson {
                users: totals.users,
                active_users: totals.active_users,
                superusers: totals.superusers,
                cvs: totals.cvs,
                archived_cvs: totals.archived_cvs,
            },
        }
    }
}

async fn analytics_json(
    State(state): State<AppState>,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let days = requested_days(query.as_deref());
    let today = OffsetDateTime::now_utc().date();
    let series = analytics::series(&state.pool, days, today).await?;
    let totals = analytics::totals(&state.pool).await?;
    Ok((
        // Figures about every account: not for shared caches, and always fresh.
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(AnalyticsJson::new(series, totals)),
    )
        .into_response())
}

/// `2026-11-28 12:34 UTC`.
fn display_time(at: OffsetDateTime) -> String {
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// One line of the "activity" table: a counter over the three periods.
#[derive(Serialize)]
struct WindowRow {
    label: &'static str,
    last_24h: i64,
    last_7d: i64,
    last_30d: i64,
}

fn window_rows(last_24h: &Counts, last_7d: &Counts, last_30d: &Counts) -> Vec<WindowRow> {
    let row = |label, pick: fn(&Counts) -> i64| WindowRow {
        label,
        last_24h: pick(last_24h),
        last_7d: pick(last_7d),
        last_30d: pick(last_30d),
    };
    vec![
        row("Sign-ups", |c| c.signups),
        row("Logins", |c| c.logins),
        row("Failed logins", |c| c.failed_logins),
        row("CVs created", |c| c.cvs_created),
        row("CV edits", |c| c.cv_edits),
    ]
}

async fn dashboard(
    State(state): State<AppState>,
    page: Page,
    RequireSuperuser(_admin): RequireSuperuser,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let pool = &state.pool;
    let days = requested_days(query.as_deref());
    // One instant for every figure on the page, so they agree with each other.
    let now = OffsetDateTime::now_utc();
    // The figures are shared by the views until the read models move or the minute turns
    // (see `crate::http::memo`).
    // Job runs are not events, so they are read each time (with the position, in one go).
    let (position, job_runs) = job_runs::all_with_position(pool).await?;
    let key = (now.unix_timestamp().div_euclid(60), days);
    let figures = state
        .memos
        .dashboard
        .get_or_compute(position, key, render_figures(&state, days, now))
        .await?;
    let jobs: Vec<minijinja::Value> = job_runs
        .iter()
        .map(|job| {
            context! {
                name => job.name,
                last_run => from_sql(&job.last_run_at)
                    .map(display_time)
                    .unwrap_or_else(|| job.last_run_at.clone()),
                ok => job.ok,
                detail => job.detail,
            }
        })
        .collect();
    Ok(page
        .render("admin/index.html", context! { jobs => jobs, ..figures })
        .await?
        .into_response())
}

/// The dashboard's figures as HTML (`figures_html`, `recent_html`): rendered once for every
/// view that shares them, the charts and tables were most of the page's rendering.
async fn render_figures(
    state: &AppState,
    days: u32,
    now: OffsetDateTime,
) -> Result<minijinja::Value> {
    let figures = compute_figures(&state.pool, days, now).await?;
    let html = |template: &str| -> Result<minijinja::Value> {
        let html = state.templates.render(template, figures.clone())?;
        Ok(minijinja::Value::from_safe_string(html))
    };
    Ok(context! {
        figures_html => html("admin/_dashboard_figures.html")?,
        recent_html => html("admin/_dashboard_recent.html")?,
    })
}

/// Every figure of the dashboard except the job runs, as of `now`.
async fn compute_figures(
    pool: &sqlx::SqlitePool,
    days: u32,
    now: OffsetDateTime,
) -> Result<minijinja::Value> {
    let today = now.date();
    let totals = analytics::totals(pool).await?;
    let windows = analytics::window_counts(pool, now).await?;
    let active_7d = analytics::active_users(pool, 7, today).await?;
    let active_30d = analytics::active_users(pool, 30, today).await?;
    let series = analytics::series(pool, days, today).await?;
    let recent = analytics::recent_activity(pool, RECENT).await?;
    let latest = audit_lines(pool, &projections::audit::AuditFilter::default(), RECENT).await?;

    let charts: Vec<minijinja::Value> = [
        ("Sign-ups per day", &series.signups),
        ("CVs created per day", &series.cvs_created),
        ("CV edits per day", &series.cv_edits),
        ("Logins per day", &series.logins),
    ]
    .into_iter()
    .map(|(title, values)| {
        context! {
            title => title,
            svg => charts::line_chart(title, &series.days, values),
        }
    })
    .collect();
    // The numbers behind the charts, newest day first, for those who cannot see them.
    let table: Vec<minijinja::Value> = (0..series.days.len())
        .rev()
        .map(|i| {
            context! {
                day => series.days[i],
                signups => series.signups[i],
                logins => series.logins[i],
                cvs_created => series.cvs_created[i],
                cv_edits => series.cv_edits[i],
            }
        })
        .collect();
    let recent: Vec<minijinja::Value> = recent
        .iter()
        .map(|item| {
            context! {
                user_id => item.user_id.to_string(),
                username => item.username,
                what => match item.kind {
                    RecentKind::SignedUp => "signed up",
                    RecentKind::LoggedIn => "logged in",
                },
                at => display_time(item.at),
            }
        })
        .collect();

    Ok(context! {
        totals => context! {
            users => totals.users,
            active_users => totals.active_users,
            deactivated_users => totals.deactivated_users,
            superusers => totals.superusers,
            cvs => totals.cvs,
            active_cvs => totals.cvs - totals.archived_cvs,
            archived_cvs => totals.archived_cvs,
        },
        windows => window_rows(&windows.last_24h, &windows.last_7d, &windows.last_30d),
        active_7d => active_7d,
        active_30d => active_30d,
        days => days,
        periods => PERIODS,
        charts => charts,
        table => table,
        recent => recent,
        latest => latest,
        generated_at => display_time(now),
    })
}

/// The newest `limit` lines of the audit trail matching `filter`, ready for a template: time,
/// actor name, what happened and the target's link. Shared by the dashboard and user pages.
pub async fn audit_lines(
    pool: &sqlx::SqlitePool,
    filter: &projections::audit::AuditFilter,
    limit: u32,
) -> Result<Vec<minijinja::Value>> {
    let rows = projections::audit::page(pool, filter, None, limit).await?;
    let mut actors: Vec<uuid::Uuid> = rows.iter().filter_map(|row| row.actor_id).collect();
    actors.sort_unstable();
    actors.dedup();
    let names = projections::users::usernames(pool, &actors).await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let actor = match row.actor_id {
            Some(id) => names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "erased user".to_owned()),
            None if row.ip.is_some() => "anonymous".to_owned(),
            None => "system".to_owned(),
        };
        let target = match row.aggregate_type.as_str() {
            "User" => format!("/admin/users/{}", row.aggregate_id),
            "Cv" => format!("/cvs/{}", row.aggregate_id),
            _ => String::new(),
        };
        lines.push(context! {
            position => row.position,
            at => row.at.map(display_time).unwrap_or_default(),
            actor => actor,
            actor_id => row.actor_id.map(|id| id.to_string()),
            summary => row.summary,
            event_type => row.event_type,
            target => target,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_thirty_and_accept_one_to_the_maximum() {
        assert_eq!(requested_days(None), 30);
        assert_eq!(requested_days(Some("days=90")), 90);
        assert_eq!(requested_days(Some("days=1")), 1);
        assert_eq!(requested_days(Some("days=365")), 365);
        assert_eq!(requested_days(Some("x=1&days=7")), 7);
    }

    #[test]
    fn a_bad_period_falls_back_to_thirty_days() {
        for query in [
            "days=0", "days=366", "days=-5", "days=abc", "days=", "days=1e3", "%%%",
        ] {
            assert_eq!(requested_days(Some(query)), 30, "{query}");
        }
    }
}
