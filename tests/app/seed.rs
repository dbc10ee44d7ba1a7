//! `cvm seed`: data made by the real aggregates, stored as commands store it, and usable.

use axum::http::StatusCode;
use cvm::seed::{SeedPlan, ADMIN_PASSWORD, USER_PASSWORD};

use crate::helpers::TestApp;

#[tokio::test]
async fn seeded_data_is_complete_consistent_and_usable() {
    // Arrange
    let mut app = TestApp::spawn().await;
    let plan = SeedPlan {
        users: 25,
        cvs_per_user: 2,
        days: 30,
        logins_per_user: 2,
        seed: 7,
    };

    // Act
    let report = cvm::seed::seed(&app.core, plan).await.unwrap();

    // Assert: what was asked for, and read models equal to a rebuild of the log.
    assert_eq!((report.users, report.cvs), (26, 50));
    assert_eq!(app.count("users").await, 26);
    assert_eq!(app.count("cvs").await, 50);
    let events = app.events().await;
    assert_eq!(events.len() as u64, report.events);
    assert!(app.core.projector.verify().await.unwrap().is_empty());
    // Times run forward through the log, spread over the period, none in the future.
    let times: Vec<_> = events
        .iter()
        .map(|event| event.metadata().at.expect("a time"))
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
    assert!(*times.last().unwrap() <= time::OffsetDateTime::now_utc());
    assert!(*times.last().unwrap() - times[0] > time::Duration::days(7));
    // Every CV has basics, work, education, skills and languages, and was edited.
    for section in ["work", "education", "skills", "languages"] {
        let without: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM cvs WHERE json_extract(section_counts, '$.{section}') IS NULL"
        ))
        .fetch_one(app.pool())
        .await
        .unwrap();
        assert_eq!(without, 0, "every CV has {section}");
    }
    assert!(events.iter().any(|e| e.event_type == "CvEntryUpdated"));
    // A second seeding of the same directory is refused.
    assert!(cvm::seed::seed(&app.core, plan).await.is_err());
    // The documented passwords log in, and pages show the data.
    let admin = app.login("admin@example.com", ADMIN_PASSWORD).await;
    assert_eq!(admin.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/admin").await.status, StatusCode::OK);
    let mut user = app.new_browser();
    let login = user.login("user000007@example.com", USER_PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let list = user.get("/cvs").await;
    let cv = list
        .body
        .split("href=\"/cvs/")
        .filter_map(|rest| rest.get(..36))
        .find(|id| uuid::Uuid::parse_str(id).is_ok())
        .expect("a CV link")
        .to_owned();
    let page = user.get(&format!("/cvs/{cv}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Computer science"), "education shown");
    // Names are taken: registering a seeded email again is refused.
    let mut stranger = app.new_browser();
    let again = stranger
        .register(
            "someone",
            "user000001@example.com",
            crate::helpers::GOOD_PASSWORD,
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_log_of_several_batches_is_projected_whole_and_once() {
    // Arrange: over 20,000 events, so that catching up takes more than two batches of 10,000
    // (each next batch is read while the one before is written).
    let app = TestApp::spawn().await;
    let plan = SeedPlan {
        users: 1_600,
        cvs_per_user: 1,
        days: 30,
        logins_per_user: 3,
        seed: 11,
    };

    // Act
    let report = cvm::seed::seed(&app.core, plan).await.unwrap();

    // Assert: one audit row for every event of the log, none twice, none left out.
    assert!(report.events > 20_000, "{} events", report.events);
    let positions: Vec<i64> = sqlx::query_scalar("SELECT rowid FROM events ORDER BY rowid")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let audited: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit_log ORDER BY position")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(audited, positions);
    assert_eq!(
        app.core.projector.checkpoint().await.unwrap(),
        *positions.last().unwrap()
    );
    assert_eq!(app.count("users").await, 1_601);
    assert_eq!(app.count("cvs").await, 1_600);
    assert!(app.core.projector.verify().await.unwrap().is_empty());
}
