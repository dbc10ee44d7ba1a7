//! The audit trail end to end: access, security events in words, filters, keyset pages,
//! redaction in the detail view and the downloads, CSV escaping, 422 for bad filters, rebuilds,
//! and that no route can change an event.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use domain::{Role, UserCommand};
use projections::EventMetadata;
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::{outbox, reset_path, Browser, TestApp, TestResponse, GOOD_PASSWORD};

const NEW_PASSWORD: &str = "a different long passphrase";

const ROUTES: &[&str] = &[
    "/admin/audit",
    "/admin/audit/1",
    "/admin/audit/export.csv",
    "/admin/audit/export.jsonl",
];

/// Undoes the HTML escaping of an attribute value.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The positions a trail page lists, in page order.
fn positions(body: &str) -> Vec<i64> {
    let marker = "href=\"/admin/audit/";
    body.split(marker)
        .skip(1)
        .filter_map(|piece| {
            let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
            piece[digits.len()..]
                .starts_with('"')
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect()
}

/// The target of the link whose text is `text`, unescaped.
fn link_to(body: &str, text: &str) -> Option<String> {
    let end = body.find(&format!(">{text}</a>"))?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    let len = body[start..].find('"')?;
    Some(unescape(&body[start..start + len]))
}

/// The JSON Lines download of `query`, parsed.
async fn jsonl(browser: &mut Browser, query: &str) -> Vec<Value> {
    let response = browser
        .get(&format!("/admin/audit/export.jsonl?{query}"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response
        .body
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON value per line"))
        .collect()
}

fn field<'a>(line: &'a Value, name: &str) -> &'a str {
    line[name].as_str().unwrap_or_default()
}

/// Every (position, event type, aggregate id, actor) in the log, newest first, straight from
/// the `events` table.
async fn log(app: &TestApp) -> Vec<(i64, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT rowid, event_type, aggregate_id, json_extract(metadata, '$.actor')
           FROM events ORDER BY rowid DESC",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

/// Every password hash and token hash the log holds, read (decrypted) through the event log.
async fn secrets(app: &TestApp) -> Vec<String> {
    let mut found = Vec::new();
    for event in app.events().await {
        if let Some(inner) = event.payload.as_object().and_then(|o| o.values().next()) {
            for key in ["password_hash", "token_hash"] {
                if let Some(secret) = inner[key].as_str() {
                    found.push(secret.to_owned());
                }
            }
        }
    }
    found
}

async fn position_of(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT MAX(rowid) FROM events WHERE event_type = ?")
        .bind(event_type)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

fn assert_no_secret(body: &str, secrets: &[String], place: &str) {
    assert!(!body.contains("$argon2"), "{place} shows a password hash");
    for secret in secrets {
        assert!(!body.contains(secret.as_str()), "{place} shows {secret}");
    }
}

/// A superuser's app in which bob has registered, failed a login, changed his password, reset
/// it through a mailed link, and been promoted and deactivated (from the command line).
async fn eventful_app() -> (TestApp, Uuid) {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("bob").await;
    let bob = app.user_id(&email).await;
    assert_eq!(
        app.login(&email, "not the right password at all")
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.login(&email, GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
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
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let mut stranger = app.new_browser();
    stranger
        .post_form("/password-reset", &[("email", email.as_str())])
        .await;
    let mails = outbox(&app, 1, Duration::from_secs(5)).await;
    let path = reset_path(&mails[0]);
    let reset = stranger
        .post_form(
            &path,
            &[
                ("new_password", GOOD_PASSWORD),
                ("new_password_confirm", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    app.run(
        bob,
        UserCommand::ChangeRole {
            role: Role::Superuser,
        },
    )
    .await;
    app.run(bob, UserCommand::Deactivate).await;
    app.browser.cookie = None;
    app.logged_in_superuser().await;
    (app, bob)
}

#[tokio::test]
async fn only_superusers_reach_the_audit_trail() {
    let mut app = TestApp::spawn().await;
    app.register("carol", "carol@example.com", GOOD_PASSWORD)
        .await;
    for route in ROUTES {
        assert_eq!(
            app.get(route).await.status,
            StatusCode::FORBIDDEN,
            "{route}"
        );
    }
    let mut anonymous = app.new_browser();
    for route in ROUTES {
        let response = anonymous.get(route).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{route}");
        assert!(response.location().starts_with("/login?next="), "{route}");
    }
    app.browser = app.new_browser();
    app.logged_in_superuser().await;
    for route in ROUTES {
        assert_eq!(app.get(route).await.status, StatusCode::OK, "{route}");
    }
}

#[tokio::test]
async fn security_events_appear_in_words() {
    let (mut app, bob) = eventful_app().await;
    let page = app.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    for words in [
        "registered as bob (user)",
        "failed to log in: wrong password",
        "logged in",
        "changed password",
        "requested a password reset",
        "reset password with an emailed link",
        "role changed from user to superuser",
        "deactivated",
        "UserLoginFailed",
        "UserRoleChanged",
    ] {
        assert!(page.body.contains(words), "the trail lacks “{words}”");
    }
    // Bob is the actor of his own password change, linked to his account; the command-line
    // changes have no actor, and neither has the failed login (nobody was logged in).
    let html = unescape(&page.body);
    assert!(html.contains(&format!("href=\"/admin/users/{bob}\">bob</a>")));
    assert!(page.body.contains(">system<"));
    assert!(page.body.contains(">anonymous<"));
    assert!(page.body.contains("192.0.2.10"), "the IP is shown");
    assert!(page.body.contains("<time datetime=\""));
    assert!(page.body.contains("UTC"));
    // Newest first: the deactivation comes before the registration.
    let deactivated = page.body.find("UserDeactivated").unwrap();
    let registered = page.body.find("registered as bob").unwrap();
    assert!(deactivated < registered);
}

#[tokio::test]
async fn each_filter_narrows_the_trail() {
    let (mut app, bob) = eventful_app().await;
    let log = log(&app).await;
    let bob_id = bob.to_string();

    let by_actor = jsonl(&mut app, &format!("actor={bob}")).await;
    let want: Vec<i64> = log
        .iter()
        .filter(|(_, _, _, actor)| actor.as_deref() == Some(bob_id.as_str()))
        .map(|(position, ..)| *position)
        .collect();
    assert!(!want.is_empty() && want.len() < log.len());
    assert_eq!(
        by_actor
            .iter()
            .map(|l| l["position"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        want
    );
    assert!(by_actor.iter().all(|l| field(l, "actor_id") == bob_id));

    let by_aggregate = jsonl(&mut app, &format!("aggregate_id={bob}")).await;
    let want = log.iter().filter(|(_, _, id, _)| *id == bob_id).count();
    assert_eq!(by_aggregate.len(), want);
    assert!(want < log.len(), "the admin's own events are elsewhere");
    assert!(by_aggregate
        .iter()
        .all(|l| field(l, "aggregate_id") == bob_id));

    let by_type = jsonl(&mut app, "event_type=UserLoginFailed").await;
    assert_eq!(by_type.len(), 1);
    assert_eq!(
        field(&by_type[0], "summary"),
        "failed to log in: wrong password"
    );

    // The page narrows too, and keeps the filter in its form.
    let page = app.get("/admin/audit?event_type=UserRoleChanged").await;
    assert_eq!(positions(&page.body).len(), 1);
    assert!(page
        .body
        .contains("<option value=\"UserRoleChanged\" selected>"));

    // Dates: two events stamped in the past, then ranges around them (the `to` day included).
    let at = |when: OffsetDateTime| EventMetadata {
        at: Some(when),
        ..EventMetadata::now("dated")
    };
    app.core
        .commands
        .user(
            bob,
            UserCommand::Activate,
            &at(datetime!(2020-01-15 23:59:59 UTC)),
        )
        .await
        .unwrap();
    app.core
        .commands
        .user(
            bob,
            UserCommand::Deactivate,
            &at(datetime!(2020-02-01 00:00 UTC)),
        )
        .await
        .unwrap();
    let types = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .map(|l| field(l, "event_type").to_owned())
            .collect()
    };
    let january = jsonl(&mut app, "from=2020-01-01&to=2020-01-15").await;
    assert_eq!(types(&january), ["UserActivated"]);
    let both = jsonl(&mut app, "from=2020-01-15&to=2020-02-01").await;
    assert_eq!(types(&both), ["UserDeactivated", "UserActivated"]);
    let until = jsonl(&mut app, "to=2020-12-31").await;
    assert_eq!(until.len(), 2);
    let since = jsonl(&mut app, "from=2020-01-16").await;
    assert_eq!(since.len(), log.len() + 1, "all but the January event");
    let today = OffsetDateTime::now_utc().date();
    let recent = jsonl(
        &mut app,
        &format!(
            "from={}&to={}",
            today.previous_day().unwrap(),
            today.next_day().unwrap()
        ),
    )
    .await;
    assert_eq!(recent.len(), log.len());
    let nothing = jsonl(&mut app, "from=2019-01-01&to=2019-12-31").await;
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn keyset_pages_cover_everything_once_in_order() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("dora").await;
    let dora = app.user_id(&email).await;
    for _ in 0..60 {
        app.run(dora, UserCommand::Deactivate).await;
        app.run(dora, UserCommand::Activate).await;
    }
    app.logged_in_superuser().await;
    let total = app.count("events").await;
    assert!(total > 120);

    let mut seen: Vec<i64> = Vec::new();
    let mut next = Some("/admin/audit".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        let listed = positions(&page.body);
        assert!(listed.len() <= 50);
        assert!(!listed.is_empty());
        if pages > 0 {
            assert_eq!(
                link_to(&page.body, "← Newest").as_deref(),
                Some("/admin/audit")
            );
        }
        seen.extend(listed);
        next = link_to(&page.body, "Older →");
        pages += 1;
    }
    assert_eq!(pages, (total + 49) / 50);
    let expected: Vec<i64> = (1..=total).rev().collect();
    assert_eq!(seen, expected, "every event once, newest first");

    // Filters are kept across pages.
    let first = app.get("/admin/audit?event_type=UserActivated").await;
    let older = link_to(&first.body, "Older →").expect("more than a page of activations");
    assert!(older.contains("event_type=UserActivated") && older.contains("before="));
    let second = app.get(&older).await;
    let all: BTreeSet<i64> = positions(&first.body)
        .into_iter()
        .chain(positions(&second.body))
        .collect();
    assert_eq!(all.len(), 60, "every activation, on two pages");
    assert!(link_to(&second.body, "Older →").is_none());
}

#[tokio::test]
async fn details_and_downloads_never_show_secrets() {
    let (mut app, _) = eventful_app().await;
    let secrets = secrets(&app).await;
    assert!(
        secrets.len() >= 4,
        "hashes of registrations, change, reset and the token"
    );
    for event_type in [
        "UserRegistered",
        "UserPasswordChanged",
        "UserPasswordResetRequested",
        "UserPasswordReset",
    ] {
        let position = position_of(&app, event_type).await;
        let detail = app.get(&format!("/admin/audit/{position}")).await;
        assert_eq!(detail.status, StatusCode::OK);
        assert!(detail.body.contains(event_type));
        assert!(detail.body.contains("[redacted]"), "{event_type}");
        assert!(detail.body.contains("request_id"), "metadata is shown");
        assert_no_secret(&detail.body, &secrets, event_type);
    }
    let registered = position_of(&app, "UserRegistered").await;
    let registration = app.get(&format!("/admin/audit/{registered}")).await;
    assert!(registration
        .body
        .contains("&quot;username&quot;: &quot;admin&quot;"));

    let csv = app.get("/admin/audit/export.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(
        csv.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"audit.csv\""
    );
    assert_no_secret(&csv.body, &secrets, "the CSV");
    let jsonl = app.get("/admin/audit/export.jsonl").await;
    assert_eq!(
        jsonl.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"audit.jsonl\""
    );
    assert_no_secret(&jsonl.body, &secrets, "the JSON Lines");
    assert!(jsonl.body.contains("[redacted]"));
    assert_eq!(jsonl.body.lines().count() as i64, app.count("events").await);

    for missing in ["999999", "0", "-1", "abc", "1.5"] {
        let response = app.get(&format!("/admin/audit/{missing}")).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{missing}");
    }
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "complete records"
    );
    records
}

#[tokio::test]
async fn the_csv_download_escapes_and_defuses_what_users_typed() {
    let mut app = TestApp::spawn().await;
    app.register("erin", "erin@example.com", GOOD_PASSWORD)
        .await;
    let title = "Hello, \"World\"";
    let created = app.post_form("/cvs/new", &[("title", title)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    app.logout().await;
    // A failed login whose user agent is a spreadsheet formula with a comma and quotes.
    let agent = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let token = app.csrf_token().await;
    let body = serde_urlencoded::to_string([
        ("csrf_token", token.as_str()),
        ("email", "erin@example.com"),
        ("password", "wrong wrong wrong wrong"),
    ])
    .unwrap();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, agent)
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(
        app.send(request).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    app.logged_in_superuser().await;

    let csv = app.get("/admin/audit/export.csv").await;
    assert!(csv.body.ends_with("\r\n"));
    let records = parse_csv(&csv.body);
    let header_row = &records[0];
    assert_eq!(header_row[0], "position");
    assert!(
        records.iter().all(|r| r.len() == header_row.len()),
        "{records:?}"
    );
    let column = |name: &str| header_row.iter().position(|h| h == name).unwrap();
    let find = |event_type: &str| {
        records
            .iter()
            .find(|r| r[column("event_type")] == event_type)
            .unwrap_or_else(|| panic!("no {event_type} record"))
    };
    assert_eq!(
        find("CvCreated")[column("summary")],
        format!("created the CV “{title}”")
    );
    let failed = find("UserLoginFailed");
    assert_eq!(failed[column("user_agent")], format!("'{agent}"));
    assert!(
        csv.body
            .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""),
        "quoted with doubled quotes"
    );
    assert_eq!(records.len() as i64 - 1, app.count("events").await);

    // The page shows the agent as text (escaped), never as markup.
    let page = app.get("/admin/audit").await;
    assert!(!page.body.contains("=HYPERLINK(\"http"));
}

#[tokio::test]
async fn invalid_filters_answer_422_with_a_message_by_the_field() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    for (query, field) in [
        ("from=2024-13-45", "from"),
        ("to=yesterday", "to"),
        ("from=2024-02-01&to=2024-01-01", "to"),
        ("actor=not-a-uuid", "actor"),
        ("event_type=%3Cscript%3E", "event_type"),
        ("before=abc", "before"),
    ] {
        let page = app.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        if field != "before" {
            assert!(
                page.body.contains(&format!("id=\"{field}-error\"")),
                "{query}"
            );
        }
        assert!(!page.body.contains("<script>"), "{query}");
        for export in ["export.csv", "export.jsonl"] {
            let response = app.get(&format!("/admin/audit/{export}?{query}")).await;
            assert_eq!(
                response.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{export}?{query}"
            );
        }
    }
    let kept = app
        .get("/admin/audit?from=2024-13-45&aggregate_id=abc")
        .await;
    assert!(
        kept.body.contains("value=\"2024-13-45\""),
        "the input is kept"
    );
    assert!(kept.body.contains("value=\"abc\""));
    // Garbage that is not a filter is ignored, not an error.
    assert_eq!(
        app.get("/admin/audit?x=%ZZ&&=").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_rebuild_reproduces_the_trail() {
    let tables = projections::projector::read_model_tables();
    for table in projections::audit::TABLES {
        assert!(
            tables.contains(table),
            "rebuild and --verify must cover {table}"
        );
    }
    let (app, _) = eventful_app().await;
    let before: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT position, at, summary FROM audit_log ORDER BY position")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(before.len() as i64, app.count("events").await);
    assert!(app.core.projector.verify().await.unwrap().is_empty());
    app.core.projector.rebuild(|_| {}).await.unwrap();
    let after: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT position, at, summary FROM audit_log ORDER BY position")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(before, after);
    assert!(app.core.projector.verify().await.unwrap().is_empty());
}

#[tokio::test]
async fn no_route_changes_or_deletes_an_event() {
    let (mut app, _) = eventful_app().await;
    let events = app.count("events").await;
    let position = position_of(&app, "UserRegistered").await.to_string();
    let detail = format!("/admin/audit/{position}");
    for path in [
        "/admin/audit",
        detail.as_str(),
        "/admin/audit/export.csv",
        "/admin/audit/export.jsonl",
    ] {
        let posted = app
            .post_form(path, &[("position", position.as_str())])
            .await;
        assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
        for method in [Method::DELETE, Method::PUT, Method::PATCH] {
            let token = app.csrf_token().await;
            let request = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap();
            let response: TestResponse = app.send(request).await;
            assert_eq!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.get(&detail).await.status, StatusCode::OK);
}
