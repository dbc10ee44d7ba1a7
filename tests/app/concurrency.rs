//! Uniqueness under races: the claims table, not a read-model lookup, decides.

use axum::http::StatusCode;

use crate::helpers::{TestApp, GOOD_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_registrations_with_one_email_make_one_account() {
    let app = TestApp::spawn().await;
    let mut browsers = Vec::new();
    for _ in 0..20 {
        let mut browser = app.new_browser();
        browser.csrf_token().await;
        browsers.push(browser);
    }

    let attempts = browsers.into_iter().enumerate().map(|(n, mut browser)| {
        tokio::spawn(async move {
            browser
                .register(&format!("user{n}"), "same@example.com", GOOD_PASSWORD)
                .await
                .status
        })
    });
    let statuses: Vec<StatusCode> = futures_statuses(attempts).await;

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, refused), (1, 19), "{statuses:?}");
    assert_eq!(app.count("users").await, 1);
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'UserRegistered'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_registrations_with_one_username_in_different_cases_make_one_account() {
    let app = TestApp::spawn().await;
    let attempts = (0..10).map(|n| {
        let mut browser = app.new_browser();
        let username = if n % 2 == 0 { "Alice" } else { "aLiCe" };
        tokio::spawn(async move {
            browser
                .register(username, &format!("alice{n}@example.com"), GOOD_PASSWORD)
                .await
                .status
        })
    });
    let statuses = futures_statuses(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert_eq!(app.count("users").await, 1);
}

async fn futures_statuses(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<StatusCode>>,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        statuses.push(task.await.expect("task"));
    }
    statuses
}
