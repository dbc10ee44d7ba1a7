//! Password change, password reset by email, and the session hygiene around them.

use std::time::Duration;

use axum::http::StatusCode;

use crate::helpers::{outbox, reset_path, TestApp, GOOD_PASSWORD};

const NEW_PASSWORD: &str = "marmalade bicycle orbit";

#[tokio::test]
async fn a_password_change_needs_the_current_password() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;

    let response = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "not my password!"),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("The current password is not correct."));
    assert!(
        !response.body.contains(NEW_PASSWORD),
        "passwords are never echoed"
    );
}

#[tokio::test]
async fn a_new_password_follows_the_policy() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let response = app
        .post_form(
            "/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("new_password", "password1234"),
                ("new_password_confirm", "password1234"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("This password is too common."));
}

#[tokio::test]
async fn a_password_change_ends_other_sessions_and_keeps_this_one() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let mut laptop = app.new_browser();
    laptop.login("alice@example.com", GOOD_PASSWORD).await;
    assert_eq!(laptop.get("/cvs").await.status, StatusCode::OK);

    let changed = app
        .post_form(
            "/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;

    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/cvs").await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        laptop.get("/cvs").await.status,
        StatusCode::SEE_OTHER,
        "others end"
    );
    let mut fresh = app.new_browser();
    assert_eq!(
        fresh.login("alice@example.com", GOOD_PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        fresh.login("alice@example.com", NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_reset_page_answers_alike_for_known_and_unknown_emails() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;

    let known = app
        .post_form("/password-reset", &[("email", "alice@example.com")])
        .await;
    let unknown = app
        .post_form("/password-reset", &[("email", "nobody@example.com")])
        .await;

    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(unknown.status, known.status);
    let strip = |body: &str| {
        body.lines()
            .filter(|line| !line.contains("csrf_token") && !line.contains("Request id"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&known.body), strip(&unknown.body));
    let mails = outbox(&app, 2, Duration::from_secs(2)).await;
    assert_eq!(mails.len(), 1, "only the known address gets a mail");
    assert!(mails[0].contains("alice@example.com"));
}

#[tokio::test]
async fn a_password_reset_works_end_to_end_through_the_outbox() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let mut phone = app.new_browser();
    phone.login("alice@example.com", GOOD_PASSWORD).await;
    let mut stranger = app.new_browser();

    stranger
        .post_form("/password-reset", &[("email", "Alice@Example.com")])
        .await;
    let mails = outbox(&app, 1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    let path = reset_path(&mails[0]);
    assert_eq!(stranger.get(&path).await.status, StatusCode::OK);
    let token = path.trim_start_matches("/password-reset/");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE payload LIKE ?")
        .bind(format!("%{token}%"))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "the token itself is never stored, only its hash");

    let reset = stranger
        .post_form(
            &path,
            &[
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;

    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    assert_eq!(reset.location(), "/login");
    assert_eq!(
        app.get("/cvs").await.status,
        StatusCode::SEE_OTHER,
        "sessions end"
    );
    assert_eq!(
        phone.get("/cvs").await.status,
        StatusCode::SEE_OTHER,
        "all of them"
    );
    assert_eq!(
        stranger
            .login("alice@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    let mut again = app.new_browser();
    let reused = again.get(&path).await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND);
    assert!(reused.body.contains("not valid"));
    let reused_post = again
        .post_form(
            &path,
            &[
                ("new_password", "another fine passphrase"),
                ("new_password_confirm", "another fine passphrase"),
            ],
        )
        .await;
    assert_eq!(reused_post.status, StatusCode::NOT_FOUND);
    assert!(reused_post.body.contains("not valid"));
}

#[tokio::test]
async fn an_expired_reset_link_is_refused_clearly() {
    let mut app = TestApp::spawn_with(|config| {
        config.password_reset_ttl = Duration::from_secs(1);
    })
    .await;
    app.existing_user("alice").await;
    app.post_form("/password-reset", &[("email", "alice@example.com")])
        .await;
    let path = reset_path(&outbox(&app, 1, Duration::from_secs(5)).await[0]);

    tokio::time::sleep(Duration::from_millis(1200)).await;

    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("expired"));
    let post = app
        .post_form(
            &path,
            &[
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert!(post.body.contains("expired"));
    assert_eq!(
        app.login("alice@example.com", GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "the old password still works"
    );
}

#[tokio::test]
async fn made_up_reset_links_are_refused() {
    let mut app = TestApp::spawn().await;
    for path in [
        "/password-reset/abc",
        &format!("/password-reset/{}", "a".repeat(64)),
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.contains("Ask for a new link"));
    }
}

#[tokio::test]
async fn a_weak_password_on_the_reset_form_keeps_the_link_usable() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;
    app.post_form("/password-reset", &[("email", "alice@example.com")])
        .await;
    let path = reset_path(&outbox(&app, 1, Duration::from_secs(5)).await[0]);

    let weak = app
        .post_form(
            &path,
            &[("new_password", "short"), ("new_password_confirm", "short")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("at least 12 characters"));

    let good = app
        .post_form(
            &path,
            &[
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn demotion_ends_the_superusers_sessions() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    assert_eq!(app.get("/admin").await.status, StatusCode::OK);
    let id = app.user_id("admin@example.com").await;

    app.run(
        id,
        domain::UserCommand::ChangeRole {
            role: domain::Role::User,
        },
    )
    .await;

    let after = app.get("/admin").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "logged out, not merely refused"
    );
}

#[tokio::test]
async fn deactivation_ends_every_session_of_the_user() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let mut other = app.new_browser();
    other.login("alice@example.com", GOOD_PASSWORD).await;
    let id = app.user_id("alice@example.com").await;

    app.run(id, domain::UserCommand::Deactivate).await;
    app.run(id, domain::UserCommand::Activate).await;

    assert_eq!(app.get("/cvs").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        other.get("/cvs").await.status,
        StatusCode::SEE_OTHER,
        "even after reactivation"
    );
}
