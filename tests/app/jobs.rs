//! The scheduled jobs' work, run directly: projection-lag check and purging expired data.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, EventStore};
use domain::{Email, Password, Role, User, UserCommand, UserServices, Username};
use projections::{job_runs, EventLog, EventMetadata};
use tower_sessions_sqlx_store::SqliteStore;

use crate::helpers::TestApp;

/// Records a registration in the log without bringing the read models up to date, as if the
/// server had crashed between the two.
async fn register_without_projecting(app: &TestApp, name: &str) {
    let store = PersistedEventStore::<EventLog, User>::new_event_store(app.core.log.clone());
    let id = uuid::Uuid::new_v4().to_string();
    let mut context = store.load_aggregate(&id).await.unwrap();
    let sink = cqrs_es::event_sink::EventSink::default();
    let email = format!("{name}@example.com");
    let command = UserCommand::Register {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&email).unwrap(),
        password: Password::parse("correct horse battery staple", name, &email).unwrap(),
        role: Role::User,
        at: time::OffsetDateTime::now_utc(),
    };
    let services = UserServices::new(Arc::new(domain::testing::PlainTextHasher));
    context
        .aggregate()
        .handle(command, &services, &sink)
        .await
        .unwrap();
    let events = sink.collect().await;
    store
        .commit(events, context, EventMetadata::now("test").to_map())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_lag_check_reports_and_closes_a_lag() {
    let app = TestApp::spawn().await;
    register_without_projecting(&app, "ghost").await;
    assert_eq!(app.count("users").await, 0, "not projected yet");

    let (ok, detail) = cvm::jobs::check_projection_lag(&app.core.projector)
        .await
        .unwrap();

    assert!(!ok);
    assert!(detail.contains("1 event(s) behind"), "{detail}");
    assert_eq!(app.count("users").await, 1, "caught up");
    let (ok, detail) = cvm::jobs::check_projection_lag(&app.core.projector)
        .await
        .unwrap();
    assert!(ok, "{detail}");
}

#[tokio::test]
async fn expired_reset_links_are_purged_without_breaking_verify() {
    let mut app =
        TestApp::spawn_with(|config| config.password_reset_ttl = Duration::from_secs(1)).await;
    app.existing_user("alice").await;
    app.post_form("/password-reset", &[("email", "alice@example.com")])
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.count("password_resets").await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.count("password_resets").await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let sessions = projections::database::open_sessions(&app.data_dir().join("sessions.db"))
        .await
        .unwrap();

    let (ok, detail) = cvm::jobs::purge_expired(&SqliteStore::new(sessions), app.pool())
        .await
        .unwrap();

    assert!(ok);
    assert!(detail.contains("1 expired reset link"), "{detail}");
    assert_eq!(app.count("password_resets").await, 0);
    assert!(app.core.projector.verify().await.unwrap().is_empty());
}

#[tokio::test]
async fn job_runs_keep_the_last_outcome_of_each_job() {
    let app = TestApp::spawn().await;
    job_runs::record(app.pool(), "projection-lag", false, "behind")
        .await
        .unwrap();
    job_runs::record(app.pool(), "projection-lag", true, "up to date")
        .await
        .unwrap();
    job_runs::record(app.pool(), "purge-expired", true, "done")
        .await
        .unwrap();

    let runs = job_runs::all(app.pool()).await.unwrap();

    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].name, "projection-lag");
    assert!(runs[0].ok);
    assert_eq!(runs[0].detail, "up to date");
}

#[tokio::test]
async fn the_analytics_rollup_reports_yesterday_and_agrees_with_itself() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;

    let (ok, detail) = cvm::jobs::analytics_rollup(app.pool()).await.unwrap();

    assert!(ok, "{detail}");
    assert!(detail.contains("1 users"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_recorded_and_runs_again_while_the_server_answers() {
    let mut app = TestApp::spawn().await;
    let scheduler = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    cvm::jobs::add(
        &scheduler,
        app.pool(),
        "always-fails",
        "* * * * * *",
        move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                anyhow::bail!("the disk is on fire")
            }
        },
    )
    .await
    .unwrap();
    scheduler.start().await.unwrap();

    tokio::time::sleep(Duration::from_millis(3_500)).await;

    assert!(
        runs.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "it ran again after failing"
    );
    let recorded = job_runs::all(app.pool()).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(!recorded[0].ok);
    assert!(recorded[0].detail.contains("the disk is on fire"));
    assert_eq!(app.get("/healthz").await.status, axum::http::StatusCode::OK);
    let mut scheduler = scheduler;
    scheduler.shutdown().await.unwrap();
}
