//! The admin dashboard and `/admin/analytics.json`: access, exact counts after real requests,
//! periods, charts, the job panel, deactivation, and analytics rows that a rebuild reproduces.

use axum::http::{header, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;

use crate::helpers::{Browser, TestApp, GOOD_PASSWORD};

/// The analytics tables, each read in full and in a stable order.
const ANALYTICS_ROWS: [&str; 4] = [
    "SELECT day || ' ' || signups || ' ' || logins || ' ' || failed_logins || ' ' || cvs_created
            || ' ' || cv_edits FROM daily_stats ORDER BY day",
    "SELECT hour || ' ' || signups || ' ' || logins || ' ' || failed_logins || ' ' || cvs_created
            || ' ' || cv_edits FROM hourly_stats ORDER BY hour",
    "SELECT user_id || ' ' || day FROM activity ORDER BY user_id, day",
    "SELECT name || ' ' || value FROM totals ORDER BY name",
];

fn today() -> String {
    OffsetDateTime::now_utc().date().to_string()
}

async fn json(browser: &mut Browser, path: &str) -> Value {
    let response = browser.get(path).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    serde_json::from_str(&response.body).expect("a JSON body")
}

/// Creates a CV titled `title` as the browser's user; returns its id.
async fn create_cv(browser: &mut Browser, title: &str) -> String {
    let created = browser.post_form("/cvs/new", &[("title", title)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    created
        .location()
        .trim_start_matches("/cvs/")
        .trim_end_matches("/edit")
        .to_owned()
}

/// A known history, through the real routes:
/// - the superuser `admin` is created and logs in (1 sign-up, 1 login);
/// - alice signs up, creates a CV, edits its basics and archives it, logs out, fails one login
///   and logs in again (1 sign-up, 1 login, 1 failed login, 1 CV created, 2 CV edits);
/// - bob signs up and creates two CVs (1 sign-up, 2 CVs created).
async fn known_history(app: &mut TestApp) {
    app.logged_in_superuser().await;
    let mut alice = app.new_browser();
    let response = alice
        .register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let cv = create_cv(&mut alice, "Alice's CV").await;
    let edited = alice
        .post_form(
            &format!("/cvs/{cv}/basics"),
            &[("expected_version", "1"), ("name", "Alice")],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let archived = alice.post_form(&format!("/cvs/{cv}/archive"), &[]).await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    alice.logout().await;
    let refused = alice
        .login("alice@example.com", "not the right password")
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let logged_in = alice.login("alice@example.com", GOOD_PASSWORD).await;
    assert_eq!(logged_in.status, StatusCode::SEE_OTHER);

    let mut bob = app.new_browser();
    bob.register("bob", "bob@example.com", GOOD_PASSWORD).await;
    create_cv(&mut bob, "One").await;
    create_cv(&mut bob, "Two").await;
}

fn numbers(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|n| n.as_i64().expect("a whole number"))
        .collect()
}

#[tokio::test]
async fn only_superusers_see_the_dashboard_and_its_data() {
    let mut app = TestApp::spawn().await;
    for path in ["/admin", "/admin/analytics.json", "/admin?days=90"] {
        let anonymous = app.new_browser().get(path).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{path}");
        assert!(anonymous.location().starts_with("/login?next="), "{path}");
    }

    let email = app.existing_user("ursula").await;
    app.login(&email, GOOD_PASSWORD).await;
    for path in ["/admin", "/admin/analytics.json"] {
        let refused = app.get(path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!refused.body.contains("signups"));
    }
}

#[tokio::test]
async fn the_json_counts_what_happened_exactly() {
    let mut app = TestApp::spawn().await;
    let day_before = today();
    known_history(&mut app).await;

    let response = app.get("/admin/analytics.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let data: Value = serde_json::from_str(&response.body).unwrap();

    assert_eq!(
        data["totals"],
        serde_json::json!({
            "users": 3, "active_users": 3, "superusers": 1, "cvs": 3, "archived_cvs": 1
        })
    );
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["days", "series", "totals"]);
    let days = data["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    for (name, expected) in [
        ("signups", 3),
        ("logins", 2),
        ("cvs_created", 3),
        ("cv_edits", 2),
    ] {
        let series = numbers(&data["series"][name]);
        assert_eq!(series.len(), days.len(), "{name}");
        // Everything happened during this test, so within the period…
        assert_eq!(series.iter().sum::<i64>(), expected, "{name}");
        // …and, unless the test ran across midnight UTC, today.
        if day_before == today() {
            assert_eq!(days.last().unwrap(), &Value::from(today()));
            assert_eq!(series.last(), Some(&expected), "{name} today");
        }
    }
}

#[tokio::test]
async fn the_period_is_chosen_with_days() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;

    for (query, expected) in [
        ("", 30),
        ("?days=90", 90),
        ("?days=1", 1),
        ("?days=365", 365),
        // Anything else falls back to the default, never an error.
        ("?days=0", 30),
        ("?days=366", 30),
        ("?days=-1", 30),
        ("?days=ninety", 30),
        ("?days=%FF", 30),
    ] {
        let data = json(&mut app.browser, &format!("/admin/analytics.json{query}")).await;
        let days: Vec<&str> = data["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(days.len(), expected, "{query}");
        for name in ["signups", "logins", "cvs_created", "cv_edits"] {
            assert_eq!(
                data["series"][name].as_array().unwrap().len(),
                expected,
                "{query} {name}"
            );
        }
        // Consecutive days, oldest first, ending today.
        let parse = |d: &str| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                .expect("a YYYY-MM-DD day")
        };
        for pair in days.windows(2) {
            assert_eq!(parse(pair[0]).next_day(), Some(parse(pair[1])), "{query}");
        }
        let last = parse(days.last().unwrap());
        let now = OffsetDateTime::now_utc().date();
        assert!(last == now || last.next_day() == Some(now), "{query}");
    }
}

#[tokio::test]
async fn the_dashboard_shows_the_numbers_and_charts() {
    let mut app = TestApp::spawn().await;
    known_history(&mut app).await;

    let page = app.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains(r#"id="total-users">3<"#), "{body}");
    assert!(body.contains("3 active · 0 deactivated"));
    assert!(body.contains(r#"id="total-superusers">1<"#));
    assert!(body.contains(r#"id="total-cvs">3<"#));
    assert!(body.contains("2 active · 1 archived"));
    // admin and alice logged in; bob signed up (and is logged in since).
    assert!(body.contains(r#"id="active-7d">3<"#));
    assert!(
        body.contains(r#"<tr><th scope="row">Sign-ups</th><td>3</td><td>3</td><td>3</td></tr>"#)
    );
    assert!(body
        .contains(r#"<tr><th scope="row">Failed logins</th><td>1</td><td>1</td><td>1</td></tr>"#));
    assert!(
        body.contains(r#"<tr><th scope="row">CV edits</th><td>2</td><td>2</td><td>2</td></tr>"#)
    );

    assert_eq!(body.matches("<svg").count(), 4);
    assert!(body.contains("Sign-ups per day") && body.contains("CV edits per day"));
    assert!(body.contains("Last 30 days"));
    assert!(!body.contains("style="), "the CSP forbids inline styles");
    assert!(body.contains(r#"aria-current="page">Dashboard"#));

    assert!(body.contains(">bob</a> signed up"));
    assert!(body.contains(">alice</a> logged in"));
    assert!(body.contains(">admin</a> logged in"));
    assert!(body.contains("No job has run yet."));

    let ninety = app.get("/admin?days=90").await;
    assert_eq!(ninety.status, StatusCode::OK);
    assert!(ninety.body.contains("Last 90 days"));
    assert!(ninety
        .body
        .contains(r#"href="/admin?days=90" aria-current="page""#));
}

#[tokio::test]
async fn the_dashboard_lists_the_background_jobs() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    projections::job_runs::record(
        app.pool(),
        "projection-lag",
        true,
        "Read models are current.",
    )
    .await
    .unwrap();
    projections::job_runs::record(app.pool(), "purge <sessions>", false, "Database locked.")
        .await
        .unwrap();

    let body = app.get("/admin").await.body;
    assert!(!body.contains("No job has run yet."));
    assert!(body.contains("projection-lag") && body.contains("Read models are current."));
    assert!(body.contains("purge &lt;sessions&gt;") && body.contains("Needs attention"));
}

#[tokio::test]
async fn deactivated_users_leave_the_active_total() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let registered = app
        .new_browser()
        .register("dora", "dora@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(registered.status, StatusCode::SEE_OTHER);
    let dora = app.user_id("dora@example.com").await;

    app.run(dora, domain::UserCommand::Deactivate).await;
    let totals = json(&mut app.browser, "/admin/analytics.json").await["totals"].clone();
    assert_eq!(totals["users"], 2);
    assert_eq!(totals["active_users"], 1);
    assert!(app
        .get("/admin")
        .await
        .body
        .contains("1 active · 1 deactivated"));

    app.run(dora, domain::UserCommand::Activate).await;
    let totals = json(&mut app.browser, "/admin/analytics.json").await["totals"].clone();
    assert_eq!(totals["active_users"], 2);

    app.run(
        dora,
        domain::UserCommand::ChangeRole {
            role: domain::Role::Superuser,
        },
    )
    .await;
    let totals = json(&mut app.browser, "/admin/analytics.json").await["totals"].clone();
    assert_eq!(totals["superusers"], 2);
}

#[tokio::test]
async fn a_rebuild_reproduces_the_analytics_rows() {
    let mut app = TestApp::spawn().await;
    known_history(&mut app).await;
    let dora = {
        app.new_browser()
            .register("dora", "dora@example.com", GOOD_PASSWORD)
            .await;
        app.user_id("dora@example.com").await
    };
    app.run(dora, domain::UserCommand::Deactivate).await;

    let snapshot = |app: &TestApp| {
        let pool = app.pool().clone();
        async move {
            let mut rows = Vec::new();
            for sql in ANALYTICS_ROWS {
                let table: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                assert!(!table.is_empty(), "{sql}");
                rows.push(table);
            }
            rows
        }
    };
    let before = snapshot(&app).await;

    let rebuilt = projections::projector::read_model_tables();
    for table in projections::analytics::TABLES {
        assert!(rebuilt.contains(table), "a rebuild must empty {table}");
    }
    assert_eq!(app.core.projector.verify().await.unwrap(), vec![]);
    app.core.projector.rebuild(|_| {}).await.unwrap();
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.core.projector.verify().await.unwrap(), vec![]);

    let totals = json(&mut app.browser, "/admin/analytics.json").await["totals"].clone();
    assert_eq!(totals["users"], 4);
    assert_eq!(totals["active_users"], 3);
}
