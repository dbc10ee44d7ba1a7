//! The projector against a real database file: events are produced by the `User` aggregate and
//! committed through the event log exactly as the application does, then projected into the
//! read models, rebuilt and verified.

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, EventStore};
use domain::testing::PlainTextHasher;
use domain::{
    Email, LoginFailureReason, Password, Role, User, UserCommand, UserEvent, UserServices, Username,
};
use projections::projector::TableDifference;
use projections::users::{self, UserRow};
use projections::{database, EventLog, EventMetadata, Keyring, ProjectionError, Projector};
use sqlx::SqlitePool;
use tempfile::TempDir;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const PASSWORD: &str = "tangerine kayak forty seven";

/// A registration time with nanoseconds, which the read model keeps to the microsecond.
const REGISTERED_AT: OffsetDateTime = datetime!(2026-11-28 12:34:56.123456789 UTC);
const LOGGED_IN_AT: OffsetDateTime = datetime!(2026-11-29 08:00:01.5 UTC);

/// Every column of one `users` row, in table order (`SELECT *`).
type RawUserRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
);

/// A fresh, migrated database file plus the means to run commands against it.
struct TestDb {
    pool: SqlitePool,
    log: EventLog,
    store: PersistedEventStore<EventLog, User>,
    services: UserServices,
    // Last, so the files outlive the pool.
    dir: TempDir,
}

impl TestDb {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pool = database::open(&dir.path().join("cvm.db"))
            .await
            .expect("database opens and migrates");
        let log = EventLog::new(pool.clone(), Arc::new(Keyring::ephemeral()));
        Self {
            store: PersistedEventStore::new_event_store(log.clone()),
            services: UserServices::new(Arc::new(PlainTextHasher)),
            log,
            pool,
            dir,
        }
    }

    /// A second, independent pool on the same file (another process, such as the CLI).
    async fn second_pool(&self) -> SqlitePool {
        database::open(&self.dir.path().join("cvm.db"))
            .await
            .expect("second pool opens")
    }

    /// Runs `command` on user `id` and commits what it decided, as the command bus does.
    async fn run(&self, id: Uuid, command: UserCommand) -> Vec<UserEvent> {
        self.run_with(id, command, &EventMetadata::now("test"))
            .await
    }

    async fn run_with(
        &self,
        id: Uuid,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Vec<UserEvent> {
        let mut context = self
            .store
            .load_aggregate(&id.to_string())
            .await
            .expect("aggregate loads");
        let sink = EventSink::default();
        context
            .aggregate()
            .handle(command, &self.services, &sink)
            .await
            .expect("command is accepted");
        let events = sink.collect().await;
        self.store
            .commit(events.clone(), context, metadata.to_map())
            .await
            .expect("events commit");
        events
    }

    /// Registers a new user with role `user` and returns its id.
    async fn register(&self, username: &str, email: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.run(id, register(username, email, Role::User)).await;
        id
    }

    async fn log_in(&self, id: Uuid, password: &str, at: OffsetDateTime) -> Vec<UserEvent> {
        self.run(
            id,
            UserCommand::LogIn {
                password: password.to_owned(),
                at,
            },
        )
        .await
    }

    async fn row(&self, id: Uuid) -> Option<UserRow> {
        users::find_by_id(&self.pool, id)
            .await
            .expect("users query runs")
    }

    /// Every row of `users`, every column, ordered by id.
    async fn all_user_rows(&self) -> Vec<RawUserRow> {
        sqlx::query_as("SELECT * FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .expect("users select runs")
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count runs")
    }

    /// Inserts an event row directly, bypassing the aggregate; returns its position.
    async fn insert_raw_event(&self, aggregate_type: &str, event_type: &str, payload: &str) -> i64 {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES (?, ?, 1, ?, '1.0', ?, '{}')",
        )
        .bind(aggregate_type)
        .bind(Uuid::new_v4().to_string())
        .bind(event_type)
        .bind(payload)
        .execute(&self.pool)
        .await
        .expect("raw insert runs")
        .last_insert_rowid()
    }

    /// A varied history: several users, logins (good and bad), role changes, deactivations.
    async fn varied_history(&self) -> Vec<Uuid> {
        let alice = self.register("alice", "alice@example.com").await;
        let bob = self.register("Bob", "Bob@Example.org").await;
        let carol = self.register("carol", "carol@example.net").await;
        let dave = self.register("dave", "dave@example.com").await;
        self.log_in(alice, PASSWORD, LOGGED_IN_AT).await;
        self.log_in(bob, "not the password", LOGGED_IN_AT).await;
        self.run(
            bob,
            UserCommand::ChangeRole {
                role: Role::Superuser,
            },
        )
        .await;
        self.run(carol, UserCommand::Deactivate).await;
        self.log_in(carol, PASSWORD, LOGGED_IN_AT).await;
        self.run(dave, UserCommand::Deactivate).await;
        self.run(dave, UserCommand::Activate).await;
        self.log_in(dave, PASSWORD, datetime!(2026-12-01 00:00 UTC))
            .await;
        self.run(
            alice,
            UserCommand::ChangeRole {
                role: Role::Superuser,
            },
        )
        .await;
        self.run(alice, UserCommand::ChangeRole { role: Role::User })
            .await;
        vec![alice, bob, carol, dave]
    }
}

fn register(username: &str, email: &str, role: Role) -> UserCommand {
    UserCommand::Register {
        username: Username::parse(username).expect("valid username"),
        email: Email::parse(email).expect("valid email"),
        password: Password::parse(PASSWORD, username, email).expect("valid password"),
        role,
        at: REGISTERED_AT,
    }
}

// --- the users read model ---------------------------------------------------------------------

#[tokio::test]
async fn a_registration_appears_in_the_users_table_after_catch_up() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("Alice", "Alice@Example.COM").await;

    // Act
    projector.catch_up().await.expect("catch-up succeeds");

    // Assert
    let expected = UserRow {
        id,
        username: "Alice".to_owned(),
        email: "alice@example.com".to_owned(),
        role: Role::User,
        active: true,
        date_joined: datetime!(2026-11-28 12:34:56.123456 UTC),
        last_login: None,
        session_epoch: 0,
    };
    assert_eq!(db.row(id).await, Some(expected.clone()));
    assert_eq!(
        users::find_by_email(&db.pool, "alice@example.com")
            .await
            .unwrap(),
        Some(expected)
    );
    assert_eq!(users::count(&db.pool).await.unwrap(), 1);
}

#[tokio::test]
async fn a_registration_is_not_visible_before_catch_up() {
    // Arrange
    let db = TestDb::new().await;
    let id = db.register("alice", "alice@example.com").await;

    // Act
    let row = db.row(id).await;

    // Assert
    assert_eq!(row, None);
    assert_eq!(users::count(&db.pool).await.unwrap(), 0);
}

#[tokio::test]
async fn a_superuser_registration_is_stored_with_its_role() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = Uuid::new_v4();
    db.run(id, register("root", "root@example.com", Role::Superuser))
        .await;

    // Act
    projector.catch_up().await.unwrap();

    // Assert
    let row = db.row(id).await.expect("row exists");
    assert_eq!(row.role, Role::Superuser);
    assert!(row.is_superuser());
}

#[tokio::test]
async fn login_sets_last_login() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();

    // Act
    let events = db.log_in(id, PASSWORD, LOGGED_IN_AT).await;
    projector.catch_up().await.unwrap();

    // Assert
    assert_eq!(events, vec![UserEvent::LoggedIn { at: LOGGED_IN_AT }]);
    let row = db.row(id).await.expect("row exists");
    assert_eq!(row.last_login, Some(LOGGED_IN_AT));
}

#[tokio::test]
async fn a_later_login_replaces_last_login() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    let later = datetime!(2027-01-02 03:04:05.000006 UTC);
    db.log_in(id, PASSWORD, LOGGED_IN_AT).await;

    // Act
    db.log_in(id, PASSWORD, later).await;
    projector.catch_up().await.unwrap();

    // Assert
    assert_eq!(db.row(id).await.unwrap().last_login, Some(later));
}

#[tokio::test]
async fn deactivation_and_activation_flip_active() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();
    assert!(db.row(id).await.unwrap().active);

    // Act
    db.run(id, UserCommand::Deactivate).await;
    projector.catch_up().await.unwrap();
    let after_deactivation = db.row(id).await.unwrap().active;
    db.run(id, UserCommand::Activate).await;
    projector.catch_up().await.unwrap();
    let after_activation = db.row(id).await.unwrap().active;

    // Assert
    assert!(!after_deactivation);
    assert!(after_activation);
}

#[tokio::test]
async fn role_change_updates_role() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();

    // Act
    db.run(
        id,
        UserCommand::ChangeRole {
            role: Role::Superuser,
        },
    )
    .await;
    projector.catch_up().await.unwrap();
    let promoted = db.row(id).await.unwrap().role;
    db.run(id, UserCommand::ChangeRole { role: Role::User })
        .await;
    projector.catch_up().await.unwrap();
    let demoted = db.row(id).await.unwrap().role;

    // Assert
    assert_eq!(promoted, Role::Superuser);
    assert_eq!(demoted, Role::User);
}

#[tokio::test]
async fn a_failed_login_changes_nothing_in_the_row() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    db.log_in(id, PASSWORD, LOGGED_IN_AT).await;
    projector.catch_up().await.unwrap();
    let before = db.all_user_rows().await;

    // Act
    let wrong = db
        .log_in(id, "not the password", datetime!(2027-01-01 00:00 UTC))
        .await;
    let applied = projector.catch_up().await.unwrap();

    // Assert
    assert!(matches!(
        wrong.as_slice(),
        [UserEvent::LoginFailed {
            reason: LoginFailureReason::WrongPassword,
            ..
        }]
    ));
    assert_eq!(applied, 1, "the failed login is read, just not stored");
    assert_eq!(db.all_user_rows().await, before);
    assert_eq!(db.row(id).await.unwrap().last_login, Some(LOGGED_IN_AT));
}

#[tokio::test]
async fn a_right_password_on_a_deactivated_account_does_not_set_last_login() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("alice", "alice@example.com").await;
    db.run(id, UserCommand::Deactivate).await;
    projector.catch_up().await.unwrap();
    let before = db.all_user_rows().await;

    // Act
    let events = db.log_in(id, PASSWORD, LOGGED_IN_AT).await;
    projector.catch_up().await.unwrap();

    // Assert
    assert!(matches!(
        events.as_slice(),
        [UserEvent::LoginFailed {
            reason: LoginFailureReason::AccountDeactivated,
            ..
        }]
    ));
    assert_eq!(db.all_user_rows().await, before);
    assert_eq!(db.row(id).await.unwrap().last_login, None);
}

#[tokio::test]
async fn the_username_is_indexed_in_its_canonical_form() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let id = db.register("MixedCase.Name", "mixed@example.com").await;

    // Act
    projector.catch_up().await.unwrap();

    // Assert
    let (username, canonical): (String, String) =
        sqlx::query_as("SELECT username, username_canonical FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(username, "MixedCase.Name");
    assert_eq!(canonical, "mixedcase.name");
}

// --- catch-up and the checkpoint ----------------------------------------------------------------

#[tokio::test]
async fn catch_up_returns_the_number_of_events_applied() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let alice = db.register("alice", "alice@example.com").await;
    db.register("bob", "bob@example.com").await;
    db.log_in(alice, PASSWORD, LOGGED_IN_AT).await;

    // Act
    let first = projector.catch_up().await.unwrap();
    let second = projector.catch_up().await.unwrap();

    // Assert
    assert_eq!(first, 3);
    assert_eq!(second, 0, "nothing new to apply");
    assert_eq!(
        projector.checkpoint().await.unwrap(),
        db.log.head().await.unwrap()
    );
}

#[tokio::test]
async fn catch_up_applies_only_the_events_after_the_checkpoint() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let alice = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();
    let checkpoint_before = projector.checkpoint().await.unwrap();
    db.log_in(alice, PASSWORD, LOGGED_IN_AT).await;
    db.run(alice, UserCommand::Deactivate).await;

    // Act
    let applied = projector.catch_up().await.unwrap();

    // Assert
    assert_eq!(checkpoint_before, 1);
    assert_eq!(applied, 2);
    assert_eq!(projector.checkpoint().await.unwrap(), 3);
    assert_eq!(db.log.head().await.unwrap(), 3);
}

#[tokio::test]
async fn an_empty_log_has_checkpoint_and_head_zero() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());

    // Act
    let applied = projector.catch_up().await.unwrap();

    // Assert
    assert_eq!(applied, 0);
    assert_eq!(projector.checkpoint().await.unwrap(), 0);
    assert_eq!(db.log.head().await.unwrap(), 0);
}

#[tokio::test]
async fn catch_up_with_progress_reports_the_running_total() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    for n in 0..5 {
        db.register(&format!("user{n}"), &format!("user{n}@example.com"))
            .await;
    }
    let mut reported = Vec::new();

    // Act
    let applied = projector
        .catch_up_with_progress(|total| reported.push(total))
        .await
        .unwrap();

    // Assert
    assert_eq!(applied, 5);
    assert_eq!(reported.last(), Some(&5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_not_applied_twice_by_two_projectors() {
    // Arrange: the server's and the CLI's projector on one database.
    let db = TestDb::new().await;
    let server = Projector::new(db.log.clone());
    let cli = Projector::new(db.log.clone());
    for n in 0..50 {
        let id = db
            .register(&format!("user{n:02}"), &format!("user{n:02}@example.com"))
            .await;
        if n % 3 == 0 {
            db.log_in(id, PASSWORD, LOGGED_IN_AT).await;
        }
    }
    let events = db.event_count().await;

    // Act
    let (by_server, by_cli) = tokio::join!(server.catch_up(), cli.catch_up());

    // Assert
    let by_server = by_server.expect("server catch-up succeeds");
    let by_cli = by_cli.expect("CLI catch-up succeeds");
    assert_eq!(users::count(&db.pool).await.unwrap(), 50);
    assert_eq!(by_server + by_cli, u64::try_from(events).unwrap());
    assert_eq!(
        server.checkpoint().await.unwrap(),
        db.log.head().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_not_applied_twice_by_projectors_in_two_pools_over_several_rounds() {
    // Arrange: separate pools, as the server and the CLI are separate processes.
    let db = TestDb::new().await;
    let other_pool = db.second_pool().await;
    let server = Projector::new(db.log.clone());
    let cli = Projector::new(EventLog::new(other_pool.clone(), db.log.keyring().clone()));
    let mut total_applied = 0;

    for round in 0..5 {
        for n in 0..10 {
            let id = db
                .register(
                    &format!("u{round}x{n}"),
                    &format!("u{round}x{n}@example.com"),
                )
                .await;
            db.log_in(id, PASSWORD, LOGGED_IN_AT).await;
        }

        // Act
        let (by_server, by_cli) = tokio::join!(server.catch_up(), cli.catch_up());
        total_applied += by_server.unwrap() + by_cli.unwrap();

        // Assert (every round)
        assert_eq!(users::count(&db.pool).await.unwrap(), (round + 1) * 10);
        assert_eq!(
            total_applied,
            u64::try_from(db.event_count().await).unwrap()
        );
        assert_eq!(
            cli.checkpoint().await.unwrap(),
            db.log.head().await.unwrap()
        );
    }
    let last_logins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE last_login IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(last_logins, 50);
}

// --- rebuild and verify ---------------------------------------------------------------------------

#[tokio::test]
async fn a_rebuild_gives_the_same_rows_as_the_live_tables() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.varied_history().await;
    projector.catch_up().await.unwrap();
    let live = db.all_user_rows().await;
    let head = db.log.head().await.unwrap();
    let mut reported = Vec::new();

    // Act
    let replayed = projector
        .rebuild(|total| reported.push(total))
        .await
        .expect("rebuild succeeds");

    // Assert
    assert_eq!(live.len(), 4);
    assert_eq!(db.all_user_rows().await, live);
    assert_eq!(replayed, u64::try_from(head).unwrap());
    assert_eq!(reported.last(), Some(&replayed));
    assert_eq!(projector.checkpoint().await.unwrap(), head);
    assert_eq!(
        projector.verify().await.unwrap(),
        Vec::<TableDifference>::new()
    );
}

/// Every index of the schema with its definition, by name.
async fn indexes(pool: &SqlitePool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
          ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// How many dropped indexes are recorded as still to be made again.
async fn deferred_index_rows(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM deferred_indexes")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rebuild_makes_again_every_index_it_dropped_and_forgets_them() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.varied_history().await;
    projector.catch_up().await.unwrap();
    let before = indexes(&db.pool).await;

    // Act
    projector.rebuild(|_| {}).await.unwrap();

    // Assert
    assert!(before.iter().any(|(name, _)| name == "audit_log_by_actor"));
    assert_eq!(indexes(&db.pool).await, before);
    assert_eq!(deferred_index_rows(&db.pool).await, 0);
    // The indexes were sorted on helper threads; no pooled connection keeps them.
    let mut connections = Vec::new();
    for _ in 0..db.pool.size() {
        connections.push(db.pool.acquire().await.unwrap());
    }
    for connection in &mut connections {
        let threads: i64 = sqlx::query_scalar("PRAGMA threads")
            .fetch_one(&mut **connection)
            .await
            .unwrap();
        assert_eq!(threads, 0);
    }
}

#[tokio::test]
async fn indexes_an_interrupted_rebuild_dropped_are_made_at_the_next_open() {
    // Arrange: a rebuild that stopped after dropping an index (its row records it).
    let db = TestDb::new().await;
    let before = indexes(&db.pool).await;
    let (name, sql) = before
        .iter()
        .find(|(name, _)| name == "audit_log_by_aggregate")
        .cloned()
        .expect("the trail is indexed by aggregate");
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO deferred_indexes (name, sql) VALUES (?, ?)")
        .bind(&name)
        .bind(&sql)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(&format!("DROP INDEX {name}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(indexes(&db.pool).await, before);

    // Act
    let reopened = database::open(&db.dir.path().join("cvm.db")).await.unwrap();

    // Assert
    assert_eq!(indexes(&reopened).await, before);
    assert_eq!(deferred_index_rows(&reopened).await, 0);
}

#[tokio::test]
async fn a_rebuild_restores_a_tampered_table() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.varied_history().await;
    projector.catch_up().await.unwrap();
    let good = db.all_user_rows().await;
    sqlx::query("DELETE FROM users WHERE username = 'alice'")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET active = 0")
        .execute(&db.pool)
        .await
        .unwrap();

    // Act
    projector.rebuild(|_| {}).await.unwrap();

    // Assert
    assert_eq!(db.all_user_rows().await, good);
}

#[tokio::test]
async fn verify_finds_no_difference_after_a_catch_up() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.varied_history().await;
    projector.catch_up().await.unwrap();

    // Act
    let differences = projector.verify().await.expect("verify runs");

    // Assert
    assert_eq!(differences, Vec::<TableDifference>::new());
}

#[tokio::test]
async fn verify_names_a_table_that_differs() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let ids = db.varied_history().await;
    projector.catch_up().await.unwrap();
    let carol = ids[2];
    sqlx::query("UPDATE users SET role = 'superuser' WHERE id = ?")
        .bind(carol.to_string())
        .execute(&db.pool)
        .await
        .unwrap();
    let tampered = db.all_user_rows().await;
    let checkpoint = projector.checkpoint().await.unwrap();

    // Act
    let differences = projector.verify().await.expect("verify runs");

    // Assert
    assert_eq!(
        differences,
        vec![TableDifference {
            table: "users".to_owned(),
            only_live: 1,
            only_rebuilt: 1,
        }]
    );
    assert_eq!(db.all_user_rows().await, tampered, "verify must not repair");
    assert_eq!(db.row(carol).await.unwrap().role, Role::Superuser);
    assert_eq!(projector.checkpoint().await.unwrap(), checkpoint);
}

#[tokio::test]
async fn verify_counts_a_missing_row_as_only_rebuilt() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let ids = db.varied_history().await;
    projector.catch_up().await.unwrap();
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(ids[0].to_string())
        .execute(&db.pool)
        .await
        .unwrap();

    // Act
    let differences = projector.verify().await.expect("verify runs");

    // Assert
    assert_eq!(
        differences,
        vec![TableDifference {
            table: "users".to_owned(),
            only_live: 0,
            only_rebuilt: 1,
        }]
    );
    assert_eq!(users::count(&db.pool).await.unwrap(), 3, "still missing");
}

#[tokio::test]
async fn verify_counts_an_extra_row_as_only_live() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.varied_history().await;
    projector.catch_up().await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, username, username_canonical, email, role, active, date_joined)
         VALUES (?, 'ghost', 'ghost', 'ghost@example.com', 'superuser', 1,
                 '2026-01-01T00:00:00.000000Z')",
    )
    .bind(Uuid::new_v4().to_string())
    .execute(&db.pool)
    .await
    .unwrap();

    // Act
    let differences = projector.verify().await.expect("verify runs");

    // Assert
    assert_eq!(
        differences,
        vec![TableDifference {
            table: "users".to_owned(),
            only_live: 1,
            only_rebuilt: 0,
        }]
    );
}

#[tokio::test]
async fn verify_ignores_events_the_live_tables_have_not_read_yet() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let alice = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();
    db.register("bob", "bob@example.com").await;
    db.log_in(alice, PASSWORD, LOGGED_IN_AT).await;

    // Act
    let differences = projector.verify().await.expect("verify runs");

    // Assert
    assert_eq!(differences, Vec::<TableDifference>::new());
    assert_eq!(
        projector.checkpoint().await.unwrap(),
        1,
        "verify does not catch up"
    );
    assert_eq!(users::count(&db.pool).await.unwrap(), 1);
}

// --- the event log ----------------------------------------------------------------------------

#[tokio::test]
async fn the_event_log_reads_in_commit_order() {
    // Arrange: interleave commands on three aggregates.
    let db = TestDb::new().await;
    let ids = db.varied_history().await;
    let head = db.log.head().await.unwrap();

    // Act
    let all = db.log.read_after(0, 1_000).await.unwrap();

    // Assert
    assert_eq!(i64::try_from(all.len()).unwrap(), db.event_count().await);
    assert!(
        all.windows(2)
            .all(|pair| pair[0].position < pair[1].position),
        "positions strictly increase"
    );
    assert_eq!(all.last().unwrap().position, head);
    for id in &ids {
        let sequences: Vec<i64> = all
            .iter()
            .filter(|event| event.aggregate_id == id.to_string())
            .map(|event| event.sequence)
            .collect();
        let expected: Vec<i64> = (1..=i64::try_from(sequences.len()).unwrap()).collect();
        assert_eq!(sequences, expected, "gapless sequences for {id}");
    }
    assert!(all.iter().all(|event| event.aggregate_type == "User"));
    assert_eq!(all[0].event_type, "UserRegistered");
    assert_eq!(all[0].event_version, "1.0");
}

#[tokio::test]
async fn reading_after_a_position_starts_after_it() {
    // Arrange
    let db = TestDb::new().await;
    db.varied_history().await;
    let all = db.log.read_after(0, 1_000).await.unwrap();

    // Act
    let pages: Vec<Vec<_>> = {
        let mut pages = Vec::new();
        for event in &all {
            pages.push(db.log.read_after(event.position, 1).await.unwrap());
        }
        pages
    };

    // Assert
    for (i, page) in pages.iter().enumerate() {
        match all.get(i + 1) {
            Some(next) => assert_eq!(page.as_slice(), std::slice::from_ref(next)),
            None => assert!(page.is_empty(), "nothing after the head"),
        }
    }
    assert_eq!(db.log.read_after(0, 3).await.unwrap(), all[..3].to_vec());
}

#[tokio::test]
async fn an_aggregate_reads_back_its_own_events_in_sequence_order() {
    // Arrange
    let db = TestDb::new().await;
    let ids = db.varied_history().await;
    let dave = ids[3];

    // Act
    let events = db
        .log
        .read_aggregate("User", &dave.to_string())
        .await
        .unwrap();

    // Assert
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "UserRegistered",
            "UserDeactivated",
            "UserActivated",
            "UserLoggedIn"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let payload: UserEvent = serde_json::from_value(events[3].payload.clone()).unwrap();
    assert_eq!(
        payload,
        UserEvent::LoggedIn {
            at: datetime!(2026-12-01 00:00 UTC)
        }
    );
}

#[tokio::test]
async fn events_cannot_be_updated_or_deleted() {
    // Arrange
    let db = TestDb::new().await;
    let id = db.register("alice", "alice@example.com").await;
    let before = db.log.read_after(0, 10).await.unwrap();

    // Act
    let update = sqlx::query("UPDATE events SET payload = '{}'")
        .execute(&db.pool)
        .await;
    let delete = sqlx::query("DELETE FROM events").execute(&db.pool).await;

    // Assert
    let update = update.expect_err("an UPDATE of events is refused");
    let delete = delete.expect_err("a DELETE from events is refused");
    assert!(update.to_string().contains("append-only"), "{update}");
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(db.log.read_after(0, 10).await.unwrap(), before);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].aggregate_id, id.to_string());
}

#[tokio::test]
async fn an_event_cannot_be_stored_twice_at_the_same_sequence() {
    // Arrange
    let db = TestDb::new().await;
    let id = db.register("alice", "alice@example.com").await;

    // Act
    let duplicate = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('User', ?, 1, 'UserActivated', '1.0', '\"Activated\"', '{}')",
    )
    .bind(id.to_string())
    .execute(&db.pool)
    .await;

    // Assert
    assert!(duplicate.is_err());
    assert_eq!(db.event_count().await, 1);
}

// --- events the projector cannot or need not read -------------------------------------------------

#[tokio::test]
async fn a_corrupt_event_stops_catch_up_with_a_clear_error() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();
    let checkpoint_before = projector.checkpoint().await.unwrap();
    let corrupt = db
        .insert_raw_event("User", "UserNonsense", r#"{"Nonsense":{}}"#)
        .await;
    let bob = db.register("bob", "bob@example.com").await;

    // Act
    let first = projector.catch_up().await;
    let second = projector.catch_up().await;

    // Assert
    match first {
        Err(ProjectionError::Corrupt {
            position,
            event_type,
            ..
        }) => {
            assert_eq!(position, corrupt);
            assert_eq!(event_type, "UserNonsense");
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
    let error = second.expect_err("catch-up stays stopped; the event is not skipped");
    assert!(
        error.to_string().contains(&format!("position {corrupt}")),
        "the message names the position: {error}"
    );
    let checkpoint = projector.checkpoint().await.unwrap();
    assert!(
        checkpoint < corrupt,
        "checkpoint {checkpoint} moved past {corrupt}"
    );
    assert_eq!(checkpoint, checkpoint_before);
    assert_eq!(
        db.row(bob).await,
        None,
        "nothing after the corrupt event is applied"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_json_stops_catch_up_rather_than_vanishing() {
    // The stored text goes into the read query's JSON arrays as it is: text that is not JSON
    // must fail the read, not drop the event or its neighbours.
    for payload in ["", r#"{"Registered": "#, "not json"] {
        // Arrange
        let db = TestDb::new().await;
        let projector = Projector::new(db.log.clone());
        let alice = db.register("alice", "alice@example.com").await;
        projector.catch_up().await.unwrap();
        let checkpoint_before = projector.checkpoint().await.unwrap();
        let broken = db.insert_raw_event("User", "UserRegistered", payload).await;
        let bob = db.register("bob", "bob@example.com").await;

        // Act
        let result = projector.catch_up().await;

        // Assert
        assert!(result.is_err(), "payload {payload:?}: {result:?}");
        assert_eq!(projector.checkpoint().await.unwrap(), checkpoint_before);
        assert!(checkpoint_before < broken);
        assert_eq!(db.row(bob).await, None, "payload {payload:?}");
        assert!(db.row(alice).await.is_some());
    }
}

#[tokio::test]
async fn events_of_unknown_aggregate_types_are_skipped() {
    // Arrange
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let other = db
        .insert_raw_event("Other", "OtherHappened", r#"{"Nonsense":{}}"#)
        .await;
    let alice = db.register("alice", "alice@example.com").await;

    // Act
    let applied = projector
        .catch_up()
        .await
        .expect("no error for a foreign event");

    // Assert
    assert_eq!(applied, 2);
    let checkpoint = projector.checkpoint().await.unwrap();
    assert!(checkpoint > other);
    assert_eq!(checkpoint, db.log.head().await.unwrap());
    assert!(db.row(alice).await.is_some());
    assert_eq!(users::count(&db.pool).await.unwrap(), 1);
}

// --- metadata -----------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_survives_the_round_trip_through_the_log() {
    // Arrange
    let db = TestDb::new().await;
    let id = Uuid::new_v4();
    let metadata = EventMetadata {
        actor: Some(Uuid::new_v4()),
        ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Test/1.0".to_owned()),
        request_id: "req-0123456789".to_owned(),
        at: Some(datetime!(2026-11-28 12:34:56.987654321 UTC)),
    };

    // Act
    db.run_with(
        id,
        register("alice", "alice@example.com", Role::User),
        &metadata,
    )
    .await;
    let stored = db
        .log
        .read_aggregate("User", &id.to_string())
        .await
        .unwrap();

    // Assert
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].metadata(), metadata);
    assert_eq!(
        db.log.read_after(0, 1).await.unwrap()[0].metadata(),
        metadata
    );
}

#[tokio::test]
async fn metadata_without_optional_fields_round_trips_too() {
    // Arrange
    let db = TestDb::new().await;
    let id = Uuid::new_v4();
    let metadata = EventMetadata::now("cli-rebuild");

    // Act
    db.run_with(
        id,
        register("alice", "alice@example.com", Role::User),
        &metadata,
    )
    .await;
    let stored = db.log.read_after(0, 1).await.unwrap();

    // Assert
    assert_eq!(stored[0].metadata(), metadata);
    assert_eq!(stored[0].metadata().actor, None);
    assert_eq!(stored[0].metadata().ip, None);
}

#[tokio::test]
async fn every_event_of_a_command_carries_the_metadata() {
    // Arrange
    let db = TestDb::new().await;
    let id = db.register("alice", "alice@example.com").await;
    let metadata = EventMetadata {
        actor: Some(id),
        request_id: "req-deactivate".to_owned(),
        ..EventMetadata::now("ignored")
    };

    // Act
    db.run_with(id, UserCommand::Deactivate, &metadata).await;
    let stored = db
        .log
        .read_aggregate("User", &id.to_string())
        .await
        .unwrap();

    // Assert
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].metadata().request_id, "test");
    assert_eq!(stored[1].metadata(), metadata);
}

// --- personal data: sealing and erasure ---------------------------------------------------------

#[tokio::test]
async fn personal_data_is_sealed_in_the_table_and_plain_through_the_log() {
    // Arrange
    let db = TestDb::new().await;

    // Act
    let id = db.register("alice", "alice@example.com").await;

    // Assert
    let (payload, metadata): (String, String) =
        sqlx::query_as("SELECT payload, metadata FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        !payload.contains("alice") && !payload.contains(PASSWORD),
        "{payload}"
    );
    assert!(
        payload.contains("\"role\":\"user\""),
        "public facts stay readable"
    );
    assert!(metadata.contains(&id.to_string()), "the subject is named");
    let events = db.log.read_after(0, 10).await.unwrap();
    assert_eq!(
        events[0].payload["Registered"]["email"],
        "alice@example.com"
    );
    assert!(!events[0].erased);
}

#[tokio::test]
async fn erasing_users_empties_their_rows_and_a_rebuild_agrees() {
    // Arrange: carol is deactivated, dave was deactivated and activated again.
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let [alice, bob, carol, dave] = db.varied_history().await[..] else {
        unreachable!()
    };
    projector.catch_up().await.unwrap();

    // Act
    db.run(carol, UserCommand::Erase { password: None }).await;
    db.run(
        dave,
        UserCommand::Erase {
            password: Some(PASSWORD.to_owned()),
        },
    )
    .await;
    projector.catch_up().await.unwrap();

    // Assert: gone from the read models, their trail kept without words, totals taken back.
    assert!(db.row(carol).await.is_none() && db.row(dave).await.is_none());
    assert!(db.row(alice).await.is_some() && db.row(bob).await.is_some());
    let summaries: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, summary FROM audit_log WHERE aggregate_id = ? ORDER BY position",
    )
    .bind(dave.to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        summaries.len(),
        5,
        "registered, deactivated, activated, logged in, erased"
    );
    assert!(summaries[..4]
        .iter()
        .all(|(_, summary)| summary == "erased user"));
    assert_eq!(summaries[4].0, "UserErased");
    let totals = projections::analytics::totals(&db.pool).await.unwrap();
    assert_eq!(
        (
            totals.users,
            totals.active_users,
            totals.deactivated_users,
            totals.superusers
        ),
        (2, 2, 0, 1)
    );
    let live = db.all_user_rows().await;
    assert!(projector.verify().await.unwrap().is_empty());
    projector.rebuild(|_| {}).await.unwrap();
    assert_eq!(db.all_user_rows().await, live);
    assert!(projector.verify().await.unwrap().is_empty());
    let erased = db
        .log
        .read_aggregate("User", &dave.to_string())
        .await
        .unwrap();
    assert!(erased.iter().all(|event| event.erased));
    assert_eq!(
        erased[0].payload,
        serde_json::json!({"Registered": {
            "role": "user", "registered_at": "2026-11-28T12:34:56.123456789Z"
        }})
    );
}

#[tokio::test]
async fn nothing_more_can_be_recorded_about_an_erased_person() {
    // Arrange
    let db = TestDb::new().await;
    let id = db.register("alice", "alice@example.com").await;
    let context = db.store.load_aggregate(&id.to_string()).await.unwrap();
    db.run(id, UserCommand::Erase { password: None }).await;

    // Act: an event decided before the erasure arrives after it.
    let late = db
        .store
        .commit(
            vec![UserEvent::LoggedIn { at: LOGGED_IN_AT }],
            context,
            EventMetadata::now("late").to_map(),
        )
        .await;

    // Assert
    assert!(late.is_err(), "refused: {late:?}");
    assert_eq!(db.event_count().await, 2);
    let mut reloaded = db.store.load_aggregate(&id.to_string()).await.unwrap();
    assert!(
        !reloaded.aggregate().registered,
        "an erased person's aggregate is gone"
    );
}

type ProfileTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

async fn profile_rows(pool: &SqlitePool) -> Vec<ProfileTuple> {
    sqlx::query_as("SELECT * FROM profiles ORDER BY user_id")
        .fetch_all(pool)
        .await
        .expect("profiles select runs")
}

fn profile(full_name: &str, headline: &str) -> UserCommand {
    UserCommand::UpdateProfile {
        profile: domain::Profile {
            full_name: full_name.to_owned(),
            headline: headline.to_owned(),
            ..Default::default()
        },
    }
}

fn avatar(hash: &str) -> UserCommand {
    UserCommand::ChangeAvatar {
        content_hash: hash.to_owned(),
        width: 64,
        height: 48,
    }
}

#[tokio::test]
async fn profile_changes_merged_in_one_batch_give_the_rows_of_one_event_at_a_time() {
    // Arrange: registrations, edits of some fields and pictures set and removed, with the read
    // models caught up after every command (one event per batch).
    let db = TestDb::new().await;
    let projector = Projector::new(db.log.clone());
    let alice = db.register("alice", "alice@example.com").await;
    projector.catch_up().await.unwrap();
    let bob = db.register("bob", "bob@example.com").await;
    projector.catch_up().await.unwrap();
    let history = [
        (alice, profile("Alice Liddell", "")),
        (alice, avatar("a1")),
        (bob, avatar("b1")),
        (alice, profile("Alice Liddell", "Engineer")),
        (alice, UserCommand::RemoveAvatar),
        (bob, profile("Bob", "")),
        (bob, avatar("b2")),
        (
            bob,
            UserCommand::ChangeRole {
                role: Role::Superuser,
            },
        ),
    ];
    for (id, command) in history {
        db.run(id, command).await;
        projector.catch_up().await.unwrap();
    }
    let one_at_a_time = profile_rows(&db.pool).await;
    let users_one_at_a_time = db.all_user_rows().await;

    // Act: the whole log again, in one batch.
    projector.rebuild(|_| {}).await.unwrap();

    // Assert
    let merged = profile_rows(&db.pool).await;
    assert_eq!(merged, one_at_a_time);
    assert_eq!(db.all_user_rows().await, users_one_at_a_time);
    let by_name = |id: Uuid| {
        merged
            .iter()
            .find(|row| row.0 == id.to_string())
            .cloned()
            .expect("a profile row")
    };
    let (alice_row, bob_row) = (by_name(alice), by_name(bob));
    assert_eq!(
        (alice_row.1.as_str(), alice_row.2.as_str(), &alice_row.7),
        ("Alice Liddell", "Engineer", &None)
    );
    assert_eq!(
        (bob_row.1.as_str(), &bob_row.7, bob_row.8, bob_row.9),
        ("Bob", &Some("b2".to_owned()), Some(64), Some(48))
    );
    assert!(alice_row.10.is_some(), "updated_at is set");
    assert_eq!(db.row(bob).await.unwrap().role, Role::Superuser);
}
