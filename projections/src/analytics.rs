//! The analytics read models behind the admin dashboard, and the queries that read them.
//!
//! The projector calls [`count_event`] for every event and [`apply_user`] or [`apply_cv`] for
//! each readable one, and each call moves a handful of counters: per UTC day (`daily_stats`), per UTC hour (`hourly_stats`), who was
//! active on which day (`activity`, and each user's last such day: `last_active`, counted per
//! day in `last_active_days`), and running totals (`totals`). Reading the dashboard is
//! then a few index lookups over a few dozen rows, whether the log holds a hundred events or a
//! million: no query here scans `events` or every user.
//!
//! Every row is a pure function of the log. An event's time is the `at` of its metadata (when
//! the command was accepted), else the time the event itself carries; never the clock of the
//! projector. So a rebuild — or `rebuild-projections --verify` — produces the same rows.
//!
//! What counts: a sign-up is `UserEvent::Registered`, a login `LoggedIn`, a failed login
//! `LoginFailed`, a CV created `CvEvent::Created`, and every other `CvEvent` is a CV edit. A
//! user is *active* on a day when they signed up themselves, logged in, or changed a CV (as the
//! event's actor) that day.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use domain::{CvEvent, Role, UserEvent};
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use time::{Date, Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::event_log::{EventMetadata, StoredEvent};
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns (emptied by a rebuild, compared by `--verify`).
pub const TABLES: &[&str] = &[
    "daily_stats",
    "hourly_stats",
    "activity",
    "last_active",
    "last_active_days",
    "totals",
];

/// Longest period the queries accept, in days; longer requests are cut to it.
pub const MAX_DAYS: u32 = 365;

/// Names of the rows of `totals`.
mod total {
    pub const USERS: &str = "users";
    pub const ACTIVE_USERS: &str = "active_users";
    pub const DEACTIVATED_USERS: &str = "deactivated_users";
    pub const SUPERUSERS: &str = "superusers";
    pub const CVS: &str = "cvs";
    pub const ARCHIVED_CVS: &str = "archived_cvs";
}

/// One counter column of `daily_stats` and `hourly_stats`.
#[derive(Debug, Clone, Copy)]
enum Counter {
    Signups,
    Logins,
    FailedLogins,
    CvsCreated,
    CvEdits,
}

/// The counter columns, in the order [`Counter::index`] numbers them.
const COUNTER_COLUMNS: [&str; 5] = [
    "signups",
    "logins",
    "failed_logins",
    "cvs_created",
    "cv_edits",
];

/// What a batch of events adds to the analytics tables, written together by [`flush`].
#[derive(Debug, Default)]
pub struct Pending {
    /// Counter increments per day and per hour, in [`COUNTER_COLUMNS`] order.
    daily: BTreeMap<String, [i64; 5]>,
    hourly: BTreeMap<String, [i64; 5]>,
    /// (user, day) pairs seen active.
    activity: BTreeSet<(String, String)>,
    /// Moves of the running totals.
    totals: BTreeMap<&'static str, i64>,
}

/// Rows per multi-row INSERT.
const ROWS_PER_STATEMENT: usize = 500;

impl Counter {
    /// Its place in [`COUNTER_COLUMNS`].
    fn index(self) -> usize {
        match self {
            Counter::Signups => 0,
            Counter::Logins => 1,
            Counter::FailedLogins => 2,
            Counter::CvsCreated => 3,
            Counter::CvEdits => 4,
        }
    }
}

/// Counts what `stored` says happened — a sign-up, a login, a failed login, a CV created or
/// edited — and who was active, from the event's type, time and actor alone. Those facts
/// survive an erasure (the event's personal fields do not), so the per-day figures stay as they
/// were, and a rebuild over an erased person's events counts exactly what was counted live.
pub fn count_event(pending: &mut Pending, stored: &StoredEvent, metadata: &EventMetadata) {
    let Some(at) = metadata.at.or_else(|| event_time(stored)) else {
        // Only events written without metadata lack a time; guessing one (the clock) would make
        // a rebuild differ, so they stay out of the per-day figures.
        tracing::debug!(
            position = stored.position,
            "event without a time: not counted per day"
        );
        return;
    };
    let subject = stored.aggregate_id.as_str();
    match (stored.aggregate_type.as_str(), stored.event_type.as_str()) {
        ("User", "UserRegistered") => {
            count(pending, Counter::Signups, at);
            // Signing up leaves the new user logged in, so it is activity; an account made by
            // an administrator is not (the administrator's own logins count for them).
            let by_themselves = metadata
                .actor
                .is_none_or(|actor| actor.to_string() == subject);
            if by_themselves {
                mark_active(pending, subject, at);
            }
        }
        ("User", "UserLoggedIn") => {
            count(pending, Counter::Logins, at);
            mark_active(pending, subject, at);
        }
        ("User", "UserLoginFailed") => count(pending, Counter::FailedLogins, at),
        ("Cv", event_type) => {
            let counter = if event_type == "CvCreated" {
                Counter::CvsCreated
            } else {
                Counter::CvEdits
            };
            count(pending, counter, at);
            if let Some(actor) = metadata.actor {
                mark_active(pending, &actor.to_string(), at);
            }
        }
        _ => {}
    }
}

/// The time an event carries itself (`registered_at`, `at` or `created_at`: public fields,
/// kept when the rest of an erased person's event is gone), for events without metadata.
fn event_time(stored: &StoredEvent) -> Option<OffsetDateTime> {
    let fields = stored.payload.as_object()?.values().next()?;
    ["registered_at", "at", "created_at"]
        .iter()
        .find_map(|name| fields.get(name)?.as_str())
        .and_then(|text| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
}

/// Moves the running totals for one User event (its transition between the totals).
pub fn apply_user(pending: &mut Pending, event: &UserEvent) {
    match event {
        UserEvent::Registered { role, .. } => {
            add_total(pending, total::USERS, 1);
            add_total(pending, total::ACTIVE_USERS, 1);
            if *role == Role::Superuser {
                add_total(pending, total::SUPERUSERS, 1);
            }
        }
        UserEvent::RoleChanged { from, to } => {
            if from != to {
                if *to == Role::Superuser {
                    add_total(pending, total::SUPERUSERS, 1);
                }
                if *from == Role::Superuser {
                    add_total(pending, total::SUPERUSERS, -1);
                }
            }
        }
        // The aggregate refuses to deactivate an inactive account (and the reverse), so each
        // of these events is a real transition between the two totals.
        UserEvent::Deactivated => {
            add_total(pending, total::ACTIVE_USERS, -1);
            add_total(pending, total::DEACTIVATED_USERS, 1);
        }
        UserEvent::Activated => {
            add_total(pending, total::DEACTIVATED_USERS, -1);
            add_total(pending, total::ACTIVE_USERS, 1);
        }
        // Erasure takes away what the read models still count: see [`erase`].
        UserEvent::Erased
        | UserEvent::LoggedIn { .. }
        | UserEvent::LoginFailed { .. }
        | UserEvent::ProfileUpdated { .. }
        | UserEvent::AvatarChanged { .. }
        | UserEvent::AvatarRemoved
        | UserEvent::PasswordChanged { .. }
        | UserEvent::PasswordResetRequested { .. }
        | UserEvent::PasswordReset { .. } => {}
    }
}

/// Moves the running totals for one Cv event.
pub fn apply_cv(pending: &mut Pending, event: &CvEvent) {
    match event {
        CvEvent::Created { .. } => add_total(pending, total::CVS, 1),
        CvEvent::Archived { .. } => add_total(pending, total::ARCHIVED_CVS, 1),
        CvEvent::Unarchived => add_total(pending, total::ARCHIVED_CVS, -1),
        CvEvent::Renamed { .. }
        | CvEvent::BasicsUpdated { .. }
        | CvEvent::EntryAdded { .. }
        | CvEvent::EntryUpdated { .. }
        | CvEvent::EntryRemoved { .. }
        | CvEvent::EntryMoved { .. }
        | CvEvent::VersionRestored { .. } => {}
    }
}

/// Takes an erased user, and their CVs, out of the running totals — exactly what their rows
/// in the `users` and `cvs` read models still count. Runs before those rows are deleted. A
/// rebuild never counts an erased person's events in the totals (they cannot be read), finds
/// no rows here, and so ends with the same totals.
pub async fn erase(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    let user: Option<(String, bool)> =
        sqlx::query_as("SELECT role, active FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((role, active)) = user {
        add_total(pending, total::USERS, -1);
        let status = if active {
            total::ACTIVE_USERS
        } else {
            total::DEACTIVATED_USERS
        };
        add_total(pending, status, -1);
        if role == Role::Superuser.as_str() {
            add_total(pending, total::SUPERUSERS, -1);
        }
    }
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM cvs WHERE owner_id = ?")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
    for status in statuses {
        add_total(pending, total::CVS, -1);
        if status == "archived" {
            add_total(pending, total::ARCHIVED_CVS, -1);
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH` and `YYYY-MM-DD` of `at` in UTC, or `None` for a time outside years
/// 0000–9999 (which the fixed-width text cannot hold).
fn hour_and_day(at: OffsetDateTime) -> Option<(String, String)> {
    let text = to_sql(at);
    let hour = text.get(..13)?.to_owned();
    let day = text.get(..10)?.to_owned();
    Some((hour, day))
}

/// Adds one to `counter` in the hour and the day of `at`.
fn count(pending: &mut Pending, counter: Counter, at: OffsetDateTime) {
    let Some((hour, day)) = hour_and_day(at) else {
        return;
    };
    pending.daily.entry(day).or_default()[counter.index()] += 1;
    pending.hourly.entry(hour).or_default()[counter.index()] += 1;
}

/// Moves the total `name` by `delta`.
fn add_total(pending: &mut Pending, name: &'static str, delta: i64) {
    *pending.totals.entry(name).or_default() += delta;
}

/// Records that `user_id` was active on the day of `at`.
fn mark_active(pending: &mut Pending, user_id: &str, at: OffsetDateTime) {
    if let Some((_, day)) = hour_and_day(at) {
        pending.activity.insert((user_id.to_owned(), day));
    }
}

/// Writes what [`count_event`], [`apply_user`], [`apply_cv`] and [`erase`] recorded. A total
/// that comes back to 0 loses its row, so the table has one form for each state whatever path
/// led to it: an erasure takes back what a person's events added, and a rebuild, which cannot
/// read those events, never adds it.
pub async fn flush(conn: &mut SqliteConnection, pending: &mut Pending) -> Result<(), sqlx::Error> {
    for (table, key, rows) in [
        ("daily_stats", "day", std::mem::take(&mut pending.daily)),
        ("hourly_stats", "hour", std::mem::take(&mut pending.hourly)),
    ] {
        let rows: Vec<(String, [i64; 5])> = rows.into_iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {table} ({key}, {}) ",
                COUNTER_COLUMNS.join(", ")
            ));
            insert.push_values(chunk, |mut values, (key, counts)| {
                values.push_bind(key);
                for count in counts {
                    values.push_bind(*count);
                }
            });
            let updates: Vec<String> = COUNTER_COLUMNS
                .iter()
                .map(|column| format!("{column} = {column} + excluded.{column}"))
                .collect();
            insert.push(format!(
                " ON CONFLICT ({key}) DO UPDATE SET {}",
                updates.join(", ")
            ));
            insert.build().execute(&mut *conn).await?;
        }
    }
    let activity: Vec<(String, String)> =
        std::mem::take(&mut pending.activity).into_iter().collect();
    for chunk in activity.chunks(ROWS_PER_STATEMENT) {
        QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO activity (user_id, day) ")
            .push_values(chunk, |mut values, (user, day)| {
                values.push_bind(user).push_bind(day);
            })
            .build()
            .execute(&mut *conn)
            .await?;
    }
    move_last_active(conn, &activity).await?;
    for (name, delta) in std::mem::take(&mut pending.totals) {
        if delta == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO totals (name, value) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )
        .bind(name)
        .bind(delta)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM totals WHERE name = ? AND value = 0")
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Moves each user's last active day forward to the newest day of `activity` (sorted by user,
/// then day), and the per-day counts of `last_active_days` with it.
async fn move_last_active(
    conn: &mut SqliteConnection,
    activity: &[(String, String)],
) -> Result<(), sqlx::Error> {
    // The newest day per user: the last pair of each user's run.
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for (user, day) in activity {
        newest.insert(user, day);
    }
    let users: Vec<(&str, &str)> = newest.into_iter().collect();
    let mut days: BTreeMap<String, i64> = BTreeMap::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut select =
            QueryBuilder::<Sqlite>::new("SELECT user_id, day FROM last_active WHERE user_id IN (");
        let mut ids = select.separated(", ");
        for (user, _) in chunk {
            ids.push_bind(*user);
        }
        select.push(")");
        let before: HashMap<String, String> = select
            .build_query_as::<(String, String)>()
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let moved: Vec<&(&str, &str)> = chunk
            .iter()
            .filter(|(user, day)| before.get(*user).is_none_or(|old| old.as_str() < *day))
            .collect();
        if moved.is_empty() {
            continue;
        }
        for (user, day) in &moved {
            if let Some(old) = before.get(*user) {
                *days.entry(old.clone()).or_default() -= 1;
            }
            *days.entry((*day).to_owned()).or_default() += 1;
        }
        QueryBuilder::<Sqlite>::new("INSERT INTO last_active (user_id, day) ")
            .push_values(&moved, |mut values, (user, day)| {
                values.push_bind(*user).push_bind(*day);
            })
            .push(" ON CONFLICT (user_id) DO UPDATE SET day = excluded.day")
            .build()
            .execute(&mut *conn)
            .await?;
    }
    let days: Vec<(String, i64)> = days.into_iter().filter(|(_, n)| *n != 0).collect();
    let mut emptied = false;
    for chunk in days.chunks(ROWS_PER_STATEMENT) {
        emptied |= chunk.iter().any(|(_, n)| *n < 0);
        // A day that loses users already has a row (its users were counted on it): the
        // negative counts always land on the update.
        QueryBuilder::<Sqlite>::new("INSERT INTO last_active_days (day, users) ")
            .push_values(chunk, |mut values, (day, n)| {
                values.push_bind(day).push_bind(*n);
            })
            .push(" ON CONFLICT (day) DO UPDATE SET users = users + excluded.users")
            .build()
            .execute(&mut *conn)
            .await?;
    }
    if emptied {
        // Rows count users, so a day nobody is last active on any more has none.
        sqlx::query("DELETE FROM last_active_days WHERE users = 0")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Every account ever registered (and not erased).
    pub users: i64,
    /// Accounts that are not deactivated.
    pub active_users: i64,
    /// Deactivated accounts.
    pub deactivated_users: i64,
    /// Accounts with the superuser role, active or not.
    pub superusers: i64,
    /// Every CV, archived or not.
    pub cvs: i64,
    /// Archived CVs.
    pub archived_cvs: i64,
}

/// The running totals (six rows; a missing row is 0).
pub async fn totals(pool: &SqlitePool) -> Result<Totals, sqlx::Error> {
    let rows = sqlx::query("SELECT name, value FROM totals")
        .fetch_all(pool)
        .await?;
    let mut totals = Totals::default();
    for row in rows {
        let name: String = row.try_get("name")?;
        let value: i64 = row.try_get("value")?;
        let slot = match name.as_str() {
            total::USERS => &mut totals.users,
            total::ACTIVE_USERS => &mut totals.active_users,
            total::DEACTIVATED_USERS => &mut totals.deactivated_users,
            total::SUPERUSERS => &mut totals.superusers,
            total::CVS => &mut totals.cvs,
            total::ARCHIVED_CVS => &mut totals.archived_cvs,
            _ => continue,
        };
        *slot = value;
    }
    Ok(totals)
}

/// Daily counts over a period, oldest day first, one entry per day in every vector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Series {
    /// The days, `YYYY-MM-DD` (UTC).
    pub days: Vec<String>,
    /// Sign-ups per day.
    pub signups: Vec<i64>,
    /// Successful logins per day.
    pub logins: Vec<i64>,
    /// CVs created per day.
    pub cvs_created: Vec<i64>,
    /// Changes to existing CVs per day.
    pub cv_edits: Vec<i64>,
}

/// `date` as `YYYY-MM-DD`, the key of `daily_stats` and `activity`.
pub fn day_key(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The first day of the `days` days that end with `today` (`today` itself for 0 or 1).
fn first_day(days: u32, today: Date) -> Date {
    let back = i64::from(days.clamp(1, MAX_DAYS)) - 1;
    today.checked_sub(Duration::days(back)).unwrap_or(Date::MIN)
}

/// The daily rows of a range of days: a search of the primary key.
const SERIES_SQL: &str = "SELECT day, signups, logins, cvs_created, cv_edits FROM daily_stats
                           WHERE day BETWEEN ? AND ?";

/// The daily counts of the `days` days ending with `today` (at most [`MAX_DAYS`]), with 0 for
/// days without a row. `days` = 0 gives empty vectors.
pub async fn series(pool: &SqlitePool, days: u32, today: Date) -> Result<Series, sqlx::Error> {
    if days == 0 {
        return Ok(Series::default());
    }
    let first = first_day(days, today);
    let rows = sqlx::query(SERIES_SQL)
        .bind(day_key(first))
        .bind(day_key(today))
        .fetch_all(pool)
        .await?;
    let mut by_day: HashMap<String, [i64; 4]> = HashMap::with_capacity(rows.len());
    for row in rows {
        by_day.insert(
            row.try_get("day")?,
            [
                row.try_get("signups")?,
                row.try_get("logins")?,
                row.try_get("cvs_created")?,
                row.try_get("cv_edits")?,
            ],
        );
    }
    let mut series = Series::default();
    let mut day = Some(first);
    while let Some(date) = day.filter(|date| *date <= today) {
        let key = day_key(date);
        let [signups, logins, cvs_created, cv_edits] =
            by_day.get(&key).copied().unwrap_or_default();
        series.days.push(key);
        series.signups.push(signups);
        series.logins.push(logins);
        series.cvs_created.push(cvs_created);
        series.cv_edits.push(cv_edits);
        day = date.next_day();
    }
    Ok(series)
}

/// The counters summed over one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Sign-ups.
    pub signups: i64,
    /// Successful logins.
    pub logins: i64,
    /// Refused logins.
    pub failed_logins: i64,
    /// CVs created.
    pub cvs_created: i64,
    /// Changes to existing CVs.
    pub cv_edits: i64,
}

/// The counters over the last 24 hours, 7 days and 30 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Windows {
    /// The current hour and the 23 before it.
    pub last_24h: Counts,
    /// Today (UTC) and the 6 days before it.
    pub last_7d: Counts,
    /// Today (UTC) and the 29 days before it.
    pub last_30d: Counts,
}

/// The SQL of [`sum`]; `table` and `key` are constants of this module, never input.
fn sum_sql(table: &str, key: &str) -> String {
    format!(
        "SELECT COALESCE(SUM(signups), 0) AS signups, COALESCE(SUM(logins), 0) AS logins,
                COALESCE(SUM(failed_logins), 0) AS failed_logins,
                COALESCE(SUM(cvs_created), 0) AS cvs_created,
                COALESCE(SUM(cv_edits), 0) AS cv_edits
           FROM {table} WHERE {key} BETWEEN ? AND ?"
    )
}

/// Sums the counters of `table` with `key` between `from` and `to` (inclusive; a primary-key
/// range, so an index search over at most a few dozen rows).
async fn sum(
    pool: &SqlitePool,
    table: &str,
    key: &str,
    from: &str,
    to: &str,
) -> Result<Counts, sqlx::Error> {
    let row = sqlx::query(&sum_sql(table, key))
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?;
    Ok(Counts {
        signups: row.try_get("signups")?,
        logins: row.try_get("logins")?,
        failed_logins: row.try_get("failed_logins")?,
        cvs_created: row.try_get("cvs_created")?,
        cv_edits: row.try_get("cv_edits")?,
    })
}

/// The counters of the last 24 hours (the 24 hourly rows up to and including the hour of
/// `now`), and of the last 7 and 30 days (daily rows up to and including `now`'s UTC day).
pub async fn window_counts(pool: &SqlitePool, now: OffsetDateTime) -> Result<Windows, sqlx::Error> {
    let now = now.to_offset(UtcOffset::UTC);
    let today = now.date();
    let hours = match (
        hour_and_day(now.saturating_sub(Duration::hours(23))),
        hour_and_day(now),
    ) {
        (Some((from, _)), Some((to, _))) => sum(pool, "hourly_stats", "hour", &from, &to).await?,
        _ => Counts::default(),
    };
    let days = |n: u32| (day_key(first_day(n, today)), day_key(today));
    let (from, to) = days(7);
    let last_7d = sum(pool, "daily_stats", "day", &from, &to).await?;
    let (from, to) = days(30);
    let last_30d = sum(pool, "daily_stats", "day", &from, &to).await?;
    Ok(Windows {
        last_24h: hours,
        last_7d,
        last_30d,
    })
}

/// Users whose last active day falls in a range of days: at most one row per day.
const ACTIVE_USERS_SQL: &str =
    "SELECT COALESCE(SUM(users), 0) FROM last_active_days WHERE day BETWEEN ? AND ?";

/// How many different users were active during the `days` days ending with `today` (0 for
/// `days` = 0): those whose last active day is one of them (the log holds no activity after
/// today, so "active since the first day" and "last active in the range" are the same users).
/// A sum over at most `days` rows, whatever the number of users.
pub async fn active_users(pool: &SqlitePool, days: u32, today: Date) -> Result<i64, sqlx::Error> {
    if days == 0 {
        return Ok(0);
    }
    sqlx::query_scalar(ACTIVE_USERS_SQL)
        .bind(day_key(first_day(days, today)))
        .bind(day_key(today))
        .fetch_one(pool)
        .await
}

/// What a user did, in the dashboard's "recent activity".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecentKind {
    /// The account was registered.
    SignedUp,
    /// The user's latest login.
    LoggedIn,
}

/// One line of the dashboard's "recent activity".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentActivity {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's name.
    pub username: String,
    /// What happened.
    pub kind: RecentKind,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The newest accounts: a walk of `users_by_date_joined` from its end.
const NEWEST_USERS_SQL: &str = "SELECT id, username, date_joined AS at FROM users
                                 ORDER BY date_joined DESC LIMIT ?";
/// The latest logins: a walk of `users_by_last_login` from its end.
const LATEST_LOGINS_SQL: &str = "SELECT id, username, last_login AS at FROM users
                                  WHERE last_login IS NOT NULL ORDER BY last_login DESC LIMIT ?";

/// The newest sign-ups and latest logins, newest first, at most `limit` in all.
///
/// Read from the `users` read model (each user's `date_joined` and `last_login`), so a user
/// appears at most once per kind; the audit trail holds every event. Both queries walk an
/// index from its end and stop after `limit` rows.
pub async fn recent_activity(
    pool: &SqlitePool,
    limit: u32,
) -> Result<Vec<RecentActivity>, sqlx::Error> {
    let mut items = Vec::new();
    for (kind, sql) in [
        (RecentKind::SignedUp, NEWEST_USERS_SQL),
        (RecentKind::LoggedIn, LATEST_LOGINS_SQL),
    ] {
        let rows = sqlx::query(sql).bind(limit).fetch_all(pool).await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let at: String = row.try_get("at")?;
            // A row that does not parse is skipped rather than failing the whole dashboard.
            let (Ok(user_id), Some(at)) = (Uuid::parse_str(&id), from_sql(&at)) else {
                continue;
            };
            items.push(RecentActivity {
                user_id,
                username: row.try_get("username")?,
                kind,
                at,
            });
        }
    }
    // Newest first; a registration and a login at the same instant show the login first.
    items.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then_with(|| (b.kind as u8).cmp(&(a.kind as u8)))
    });
    items.truncate(limit as usize);
    Ok(items)
}

/// One day's figures twice: from its daily row and as the sum of its 24 hourly rows. The two
/// are kept by the same events, so they must agree; the daily roll-up job checks that they do.
pub async fn day_check(pool: &SqlitePool, day: Date) -> Result<(Counts, Counts), sqlx::Error> {
    let key = day_key(day);
    let daily = sum(pool, "daily_stats", "day", &key, &key).await?;
    let hourly = sum(
        pool,
        "hourly_stats",
        "hour",
        &format!("{key}T00"),
        &format!("{key}T23"),
    )
    .await?;
    Ok((daily, hourly))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    /// The plan SQLite chooses for `sql`, one line per step.
    async fn plan(pool: &SqlitePool, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind("a")
            .bind("b")
            .fetch_all(pool)
            .await
            .expect("the plan is explained");
        rows.iter()
            .map(|row| row.try_get::<String, _>("detail").expect("a detail"))
            .collect()
    }

    /// The dashboard's cost must not grow with the log or the user base: every query is an
    /// index search or a bounded walk of an index, never a scan of a table.
    #[tokio::test]
    async fn every_dashboard_query_uses_an_index() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pool = crate::database::open(&dir.path().join("cvm.db"))
            .await
            .expect("database opens");
        let searches = [
            SERIES_SQL.to_owned(),
            ACTIVE_USERS_SQL.to_owned(),
            sum_sql("daily_stats", "day"),
            sum_sql("hourly_stats", "hour"),
        ];
        for sql in &searches {
            let plan = plan(&pool, sql).await;
            assert!(
                plan.iter().any(|step| step.starts_with("SEARCH")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{sql}: {plan:?}"
            );
        }
        assert!(plan(&pool, ACTIVE_USERS_SQL)
            .await
            .iter()
            .any(|step| step.contains("SEARCH last_active_days")));
        for (sql, index) in [
            (NEWEST_USERS_SQL, "users_by_date_joined"),
            (LATEST_LOGINS_SQL, "users_by_last_login"),
        ] {
            let plan = plan(&pool, sql).await;
            assert!(
                plan.iter().all(|step| step.contains(index)),
                "{sql}: {plan:?}"
            );
        }
    }

    #[test]
    fn days_are_zero_padded_keys() {
        assert_eq!(day_key(date!(2026 - 01 - 05)), "2026-01-05");
    }

    #[test]
    fn a_period_ends_with_today() {
        assert_eq!(first_day(1, date!(2026 - 03 - 01)), date!(2026 - 03 - 01));
        assert_eq!(first_day(7, date!(2026 - 03 - 01)), date!(2026 - 02 - 23));
        assert_eq!(first_day(0, date!(2026 - 03 - 01)), date!(2026 - 03 - 01));
    }

    #[test]
    fn hours_and_days_are_prefixes_of_the_utc_time() {
        let at = datetime!(2026-11-28 00:30 +02:00);
        assert_eq!(
            hour_and_day(at),
            Some(("2026-11-27T22".to_owned(), "2026-11-27".to_owned()))
        );
    }
}
