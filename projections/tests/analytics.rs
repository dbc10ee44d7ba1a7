//! The analytics read models against a real database file: events with chosen times and actors
//! are committed through the event log (as the command bus does), projected, and then read back
//! through the dashboard's queries.

use std::sync::Arc;

use std::collections::BTreeMap;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore;
use domain::{
    Cv, CvContent, CvEvent, CvOrigin, CvTitle, Email, LoginFailureReason, PasswordHash, Role, User,
    UserEvent, Username,
};
use projections::analytics::{self, Counts, Totals};
use projections::{database, EventLog, EventMetadata, Keyring, Projector};
use sqlx::SqlitePool;
use tempfile::TempDir;
use time::macros::{date, datetime};
use time::OffsetDateTime;
use uuid::Uuid;

struct TestDb {
    pool: SqlitePool,
    users: PersistedEventStore<EventLog, User>,
    cvs: PersistedEventStore<EventLog, Cv>,
    projector: Projector,
    // Last, so the files outlive the pool.
    _dir: TempDir,
}

/// Metadata of a command accepted at `at` on behalf of `actor`.
fn meta(actor: Option<Uuid>, at: OffsetDateTime) -> EventMetadata {
    EventMetadata {
        actor,
        at: Some(at),
        ..EventMetadata::now("test")
    }
}

impl TestDb {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pool = database::open(&dir.path().join("cvm.db"))
            .await
            .expect("database opens and migrates");
        let log = EventLog::new(pool.clone(), Arc::new(Keyring::ephemeral()));
        Self {
            users: PersistedEventStore::new_event_store(log.clone()),
            cvs: PersistedEventStore::new_event_store(log.clone()),
            projector: Projector::new(log),
            pool,
            _dir: dir,
        }
    }

    /// Commits `events` to user `id` as they are (no command decides them) and projects them.
    async fn user(&self, id: Uuid, events: Vec<UserEvent>, metadata: &EventMetadata) {
        let context = self
            .users
            .load_aggregate(&id.to_string())
            .await
            .expect("aggregate loads");
        self.users
            .commit(events, context, metadata.to_map())
            .await
            .expect("events commit");
        self.projector.catch_up().await.expect("projection runs");
    }

    async fn cv(&self, id: Uuid, events: Vec<CvEvent>, metadata: &EventMetadata) {
        let context = self
            .cvs
            .load_aggregate(&id.to_string())
            .await
            .expect("aggregate loads");
        self.cvs
            .commit(events, context, metadata.to_map())
            .await
            .expect("events commit");
        self.projector.catch_up().await.expect("projection runs");
    }

    /// Registers a user at `at`, by themselves (no actor); returns the id.
    async fn register(&self, name: &str, role: Role, at: OffsetDateTime) -> Uuid {
        let id = Uuid::new_v4();
        self.user(id, vec![registered(name, role, at)], &meta(None, at))
            .await;
        id
    }

    async fn log_in(&self, id: Uuid, at: OffsetDateTime) {
        self.user(id, vec![UserEvent::LoggedIn { at }], &meta(None, at))
            .await;
    }

    /// Creates a CV owned by `owner` at `at`; returns its id.
    async fn create_cv(&self, owner: Uuid, at: OffsetDateTime) -> Uuid {
        let id = Uuid::new_v4();
        let created = CvEvent::Created {
            owner,
            title: CvTitle::parse("CV").expect("a title"),
            content: CvContent::default(),
            origin: CvOrigin::Blank,
            created_at: at,
        };
        self.cv(id, vec![created], &meta(Some(owner), at)).await;
        id
    }

    async fn edit_cv(&self, id: Uuid, actor: Option<Uuid>, at: OffsetDateTime) {
        let edit = CvEvent::BasicsUpdated {
            changes: BTreeMap::from([("name".to_owned(), "Someone".to_owned())]),
        };
        self.cv(id, vec![edit], &meta(actor, at)).await;
    }

    async fn totals(&self) -> Totals {
        analytics::totals(&self.pool).await.expect("totals")
    }

    /// Every analytics row, as text, in a stable order.
    async fn rows(&self) -> Vec<String> {
        let mut rows = Vec::new();
        for sql in [
            "SELECT 'd ' || day || ' ' || signups || ' ' || logins || ' ' || failed_logins
                    || ' ' || cvs_created || ' ' || cv_edits FROM daily_stats ORDER BY day",
            "SELECT 'h ' || hour || ' ' || signups || ' ' || logins || ' ' || failed_logins
                    || ' ' || cvs_created || ' ' || cv_edits FROM hourly_stats ORDER BY hour",
            "SELECT 'a ' || user_id || ' ' || day FROM activity ORDER BY user_id, day",
            "SELECT 'l ' || user_id || ' ' || day FROM last_active ORDER BY user_id",
            "SELECT 'ld ' || day || ' ' || users FROM last_active_days ORDER BY day",
            "SELECT 't ' || name || ' ' || value FROM totals ORDER BY name",
        ] {
            let table: Vec<String> = sqlx::query_scalar(sql)
                .fetch_all(&self.pool)
                .await
                .expect("rows");
            rows.extend(table);
        }
        rows
    }
}

fn registered(name: &str, role: Role, at: OffsetDateTime) -> UserEvent {
    UserEvent::Registered {
        username: Username::parse(name).expect("a username"),
        email: Email::parse(&format!("{name}@example.com")).expect("an email"),
        password_hash: PasswordHash::new("$argon2id$v=19$test".to_owned()),
        role,
        registered_at: at,
    }
}

#[tokio::test]
async fn counters_land_on_the_utc_day_and_hour_of_each_event() {
    let db = TestDb::new().await;
    let alice = db
        .register("alice", Role::User, datetime!(2026-03-01 10:15 UTC))
        .await;
    // 00:30 at +02:00 is still the 1st of March in UTC.
    db.register("bob", Role::User, datetime!(2026-03-02 00:30 +02:00))
        .await;
    db.register("carol", Role::User, datetime!(2026-03-02 09:00 UTC))
        .await;
    db.log_in(alice, datetime!(2026-03-02 09:10 UTC)).await;
    db.log_in(alice, datetime!(2026-03-02 09:50 UTC)).await;
    let failed_at = datetime!(2026-03-02 11:00 UTC);
    db.user(
        alice,
        vec![UserEvent::LoginFailed {
            reason: LoginFailureReason::WrongPassword,
            at: failed_at,
        }],
        &meta(None, failed_at),
    )
    .await;
    let cv = db.create_cv(alice, datetime!(2026-03-02 12:00 UTC)).await;
    db.edit_cv(cv, Some(alice), datetime!(2026-03-02 12:01 UTC))
        .await;
    db.edit_cv(cv, Some(alice), datetime!(2026-03-02 12:02 UTC))
        .await;

    let series = analytics::series(&db.pool, 3, date!(2026 - 03 - 02))
        .await
        .unwrap();
    assert_eq!(series.days, ["2026-02-28", "2026-03-01", "2026-03-02"]);
    assert_eq!(series.signups, [0, 2, 1]);
    assert_eq!(series.logins, [0, 0, 2]);
    assert_eq!(series.cvs_created, [0, 0, 1]);
    assert_eq!(series.cv_edits, [0, 0, 2]);

    let hours: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT hour, signups, logins, failed_logins FROM hourly_stats ORDER BY hour",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        hours,
        [
            ("2026-03-01T10".to_owned(), 1, 0, 0),
            ("2026-03-01T22".to_owned(), 1, 0, 0),
            ("2026-03-02T09".to_owned(), 1, 2, 0),
            ("2026-03-02T11".to_owned(), 0, 0, 1),
            ("2026-03-02T12".to_owned(), 0, 0, 0),
        ]
    );
}

#[tokio::test]
async fn the_metadata_time_wins_and_the_event_time_is_the_fallback() {
    let db = TestDb::new().await;
    let id = Uuid::new_v4();
    // Accepted on the 5th, although the event itself says the 1st (metadata is authoritative).
    db.user(
        id,
        vec![registered(
            "dora",
            Role::User,
            datetime!(2026-03-01 08:00 UTC),
        )],
        &meta(None, datetime!(2026-03-05 08:00 UTC)),
    )
    .await;
    // No time in the metadata: the event's own.
    let undated = EventMetadata {
        at: None,
        ..EventMetadata::now("test")
    };
    db.user(
        id,
        vec![UserEvent::LoggedIn {
            at: datetime!(2026-03-03 08:00 UTC),
        }],
        &undated,
    )
    .await;
    // A CV edit with neither is left out of the per-day figures rather than given the clock.
    let cv = db.create_cv(id, datetime!(2026-03-05 09:00 UTC)).await;
    db.cv(cv, vec![CvEvent::Archived { by_admin: false }], &undated)
        .await;

    let series = analytics::series(&db.pool, 5, date!(2026 - 03 - 05))
        .await
        .unwrap();
    assert_eq!(series.signups, [0, 0, 0, 0, 1]);
    assert_eq!(series.logins, [0, 0, 1, 0, 0]);
    assert_eq!(series.cv_edits, [0; 5]);
    let all_edits: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(cv_edits), 0) FROM daily_stats")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(all_edits, 0);
    // …but the archive still moves the totals.
    assert_eq!(db.totals().await.archived_cvs, 1);
}

#[tokio::test]
async fn windows_sum_the_last_24_hours_7_days_and_30_days() {
    let db = TestDb::new().await;
    let now = datetime!(2026-03-31 12:30 UTC);
    let hours_ago = |h: i64| now - time::Duration::hours(h);
    for at in [
        hours_ago(0),
        hours_ago(1),
        hours_ago(23),           // 13:30 yesterday: in the oldest of the 24 hourly rows
        hours_ago(25),           // 11:30 yesterday: outside the 24 hours, inside 7 days
        hours_ago(24 * 6 + 12),  // 00:30 on the 25th: the first of the 7 days
        hours_ago(24 * 7 + 12),  // the 24th: outside 7 days, inside 30
        hours_ago(24 * 29 + 12), // the 2nd: the first of the 30 days
        hours_ago(24 * 30 + 12), // the 1st: outside everything
    ] {
        db.register(&format!("u{}", at.unix_timestamp()), Role::User, at)
            .await;
    }

    let windows = analytics::window_counts(&db.pool, now).await.unwrap();
    let signups = |n| Counts {
        signups: n,
        ..Counts::default()
    };
    assert_eq!(windows.last_24h, signups(3));
    assert_eq!(windows.last_7d, signups(5));
    assert_eq!(windows.last_30d, signups(7));
    // The same instant in another offset is the same window.
    let elsewhere = now.to_offset(time::macros::offset!(-07:00));
    assert_eq!(
        analytics::window_counts(&db.pool, elsewhere).await.unwrap(),
        windows
    );
}

#[tokio::test]
async fn active_users_are_counted_once_over_a_period() {
    let db = TestDb::new().await;
    let admin = db
        .register("admin", Role::Superuser, datetime!(2026-01-01 09:00 UTC))
        .await;
    let alice = db
        .register("alice", Role::User, datetime!(2026-03-01 09:00 UTC))
        .await;
    db.log_in(alice, datetime!(2026-03-09 09:00 UTC)).await;
    db.log_in(alice, datetime!(2026-03-10 09:00 UTC)).await;
    db.log_in(alice, datetime!(2026-03-10 10:00 UTC)).await;
    // Bob's account is made by the admin on the 10th: that is the admin's doing, not Bob's.
    let bob = Uuid::new_v4();
    db.user(
        bob,
        vec![registered(
            "bob",
            Role::User,
            datetime!(2026-03-10 08:00 UTC),
        )],
        &meta(Some(admin), datetime!(2026-03-10 08:00 UTC)),
    )
    .await;
    // Carol only edits a CV on the 8th (as its actor); an edit with no actor counts for nobody.
    let carol = db
        .register("carol", Role::User, datetime!(2026-01-02 09:00 UTC))
        .await;
    let cv = db.create_cv(carol, datetime!(2026-01-02 10:00 UTC)).await;
    db.edit_cv(cv, Some(carol), datetime!(2026-03-08 10:00 UTC))
        .await;
    db.edit_cv(cv, None, datetime!(2026-03-10 10:00 UTC)).await;

    let today = date!(2026 - 03 - 10);
    let active = |days| analytics::active_users(&db.pool, days, today);
    assert_eq!(
        active(1).await.unwrap(),
        1,
        "alice (bob did nothing himself)"
    );
    assert_eq!(active(2).await.unwrap(), 1, "alice, counted once");
    assert_eq!(active(3).await.unwrap(), 2, "and carol");
    assert_eq!(active(30).await.unwrap(), 2);
    assert_eq!(
        active(69).await.unwrap(),
        3,
        "and the admin, who signed up on 1 January"
    );
    assert_eq!(active(0).await.unwrap(), 0);
    let bob_days: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity WHERE user_id = ?")
        .bind(bob.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(bob_days, 0);
}

#[tokio::test]
async fn active_users_from_last_active_days_agree_with_counting_distinct_users() {
    let db = TestDb::new().await;
    let start = datetime!(2026-03-01 09:00 UTC);
    let day = |n: i64| start + time::Duration::days(n);
    let mut users = Vec::new();
    for n in 0..6 {
        users.push(db.register(&format!("user{n}"), Role::User, day(n)).await);
    }
    // Logins on scattered days; several in one commit (one batch), and some dated before the
    // user's newest activity, which must not move the last active day back.
    for (i, user) in users.iter().enumerate() {
        let i = i as i64;
        let days = [i + 3, (i * 7) % 20 + 1, i + 12, 2];
        let events = days
            .iter()
            .map(|&n| UserEvent::LoggedIn { at: day(n) })
            .collect();
        db.user(*user, events, &meta(None, day(days[0]))).await;
        db.log_in(*user, day(i * 3 % 17)).await;
    }
    let today = date!(2026 - 03 - 21);
    for days in 1..=30 {
        let expected: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT user_id) FROM activity WHERE day BETWEEN ? AND ?",
        )
        .bind((today - time::Duration::days(days - 1)).to_string())
        .bind(today.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(
            analytics::active_users(&db.pool, days as u32, today)
                .await
                .unwrap(),
            expected,
            "active users over {days} days"
        );
    }
    let rows = db.rows().await;
    db.projector.rebuild(|_| {}).await.unwrap();
    assert_eq!(db.rows().await, rows, "a rebuild gives the same rows");
}

#[tokio::test]
async fn totals_follow_every_transition() {
    let db = TestDb::new().await;
    let at = datetime!(2026-03-01 09:00 UTC);
    let admin = db.register("admin", Role::Superuser, at).await;
    let alice = db.register("alice", Role::User, at).await;
    let bob = db.register("bob", Role::User, at).await;
    let by_admin = meta(Some(admin), at);

    db.user(bob, vec![UserEvent::Deactivated], &by_admin).await;
    db.user(
        alice,
        vec![UserEvent::RoleChanged {
            from: Role::User,
            to: Role::Superuser,
        }],
        &by_admin,
    )
    .await;
    let first = db.create_cv(alice, at).await;
    let second = db.create_cv(alice, at).await;
    db.cv(
        first,
        vec![CvEvent::Archived { by_admin: false }],
        &by_admin,
    )
    .await;
    db.cv(
        second,
        vec![CvEvent::Archived { by_admin: true }],
        &by_admin,
    )
    .await;
    db.cv(second, vec![CvEvent::Unarchived], &by_admin).await;
    assert_eq!(
        db.totals().await,
        Totals {
            users: 3,
            active_users: 2,
            deactivated_users: 1,
            superusers: 2,
            cvs: 2,
            archived_cvs: 1,
        }
    );

    db.user(bob, vec![UserEvent::Activated], &by_admin).await;
    db.user(
        admin,
        vec![UserEvent::RoleChanged {
            from: Role::Superuser,
            to: Role::User,
        }],
        &by_admin,
    )
    .await;
    let totals = db.totals().await;
    assert_eq!((totals.active_users, totals.deactivated_users), (3, 0));
    assert_eq!(totals.superusers, 1);
}

#[tokio::test]
async fn an_empty_log_reads_as_zeros() {
    let db = TestDb::new().await;
    assert_eq!(db.totals().await, Totals::default());
    let series = analytics::series(&db.pool, 30, date!(2026 - 03 - 31))
        .await
        .unwrap();
    assert_eq!(series.days.len(), 30);
    assert_eq!(series.days.first().map(String::as_str), Some("2026-03-02"));
    assert_eq!(series.signups, [0; 30]);
    assert_eq!(
        analytics::window_counts(&db.pool, datetime!(2026-03-31 12:00 UTC))
            .await
            .unwrap(),
        analytics::Windows::default()
    );
    assert!(analytics::recent_activity(&db.pool, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn recent_activity_is_newest_first_and_bounded() {
    let db = TestDb::new().await;
    for day in 1..=8u8 {
        let at = time::Date::from_calendar_date(2026, time::Month::March, day)
            .unwrap()
            .with_hms(9, 0, 0)
            .unwrap()
            .assume_utc();
        let id = db.register(&format!("user{day}"), Role::User, at).await;
        if day % 2 == 0 {
            db.log_in(id, at + time::Duration::hours(1)).await;
        }
    }
    let recent = analytics::recent_activity(&db.pool, 5).await.unwrap();
    let lines: Vec<String> = recent
        .iter()
        .map(|item| format!("{} {:?}", item.username, item.kind))
        .collect();
    assert_eq!(
        lines,
        [
            "user8 LoggedIn",
            "user8 SignedUp",
            "user7 SignedUp",
            "user6 LoggedIn",
            "user6 SignedUp",
        ]
    );
}

#[tokio::test]
async fn a_rebuild_reproduces_every_analytics_row() {
    let db = TestDb::new().await;
    let at = datetime!(2026-03-01 09:00 UTC);
    let admin = db.register("admin", Role::Superuser, at).await;
    let alice = db.register("alice", Role::User, at).await;
    db.log_in(alice, at + time::Duration::hours(30)).await;
    let cv = db.create_cv(alice, at + time::Duration::hours(31)).await;
    db.edit_cv(cv, Some(alice), at + time::Duration::hours(32))
        .await;
    db.user(alice, vec![UserEvent::Deactivated], &meta(Some(admin), at))
        .await;
    assert!(
        analytics::TABLES
            .iter()
            .all(|table| projections::projector::read_model_tables().contains(table)),
        "a rebuild must empty every analytics table"
    );
    let before = db.rows().await;
    assert!(!before.is_empty());

    db.projector.rebuild(|_| {}).await.expect("rebuild runs");
    assert_eq!(db.rows().await, before);
    assert_eq!(db.projector.verify().await.expect("verify runs"), vec![]);
}
