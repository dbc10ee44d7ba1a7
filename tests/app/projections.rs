//! The read models built live by the server equal a replay of the log into empty tables.

use crate::helpers::{TestApp, GOOD_PASSWORD};

#[tokio::test]
async fn replaying_the_log_gives_the_live_rows() {
    let mut app = TestApp::spawn().await;
    let alice = app.existing_user("alice").await;
    app.existing_user("bob").await;
    app.login(&alice, GOOD_PASSWORD).await;
    app.login(&alice, "a wrong password!").await;
    app.logout().await;
    app.logged_in_superuser().await;

    let live: Vec<(String, String, String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, username, email, active, date_joined, last_login FROM users ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert!(app.core.projector.verify().await.unwrap().is_empty());

    let replayed = app.core.projector.rebuild(|_| {}).await.unwrap();

    let rebuilt: Vec<(String, String, String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, username, email, active, date_joined, last_login FROM users ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(live.len(), 3);
    assert_eq!(live, rebuilt);
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(replayed as i64, events);
}
