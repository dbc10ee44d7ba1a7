//! Register, log in, log out: the first user journey, end to end over HTTP.

use axum::http::StatusCode;

use crate::helpers::{TestApp, GOOD_PASSWORD};

#[tokio::test]
async fn register_login_logout_journey() {
    let mut app = TestApp::spawn().await;

    let registered = app
        .register("alice", "Alice@Example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(registered.status, StatusCode::SEE_OTHER);
    assert_eq!(registered.location(), "/cvs");
    let cvs = app.get("/cvs").await;
    assert_eq!(cvs.status, StatusCode::OK);
    assert!(cvs.body.contains("alice"), "the navigation names the user");

    let logged_out = app.logout().await;
    assert_eq!(logged_out.status, StatusCode::SEE_OTHER);
    assert_eq!(logged_out.location(), "/");
    assert_eq!(app.get("/cvs").await.status, StatusCode::SEE_OTHER);

    let logged_in = app.login("alice@example.com", GOOD_PASSWORD).await;
    assert_eq!(logged_in.status, StatusCode::SEE_OTHER);
    assert_eq!(logged_in.location(), "/cvs");
    assert_eq!(app.get("/cvs").await.status, StatusCode::OK);
}

#[tokio::test]
async fn registration_records_one_event_and_one_user_row() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;

    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "UserRegistered");
    let metadata = &events[0].metadata;
    assert_eq!(metadata["ip"], "192.0.2.10");
    assert!(metadata["request_id"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert!(metadata["at"].as_str().is_some());
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn the_email_is_stored_trimmed_and_lower_cased() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "  ALICE@Example.COM ", GOOD_PASSWORD)
        .await;
    let email: String = sqlx::query_scalar("SELECT email FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(email, "alice@example.com");
}

#[tokio::test]
async fn a_taken_username_in_any_case_is_refused() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;

    let response = app
        .register("ALICE", "other@example.com", GOOD_PASSWORD)
        .await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("This username is already taken."));
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn a_taken_email_in_any_case_is_refused() {
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;

    let response = app
        .register("bob", "ALICE@EXAMPLE.COM", GOOD_PASSWORD)
        .await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("An account with this email already exists."));
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn a_refused_registration_releases_nothing_it_did_not_hold() {
    // bob's registration fails on alice's email; bob's own username must stay free.
    let mut app = TestApp::spawn().await;
    app.existing_user("alice").await;
    app.register("bob", "alice@example.com", GOOD_PASSWORD)
        .await;

    let response = app.register("bob", "bob@example.com", GOOD_PASSWORD).await;

    assert_eq!(response.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn each_password_rule_is_explained_on_the_form() {
    let cases = [
        ("short pass", "Password must be at least 12 characters."),
        ("123456789012345", "Password cannot be entirely numeric."),
        ("password1234", "This password is too common."),
        (
            "alice-is-my-name",
            "Password is too similar to your username or email.",
        ),
    ];
    let long = "x".repeat(129);
    for (password, message) in cases
        .into_iter()
        .chain([(long.as_str(), "Password must be at most 128 characters.")])
    {
        let mut app = TestApp::spawn().await;
        let response = app.register("alice", "alice@example.com", password).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}"
        );
        assert!(response.body.contains(message), "{password}: {message}");
        assert!(
            !response.body.contains(password),
            "the password is never echoed"
        );
        assert_eq!(app.count("users").await, 0);
    }
}

#[tokio::test]
async fn mismatched_password_confirmation_is_refused() {
    let mut app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/register",
            &[
                ("username", "alice"),
                ("email", "alice@example.com"),
                ("password", GOOD_PASSWORD),
                ("password_confirm", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("The two passwords do not match."));
}

#[tokio::test]
async fn invalid_username_and_email_keep_the_input_and_mark_the_fields() {
    let mut app = TestApp::spawn().await;
    let response = app.register("al", "not-an-email", GOOD_PASSWORD).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("Username must be at least 3 characters."));
    assert!(response.body.contains("value=\"not-an-email\""));
    assert!(response
        .body
        .contains("aria-describedby=\"username-error\""));
    assert!(response.body.contains("aria-describedby=\"email-error\""));
}

#[tokio::test]
async fn missing_fields_are_validation_errors_not_server_errors() {
    let mut app = TestApp::spawn().await;
    let response = app.post_form("/register", &[]).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("Username must be at least 3 characters."));
}

#[tokio::test]
async fn registration_ignores_a_role_field() {
    let mut app = TestApp::spawn().await;
    app.post_form(
        "/register",
        &[
            ("username", "mallory"),
            ("email", "mallory@example.com"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
            ("role", "superuser"),
        ],
    )
    .await;
    let role: String = sqlx::query_scalar("SELECT role FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(role, "user");
    assert_eq!(app.get("/admin").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_identical_answers() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;

    let wrong_password = app.login(&email, "not the right password").await;
    let unknown_email = app
        .login("nobody@example.com", "not the right password")
        .await;

    assert_eq!(wrong_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_email.status, wrong_password.status);
    let message = "Invalid email or password.";
    assert!(wrong_password.body.contains(message));
    assert!(unknown_email.body.contains(message));
    // Identical apart from the echoed email, the CSRF token and the request id.
    let normalise = |body: &str, email: &str| {
        body.replace(email, "EMAIL")
            .lines()
            .filter(|line| !line.contains("csrf_token") && !line.contains("Request id"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        normalise(&wrong_password.body, &email),
        normalise(&unknown_email.body, "nobody@example.com")
    );
}

#[tokio::test]
async fn a_failed_login_on_a_known_account_is_recorded() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    app.login(&email, "not the right password").await;
    let failures: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'UserLoginFailed'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(failures, 1);
}

#[tokio::test]
async fn a_successful_login_is_recorded_with_its_time() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    app.login(&email, GOOD_PASSWORD).await;
    let last_login: Option<String> = sqlx::query_scalar("SELECT last_login FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(last_login.is_some());
}

#[tokio::test]
async fn next_is_honoured_for_local_paths() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    let page = app.get("/login?next=/admin%3Fx%3D1").await;
    let next = crate::helpers::hidden_input(&page.body, "next").unwrap();
    assert_eq!(next.replace("&#x2f;", "/"), "/admin?x=1");
    let response = app
        .post_form(
            "/login",
            &[
                ("email", &email),
                ("password", GOOD_PASSWORD),
                ("next", "/admin?x=1"),
            ],
        )
        .await;
    assert_eq!(response.location(), "/admin?x=1");
}

#[tokio::test]
async fn next_pointing_to_another_site_is_ignored() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    for next in ["https://evil.example", "//evil.example", "/\\evil.example"] {
        let response = app
            .post_form(
                "/login",
                &[
                    ("email", &email),
                    ("password", GOOD_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER);
        assert_eq!(response.location(), "/cvs", "{next}");
        app.logout().await;
    }
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_and_back() {
    let mut app = TestApp::spawn().await;
    let response = app.get("/cvs").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/login?next=%2Fcvs");
}

#[tokio::test]
async fn a_deactivated_user_cannot_log_in() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    let user = projections::users::find_by_email(app.pool(), &email)
        .await
        .unwrap()
        .unwrap();
    deactivate(&app, user.id).await;

    let response = app.login(&email, GOOD_PASSWORD).await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("deactivated"));
    assert_eq!(app.get("/cvs").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_deactivated_user_is_logged_out_on_their_next_request() {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let user = projections::users::find_by_email(app.pool(), "alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.get("/cvs").await.status, StatusCode::OK);

    deactivate(&app, user.id).await;

    assert_eq!(app.get("/cvs").await.status, StatusCode::SEE_OTHER);
}

async fn deactivate(app: &TestApp, id: uuid::Uuid) {
    app.core
        .commands
        .user(
            id,
            domain::UserCommand::Deactivate,
            &projections::EventMetadata::now("test"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn five_failures_for_an_account_throttle_it_even_for_the_right_password() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    for _ in 0..5 {
        let response = app.login(&email, "not the right password").await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    let response = app.login(&email, GOOD_PASSWORD).await;

    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    assert!(response.body.contains("Too many failed login attempts"));
}

#[tokio::test]
async fn twenty_failures_from_one_ip_throttle_that_ip() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("alice").await;
    for n in 0..20 {
        let response = app
            .login(&format!("nobody{n}@example.com"), "wrong password!")
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    assert_eq!(
        app.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let mut elsewhere = app.new_browser();
    elsewhere.peer = "198.51.100.7:5000".parse().unwrap();
    assert_eq!(
        elsewhere.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn throttling_ends_after_the_cooldown() {
    // Long enough that a loaded CI machine still sends the sixth login inside the block.
    const COOLDOWN: std::time::Duration = std::time::Duration::from_secs(3);
    let mut app = TestApp::spawn_with(|config| config.login_cooldown = COOLDOWN).await;
    let email = app.existing_user("alice").await;
    for _ in 0..5 {
        app.login(&email, "not the right password").await;
    }
    let blocked = tokio::time::Instant::now();
    assert_eq!(
        app.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    tokio::time::sleep_until(blocked + COOLDOWN + std::time::Duration::from_millis(200)).await;

    assert_eq!(
        app.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}
