//! Bad-input sweep: random and hostile requests to every POST route of the access policy
//! (`cvm::http::routes::ROUTES`), as an anonymous visitor, a user and a superuser. Whatever
//! arrives — missing, duplicated or huge fields, invalid UTF-8, wrong content types, broken
//! multipart, ids that are not UUIDs, stale versions — the server answers without a 5xx and
//! without leaking internals, keeps answering `/healthz`, and its read models still equal a
//! replay of the log.

use axum::body::Body;
use axum::http::{header, Method, Request};
use cvm::http::routes::ROUTES;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{Browser, TestApp, GOOD_PASSWORD};

/// Field names the forms use, plus a few no form has.
const FIELDS: &[&str] = &[
    "csrf_token",
    "username",
    "email",
    "password",
    "password_confirm",
    "next",
    "title",
    "expected_version",
    "name",
    "position",
    "startDate",
    "endDate",
    "url",
    "highlights",
    "summary",
    "full_name",
    "website",
    "phone",
    "bio",
    "role",
    "confirm",
    "direction",
    "json",
    "current_password",
    "new_password",
    "new_password_confirm",
    "avatar",
    "file",
    "keywords",
    "role[]",
    "",
    "__proto__",
];

/// A value: ordinary, empty, huge, control characters, markup, numbers out of range.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 @._-]{0,40}",
        Just(String::new()),
        Just("x".repeat(70_000)),
        Just("\u{0}\u{7}\r\n\t".to_owned()),
        Just("<script>alert(1)</script>\"'><img src=x onerror=alert(2)>".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("javascript:alert(1)".to_owned()),
        Just("up".to_owned()),
        Just("superuser".to_owned()),
        Just("{\"work\": [{\"startDate\": 2020}]}".to_owned()),
        "\\PC{0,30}",
    ]
}

/// A request body and its content type.
#[derive(Debug, Clone)]
enum Payload {
    Form(Vec<(String, String)>),
    /// Bytes that are not UTF-8, declared as a form.
    InvalidUtf8(Vec<u8>),
    /// A multipart body that never ends properly.
    BrokenMultipart,
    /// JSON where a form is expected.
    Json,
    /// No content type at all.
    Bare,
}

fn payload() -> impl Strategy<Value = Payload> {
    let form = prop::collection::vec(
        (
            prop::sample::select(FIELDS).prop_map(str::to_owned),
            value(),
        ),
        0..8,
    )
    .prop_map(Payload::Form);
    prop_oneof![
        6 => form,
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut bytes| {
            bytes.extend_from_slice(b"\xff\xfe=\xc3\x28");
            Payload::InvalidUtf8(bytes)
        }),
        1 => Just(Payload::BrokenMultipart),
        1 => Just(Payload::Json),
        1 => Just(Payload::Bare),
    ]
}

/// What replaces a path parameter: a real id, a random UUID, or not a UUID at all.
fn parameter() -> impl Strategy<Value = usize> {
    0usize..4
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    actor: usize,
    parameter: usize,
    payload: Payload,
    with_token: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..ROUTES.len(),
        0usize..3,
        parameter(),
        payload(),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(route, actor, parameter, payload, with_token)| Case {
            route,
            actor,
            parameter,
            payload,
            with_token,
        })
}

/// Fills `{…}` path parameters: 0 → the real resource, 1 → a random UUID, 2 → not a UUID,
/// 3 → an empty-looking or odd value.
fn fill_path(pattern: &str, choice: usize, cv: &str, user: &str, entry: &str) -> String {
    let mut path = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len() - 1);
        let name = &rest[start + 1..end];
        let value = match (choice, name) {
            (0, "id") if pattern.starts_with("/cvs") || pattern.starts_with("/admin/cvs") => {
                cv.to_owned()
            }
            (0, "id") => user.to_owned(),
            (0, "entry") => entry.to_owned(),
            (0, "section") => "work".to_owned(),
            (0, "n") => "1".to_owned(),
            (0, "position") => "1".to_owned(),
            (0, "token") => "a".repeat(64),
            (0, "*path") => "app.css".to_owned(),
            (1, "section") => "basics".to_owned(),
            (1, _) => uuid::Uuid::new_v4().to_string(),
            (2, _) => "not-a-uuid%00%2F..%2F".to_owned(),
            _ => "99999999999999999999".to_owned(),
        };
        path.push_str(&value);
        rest = &rest[end + 1..];
    }
    path.push_str(rest);
    path
}

fn request(path: &str, token: Option<&str>, payload: &Payload) -> Request<Body> {
    let builder = Request::builder()
        .method(Method::POST)
        .uri(match token {
            // Multipart routes take the token in the query string.
            Some(token) if matches!(payload, Payload::BrokenMultipart) => {
                format!("{path}?csrf_token={token}")
            }
            _ => path.to_owned(),
        })
        .header("sec-fetch-site", "same-origin");
    match payload {
        Payload::Form(fields) => {
            let mut all: Vec<(String, String)> = Vec::new();
            if let Some(token) = token {
                all.push(("csrf_token".into(), token.into()));
            }
            all.extend(fields.iter().cloned());
            let body = serde_urlencoded::to_string(&all).unwrap_or_default();
            builder
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        }
        Payload::InvalidUtf8(bytes) => {
            let mut body = match token {
                Some(token) => format!("csrf_token={token}&").into_bytes(),
                None => Vec::new(),
            };
            body.extend_from_slice(bytes);
            builder
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        }
        Payload::BrokenMultipart => builder
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=zz")
            .body(Body::from(
                &b"--zz\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n\x1a\n"[..],
            ))
            .unwrap(),
        Payload::Json => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"csrf_token\": 1}"))
            .unwrap(),
        Payload::Bare => builder.body(Body::from("csrf_token")).unwrap(),
    }
}

#[test]
fn hostile_requests_never_get_a_5xx_and_the_read_models_stay_a_replay() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, browsers, cv, user, entry) = runtime.block_on(async {
        let mut app = TestApp::spawn().await;
        app.register("alice", "alice@example.com", GOOD_PASSWORD)
            .await;
        let created = app.post_form("/cvs/new", &[("title", "Target")]).await;
        let cv = created
            .location()
            .trim_start_matches("/cvs/")
            .trim_end_matches("/edit")
            .to_owned();
        app.post_form(
            &format!("/cvs/{cv}/sections/work"),
            &[("expected_version", "1"), ("name", "Hooli")],
        )
        .await;
        let editor = app.get(&format!("/cvs/{cv}/edit")).await.body;
        let marker = format!("/cvs/{cv}/sections/work/");
        let entry: String = editor
            .split(&marker)
            .nth(1)
            .map(|rest| rest.chars().take(36).collect())
            .unwrap_or_default();
        let user = app.user_id("alice@example.com").await.to_string();
        let mut anonymous = app.new_browser();
        anonymous.csrf_token().await;
        let alice = Browser {
            router: app.router.clone(),
            cookie: app.cookie.clone(),
            // Its own address, so that random failed logins of the anonymous actor cannot
            // throttle alice's re-logins.
            peer: "198.51.100.30:1000".parse().unwrap(),
        };
        let mut admin = app.new_browser();
        admin.peer = "198.51.100.20:1000".parse().unwrap();
        app.core
            .accounts
            .register(
                &cvm::accounts::Registration {
                    username: "root".into(),
                    email: "root@example.com".into(),
                    password: GOOD_PASSWORD.into(),
                    password_confirm: GOOD_PASSWORD.into(),
                },
                domain::Role::Superuser,
                &projections::EventMetadata::now("test"),
            )
            .await
            .unwrap();
        admin.login("root@example.com", GOOD_PASSWORD).await;
        (app, vec![anonymous, alice, admin], cv, user, entry)
    });
    // Logging out only ends the sweep's own sessions; everything else is fair game.
    let posts: Vec<usize> = (0..ROUTES.len())
        .filter(|i| ROUTES[*i].method == "POST" && ROUTES[*i].path != "/logout")
        .collect();
    let logins = [None, Some("alice@example.com"), Some("root@example.com")];
    // The runner takes a `Fn`; the browsers keep their cookies between cases.
    let browsers = std::cell::RefCell::new(browsers);

    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let route = ROUTES[posts[case.route % posts.len()]];
        let path = fill_path(route.path, case.parameter, &cv, &user, &entry);
        let mut browsers = browsers.borrow_mut();
        let browser = &mut browsers[case.actor];
        // A case may have ended the actor's session (a deactivation, a password change, a
        // login that cycled it): log in again, and use the session's current token.
        let token = runtime.block_on(async {
            if let Some(email) = logins[case.actor] {
                if browser.get("/cvs").await.status != axum::http::StatusCode::OK {
                    browser.login(email, GOOD_PASSWORD).await;
                }
            }
            browser.csrf_token().await
        });
        let token = case.with_token.then_some(token.as_str());
        let request = request(&path, token, &case.payload);
        let response = runtime.block_on(browser.send(request));
        prop_assert!(
            response.status.as_u16() < 500,
            "{} {path} as actor {} gave {}: {}",
            route.method,
            case.actor,
            response.status,
            response.body.chars().take(300).collect::<String>()
        );
        for leak in [
            "panicked",
            "sqlx",
            "SQLITE",
            "stack backtrace",
            "RUST_BACKTRACE",
        ] {
            prop_assert!(
                !response.body.contains(leak),
                "{path}: the body leaks {leak}"
            );
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }

    runtime.block_on(async {
        let mut check = app.new_browser();
        assert_eq!(
            check.get("/healthz").await.status,
            axum::http::StatusCode::OK
        );
        let differences = app.core.projector.verify().await.unwrap();
        assert!(differences.is_empty(), "{differences:?}");
    });
}
