//! The `users` read model: one row per registered account, for login lookups, navigation and
//! (later) the admin pages.

use domain::{Role, UserEvent};
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::database::json_param;
use crate::event_log::StoredEvent;
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns (emptied by a rebuild, compared by `--verify`).
pub const TABLES: &[&str] = &["users"];

/// An account as the read side knows it. Never holds the password hash.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// The User aggregate's id.
    pub id: Uuid,
    /// As typed at registration.
    pub username: String,
    /// Lower-cased, validated.
    pub email: String,
    /// `user` or `superuser`.
    pub role: Role,
    /// Deactivated accounts cannot log in.
    pub active: bool,
    /// When the account was registered.
    pub date_joined: OffsetDateTime,
    /// The last successful login, if any.
    pub last_login: Option<OffsetDateTime>,
    /// Sessions created in an older epoch are dead (see the migration that adds it).
    pub session_epoch: i64,
}

impl UserRow {
    /// Whether this account may use the admin pages.
    pub fn is_superuser(&self) -> bool {
        self.role == Role::Superuser
    }
}

/// What a batch of events changes in the table that is cheaper written once per batch, by
/// [`flush`]: the accounts registered and the last login of each user (logins are the most
/// frequent event). The rarer changes are written at once, after what is pending.
#[derive(Debug, Default)]
pub struct Pending {
    registered: Vec<Registration>,
    last_login: std::collections::BTreeMap<String, String>,
}

/// A new row of the table.
#[derive(Debug, serde::Serialize)]
struct Registration {
    id: String,
    username: String,
    username_canonical: String,
    email: String,
    role: &'static str,
    date_joined: String,
}

/// Writes the pending registrations, then the last logins: a statement each for the batch.
pub async fn flush(conn: &mut SqliteConnection, pending: &mut Pending) -> Result<(), sqlx::Error> {
    let registered = std::mem::take(&mut pending.registered);
    if !registered.is_empty() {
        sqlx::query(
            "INSERT INTO users (id, username, username_canonical, email, role, active,
                                date_joined, last_login)
             SELECT r.value ->> 'id', r.value ->> 'username', r.value ->> 'username_canonical',
                    r.value ->> 'email', r.value ->> 'role', 1, r.value ->> 'date_joined', NULL
               FROM json_each(?) AS r",
        )
        .bind(json_param(&registered)?)
        .execute(&mut *conn)
        .await?;
    }
    let logins = std::mem::take(&mut pending.last_login);
    if logins.is_empty() {
        return Ok(());
    }
    let list = json_param(&logins)?;
    sqlx::query(
        "UPDATE users SET last_login = logins.value
           FROM json_each(?) AS logins
          WHERE users.id = logins.key",
    )
    .bind(list)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies one User event to the table (registrations and last logins go to `pending`).
pub async fn apply(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    stored: &StoredEvent,
    event: &UserEvent,
) -> Result<(), sqlx::Error> {
    let id = stored.aggregate_id.as_str();
    match event {
        UserEvent::Registered {
            username,
            email,
            role,
            registered_at,
            ..
        } => {
            pending.registered.push(Registration {
                id: id.to_owned(),
                username: username.as_str().to_owned(),
                username_canonical: username.canonical().to_owned(),
                email: email.as_str().to_owned(),
                role: role.as_str(),
                date_joined: to_sql(*registered_at),
            });
            return Ok(());
        }
        UserEvent::LoggedIn { at } => {
            pending.last_login.insert(id.to_owned(), to_sql(*at));
            return Ok(());
        }
        _ => {}
    }
    let writes_now = matches!(
        event,
        UserEvent::RoleChanged { .. }
            | UserEvent::Deactivated
            | UserEvent::Activated
            | UserEvent::PasswordChanged { .. }
            | UserEvent::PasswordReset { .. }
    );
    if writes_now {
        // They change rows that registrations held back in `pending` may hold.
        flush(conn, pending).await?;
    }
    match event {
        UserEvent::RoleChanged { from, to } => {
            sqlx::query("UPDATE users SET role = ? WHERE id = ?")
                .bind(to.as_str())
                .bind(id)
                .execute(&mut *conn)
                .await?;
            // A demoted superuser starts again as a plain user, with no admin page left open.
            if *from == Role::Superuser && *to == Role::User {
                end_sessions(conn, id).await?;
            }
        }
        UserEvent::Deactivated => {
            set_active(conn, id, false).await?;
            end_sessions(conn, id).await?;
        }
        UserEvent::Activated => set_active(conn, id, true).await?,
        UserEvent::PasswordChanged { .. } | UserEvent::PasswordReset { .. } => {
            end_sessions(conn, id).await?;
        }
        // Erasure removes the row: see [`erase`].
        UserEvent::Registered { .. }
        | UserEvent::LoggedIn { .. }
        | UserEvent::Erased
        | UserEvent::LoginFailed { .. }
        | UserEvent::ProfileUpdated { .. }
        | UserEvent::AvatarChanged { .. }
        | UserEvent::AvatarRemoved
        | UserEvent::PasswordResetRequested { .. } => {}
    }
    Ok(())
}

/// Removes an erased user's row (their sessions end with it: a session whose user has no row
/// is anonymous).
pub async fn erase(conn: &mut SqliteConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn end_sessions(conn: &mut SqliteConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn set_active(
    conn: &mut SqliteConnection,
    id: &str,
    active: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET active = ? WHERE id = ?")
        .bind(active)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, username, email, role, active, date_joined, last_login, session_epoch";

fn user_row(row: &sqlx::sqlite::SqliteRow) -> Result<UserRow, sqlx::Error> {
    let decode = |column: &str, message: &str| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.into(),
    };
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let date_joined: String = row.try_get("date_joined")?;
    let last_login: Option<String> = row.try_get("last_login")?;
    Ok(UserRow {
        id: Uuid::parse_str(&id).map_err(|_| decode("id", "not a UUID"))?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        role: role.parse().map_err(|_| decode("role", "unknown role"))?,
        active: row.try_get("active")?,
        date_joined: from_sql(&date_joined).ok_or_else(|| decode("date_joined", "bad time"))?,
        last_login: last_login.as_deref().and_then(from_sql),
        session_epoch: row.try_get("session_epoch")?,
    })
}

/// The account with this id.
pub async fn find_by_id(pool: &SqlitePool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user_row).transpose()
}

/// The usernames of those of `ids` that (still) have an account, in one query per 500 ids
/// (pages list up to a hundred events; looking each name up alone was most of their time).
pub async fn usernames(
    pool: &SqlitePool,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    names_by_id(pool, "SELECT id, username FROM users WHERE id IN", ids).await
}

/// Runs `select` (which ends in `WHERE id IN`) over `ids` in chunks; rows are (id, name).
pub(crate) async fn names_by_id(
    pool: &SqlitePool,
    select: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    let mut names = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("{select} ({marks})");
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for (id, name) in query.fetch_all(pool).await? {
            if let Ok(id) = Uuid::parse_str(&id) {
                names.insert(id, name);
            }
        }
    }
    Ok(names)
}

/// The account with this (already lower-cased) email.
pub async fn find_by_email(pool: &SqlitePool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE email = ?"))
        .bind(email)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user_row).transpose()
}

/// Number of accounts.
pub async fn count(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
}

/// Filters, sort and page of the admin user list.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Case-insensitive text in username, email or full name.
    pub q: String,
    /// Only this role.
    pub role: Option<Role>,
    /// Only active (`true`) or deactivated (`false`) accounts.
    pub active: Option<bool>,
    /// Sort key.
    pub sort: UserSort,
    /// 0-based page.
    pub page: u32,
}

/// How the admin user list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserSort {
    /// Newest accounts first (the default).
    #[default]
    JoinedNewest,
    /// Oldest accounts first.
    JoinedOldest,
    /// Most recent login first; never-logged-in last.
    LastLogin,
}

/// A row of the admin user list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserListRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub active: bool,
    pub date_joined: String,
    pub last_login: Option<String>,
}

/// Rows per page of the admin user list.
pub const PAGE_SIZE: u32 = 50;

/// One page of users matching `query`, and how many match in all.
pub async fn search(
    pool: &SqlitePool,
    query: &UserQuery,
) -> Result<(Vec<UserListRow>, i64), sqlx::Error> {
    let pattern = format!(
        "%{}%",
        query
            .q
            .trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter = "FROM users u LEFT JOIN profiles p ON p.user_id = u.id
        WHERE (? = '%%' OR u.username_canonical LIKE ? ESCAPE '\\' OR u.email LIKE ? ESCAPE '\\'
               OR lower(p.full_name) LIKE ? ESCAPE '\\')
          AND (? IS NULL OR u.role = ?)
          AND (? IS NULL OR u.active = ?)";
    let order = match query.sort {
        UserSort::JoinedNewest => "u.date_joined DESC, u.id",
        UserSort::JoinedOldest => "u.date_joined ASC, u.id",
        UserSort::LastLogin => "u.last_login IS NULL, u.last_login DESC, u.id",
    };
    let role = query.role.map(|r| r.as_str());
    fn bind_filter<'q>(
        sql: &'q str,
        pattern: &str,
        role: Option<&'static str>,
        active: Option<bool>,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        sqlx::query(sql)
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
            .bind(role)
            .bind(role)
            .bind(active)
            .bind(active)
    }
    let count_sql = format!("SELECT COUNT(*) {filter}");
    let total: i64 = bind_filter(&count_sql, &pattern, role, query.active)
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    let rows_sql = format!(
        "SELECT u.id, u.username, u.email, COALESCE(p.full_name, '') AS full_name, u.role,
                u.active, u.date_joined, u.last_login
         {filter} ORDER BY {order} LIMIT {PAGE_SIZE} OFFSET ?"
    );
    let rows = bind_filter(&rows_sql, &pattern, role, query.active)
        .bind(i64::from(query.page) * i64::from(PAGE_SIZE))
        .fetch_all(pool)
        .await?;
    let rows = rows
        .iter()
        .map(|row| {
            Ok(UserListRow {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                email: row.try_get("email")?,
                full_name: row.try_get("full_name")?,
                role: row.try_get("role")?,
                active: row.try_get("active")?,
                date_joined: row
                    .try_get::<String, _>("date_joined")?
                    .chars()
                    .take(10)
                    .collect(),
                last_login: row
                    .try_get::<Option<String>, _>("last_login")?
                    .map(|t| t.chars().take(16).collect::<String>().replace('T', " ")),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((rows, total))
}

/// How many superusers can log in.
pub async fn active_superusers(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'superuser' AND active = 1")
        .fetch_one(pool)
        .await
}
