//! Administration of accounts and CVs: access, search and filters, creating accounts, roles,
//! deactivation, the last-superuser rule, and archiving any CV.

use axum::http::StatusCode;

use crate::helpers::{TestApp, GOOD_PASSWORD};

#[tokio::test]
async fn admin_pages_are_for_superusers_only() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    let id = app.user_id(&email).await;
    let paths = [
        "/admin/users".to_owned(),
        "/admin/users/new".to_owned(),
        format!("/admin/users/{id}"),
        "/admin/cvs".to_owned(),
    ];

    for path in &paths {
        let anonymous = app.new_browser().get(path).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{path}");
        assert!(anonymous.location().starts_with("/login?next="));
    }
    app.login(&email, GOOD_PASSWORD).await;
    for path in &paths {
        assert_eq!(app.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    for path in [
        format!("/admin/users/{id}/role"),
        format!("/admin/users/{id}/deactivate"),
        "/admin/users/new".to_owned(),
    ] {
        let response = app
            .post_form(
                &path,
                &[("role", "superuser"), ("username", "x"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "POST {path}");
    }
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = ?")
        .bind(id.to_string())
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(role, "user");
}

#[tokio::test]
async fn the_user_list_searches_and_filters() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;
    app.existing_user("bob").await;
    let carol = app.existing_user("carol").await;
    let carol_id = app.user_id(&carol).await;
    app.run(carol_id, domain::UserCommand::Deactivate).await;
    app.login("bob@example.com", GOOD_PASSWORD).await;
    app.post_form("/profile", &[("full_name", "Robert Zimmermann")])
        .await;
    app.logout().await;
    app.logged_in_superuser().await;

    let by_name = app.get("/admin/users?q=zimmer").await;
    let by_email = app.get("/admin/users?q=ALICE%40example").await;
    let inactive = app.get("/admin/users?active=false").await;
    let superusers = app.get("/admin/users?role=superuser").await;
    let hostile = app
        .get("/admin/users?q=%25&role=root&active=perhaps&page=abc&sort=%3Cx%3E")
        .await;

    assert!(by_name.body.contains(">bob<") && !by_name.body.contains(">alice<"));
    assert!(by_email.body.contains(">alice<") && !by_email.body.contains(">bob<"));
    assert!(inactive.body.contains(">carol<") && !inactive.body.contains(">alice<"));
    assert!(superusers.body.contains(">admin<") && !superusers.body.contains(">bob<"));
    assert_eq!(hostile.status, StatusCode::OK);
    assert!(
        !hostile.body.contains(">alice<"),
        "a literal % matches nothing"
    );
}

#[tokio::test]
async fn the_user_list_is_paginated() {
    let mut app = TestApp::spawn().await;
    for n in 0..55 {
        app.core
            .accounts
            .register(
                &cvm::accounts::Registration {
                    username: format!("user{n:02}"),
                    email: format!("user{n:02}@example.com"),
                    password: GOOD_PASSWORD.into(),
                    password_confirm: GOOD_PASSWORD.into(),
                },
                domain::Role::User,
                &projections::EventMetadata::now("test"),
            )
            .await
            .unwrap();
    }
    app.logged_in_superuser().await;

    let first = app.get("/admin/users?sort=joined_oldest").await;
    let second = app.get("/admin/users?sort=joined_oldest&page=2").await;

    assert!(first.body.contains(">user00<") && !first.body.contains(">user54<"));
    assert!(second.body.contains(">user54<") && !second.body.contains(">user00<"));
    assert!(first.body.contains("Page 1 of 2"));
}

#[tokio::test]
async fn a_superuser_creates_an_account_with_the_same_validation() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;

    let weak = app
        .post_form(
            "/admin/users/new",
            &[
                ("username", "dave"),
                ("email", "dave@example.com"),
                ("password", "password1234"),
                ("role", "user"),
            ],
        )
        .await;
    let created = app
        .post_form(
            "/admin/users/new",
            &[
                ("username", "dave"),
                ("email", "dave@example.com"),
                ("password", GOOD_PASSWORD),
                ("role", "superuser"),
            ],
        )
        .await;
    let duplicate = app
        .post_form(
            "/admin/users/new",
            &[
                ("username", "DAVE"),
                ("email", "other@example.com"),
                ("password", GOOD_PASSWORD),
                ("role", "user"),
            ],
        )
        .await;

    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("This password is too common."));
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert!(created.location().starts_with("/admin/users/"));
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    let dave = app.user_id("dave@example.com").await;
    let admin = app.user_id("admin@example.com").await;
    let (role, actor): (String, String) = sqlx::query_as(
        "SELECT u.role, json_extract(e.metadata, '$.actor') FROM users u JOIN events e ON e.aggregate_id = u.id WHERE u.id = ? AND e.sequence = 1",
    )
    .bind(dave.to_string())
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(role, "superuser");
    assert_eq!(actor, admin.to_string(), "recorded with the admin as actor");
    let mut dave_browser = app.new_browser();
    assert_eq!(
        dave_browser
            .login("dave@example.com", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn promotion_demotion_deactivation_and_activation() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    let alice = app.user_id(&email).await;
    let mut alice_browser = app.new_browser();
    alice_browser.login(&email, GOOD_PASSWORD).await;
    app.logged_in_superuser().await;

    let promoted = app
        .post_form(
            &format!("/admin/users/{alice}/role"),
            &[("role", "superuser")],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        alice_browser.get("/admin").await.status,
        StatusCode::OK,
        "promotion takes effect at once"
    );

    let demoted = app
        .post_form(&format!("/admin/users/{alice}/role"), &[("role", "user")])
        .await;
    assert_eq!(demoted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        alice_browser.get("/admin").await.status,
        StatusCode::SEE_OTHER,
        "demotion ends her sessions"
    );

    let deactivated = app
        .post_form(&format!("/admin/users/{alice}/deactivate"), &[])
        .await;
    assert_eq!(deactivated.status, StatusCode::SEE_OTHER);
    assert_eq!(
        alice_browser.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let activated = app
        .post_form(&format!("/admin/users/{alice}/activate"), &[])
        .await;
    assert_eq!(activated.status, StatusCode::SEE_OTHER);
    assert_eq!(
        alice_browser.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let page = app.get(&format!("/admin/users/{alice}")).await;
    assert!(page.body.contains("alice@example.com"));
    for event in [
        "role changed from user to superuser",
        "deactivated",
        "activated",
    ] {
        assert!(page.body.contains(event), "recent events list {event}");
    }
    let dashboard = app.get("/admin").await;
    assert!(dashboard.body.contains("Most recent activity"));
    assert!(dashboard
        .body
        .contains("role changed from superuser to user"));
}

#[tokio::test]
async fn the_last_active_superuser_cannot_be_demoted_or_deactivated() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let admin = app.user_id("admin@example.com").await;

    let demote = app
        .post_form(
            &format!("/admin/users/{admin}/role"),
            &[("role", "user"), ("confirm", "yes")],
        )
        .await;
    let deactivate = app
        .post_form(
            &format!("/admin/users/{admin}/deactivate"),
            &[("confirm", "yes")],
        )
        .await;

    assert_eq!(demote.status, StatusCode::CONFLICT);
    assert!(demote.body.contains("last active superuser"));
    assert_eq!(deactivate.status, StatusCode::CONFLICT);
    assert_eq!(
        app.get("/admin").await.status,
        StatusCode::OK,
        "still a superuser"
    );
}

#[tokio::test]
async fn demoting_oneself_needs_confirmation() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    let alice = app.user_id(&email).await;
    app.run(
        alice,
        domain::UserCommand::ChangeRole {
            role: domain::Role::Superuser,
        },
    )
    .await;
    app.logged_in_superuser().await;
    let admin = app.user_id("admin@example.com").await;

    let unconfirmed = app
        .post_form(&format!("/admin/users/{admin}/role"), &[("role", "user")])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/admin").await.status, StatusCode::OK);

    let confirmed = app
        .post_form(
            &format!("/admin/users/{admin}/role"),
            &[("role", "user"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/admin").await.status,
        StatusCode::SEE_OTHER,
        "own session ended"
    );
}

#[tokio::test]
async fn unknown_and_malformed_user_ids_are_404() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    assert_eq!(
        app.get("/admin/users/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/admin/users/{unknown}")).await.status,
        StatusCode::NOT_FOUND
    );
    let response = app
        .post_form(
            &format!("/admin/users/{unknown}/role"),
            &[("role", "superuser")],
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn superusers_see_every_cv_and_can_archive_any() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let created = app
        .post_form("/cvs/new", &[("title", "Alice's secret CV")])
        .await;
    let cv = created
        .location()
        .trim_start_matches("/cvs/")
        .trim_end_matches("/edit")
        .to_owned();
    app.logout().await;
    app.logged_in_superuser().await;

    let list = app.get("/admin/cvs").await;
    let search = app.get("/admin/cvs?q=alice").await;
    let miss = app.get("/admin/cvs?q=zzz").await;
    let archived = app
        .post_form(&format!("/admin/cvs/{cv}/archive"), &[])
        .await;

    assert!(
        list.body.contains("Alice&#x27;s secret CV") || list.body.contains("Alice's secret CV")
    );
    assert!(search.body.contains("secret CV"));
    assert!(!miss.body.contains("secret CV"));
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let admin = app.user_id("admin@example.com").await;
    let (payload, actor): (String, String) = sqlx::query_as(
        "SELECT payload, json_extract(metadata, '$.actor') FROM events WHERE aggregate_id = ? ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&cv)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(payload, r#"{"Archived":{"by_admin":true}}"#);
    assert_eq!(actor, admin.to_string());
    assert!(app
        .get(&format!("/cvs/{cv}"))
        .await
        .body
        .contains("archived"));
}
