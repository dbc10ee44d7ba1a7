//! The route sweep: every route of the router, checked against the access policy in
//! `cvm::http::routes::ROUTES` (DESIGN.md §3 statuses, §4 security rules).
//!
//! Two tests:
//! - [`the_access_policy_names_exactly_the_routes_of_the_router`] reads the `.route(…)` calls
//!   of `src/http/*.rs` and compares them with `ROUTES` both ways, so a route added without a
//!   policy entry (or a policy entry left behind by a removed route) fails.
//! - [`every_route_enforces_its_access_policy`] requests every route as an anonymous visitor,
//!   a stranger, the owner and a superuser, and without (or with a cross-site) CSRF proof, and
//!   checks each answer's status and security headers. Every disagreement is collected, so one
//!   run lists them all.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use cvm::http::routes::{Access, RouteSpec, ROUTES};

use crate::helpers::{Browser, TestApp, TestResponse, GOOD_PASSWORD};

// ---------------------------------------------------------------------------------------------
// Completeness: the policy table against the source of the routers.
// ---------------------------------------------------------------------------------------------

/// Routing functions of `axum::routing` that name exactly one method.
const METHOD_FUNCTIONS: [(&str, &str); 9] = [
    ("get", "GET"),
    ("post", "POST"),
    ("put", "PUT"),
    ("delete", "DELETE"),
    ("patch", "PATCH"),
    ("head", "HEAD"),
    ("options", "OPTIONS"),
    ("trace", "TRACE"),
    ("connect", "CONNECT"),
];

/// Calls that may appear at the top level of a `.route(…)` call besides the method functions:
/// they wrap a method router without adding a method.
const NON_METHOD_CALLS: [&str; 3] = ["layer", "route_layer", "with_state"];

/// Router calls whose routes this parser cannot enumerate; met in the source, they fail the test
/// loudly rather than let routes slip past the policy.
const UNSUPPORTED_ROUTER_CALLS: [&str; 3] = [".route_service(", ".nest(", ".nest_service("];

/// `text` with comments blanked out and the contents of string and char literals replaced by
/// `_` (quotes kept), char for char, so that indices still point into `text` and brackets or
/// quotes inside literals and comments do not count.
fn skeleton(text: &str) -> Vec<char> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
        if at(i) == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                out[i] = ' ';
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out[i] = ' ';
                    out[i + 1] = ' ';
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out[i] = ' ';
                    out[i + 1] = ' ';
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= chars.len() {
                    break;
                } else {
                    out[i] = ' ';
                    i += 1;
                }
            }
        } else if at(i) == 'r'
            && (at(i + 1) == '"' || at(i + 1) == '#')
            && !is_ident(at_prev(&chars, i))
        {
            // A raw string: r"…", r#"…"#, …
            let mut hashes = 0;
            let mut k = i + 1;
            while at(k) == '#' {
                hashes += 1;
                k += 1;
            }
            if at(k) != '"' {
                i += 1;
                continue;
            }
            let closing: Vec<char> = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let body_start = k + 1;
            let mut end = body_start;
            while end < chars.len() && !chars[end..].starts_with(&closing) {
                end += 1;
            }
            for slot in &mut out[body_start..end.min(chars.len())] {
                *slot = '_';
            }
            i = end + closing.len();
        } else if at(i) == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out[i] = '_';
                    i += 1;
                }
                if i < chars.len() {
                    out[i] = '_';
                    i += 1;
                }
            }
            i += 1;
        } else if at(i) == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            if at(i + 1) == '\\' {
                // Past the escaped char, which may itself be a quote ('\'').
                let mut k = i + 3;
                while k < chars.len() && chars[k] != '\'' {
                    k += 1;
                }
                for slot in &mut out[i + 1..k.min(chars.len())] {
                    *slot = '_';
                }
                i = k + 1;
            } else if at(i + 2) == '\'' {
                out[i + 1] = '_';
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn at_prev(chars: &[char], i: usize) -> char {
    if i == 0 {
        '\0'
    } else {
        chars[i - 1]
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Blanks every `#[cfg(test)] mod … { … }` block: routers built by unit tests are not served.
fn drop_test_modules(code: &mut [char]) {
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= code.len() {
        if code[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let rest: String = code[i + marker.len()..].iter().collect();
        if !rest.trim_start().starts_with("mod ") {
            i += marker.len();
            continue;
        }
        let Some(open) = (i..code.len()).find(|&k| code[k] == '{') else {
            return;
        };
        let mut depth = 0;
        let mut end = open;
        for (k, &c) in code.iter().enumerate().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = k;
                break;
            }
        }
        for slot in &mut code[i..=end] {
            *slot = ' ';
        }
        i = end + 1;
    }
}

/// Every (method, path) declared by a `.route("…", …)` call in `file`'s `text`.
fn routes_in(file: &str, text: &str) -> Vec<(String, String)> {
    let original: Vec<char> = text.chars().collect();
    let mut code = skeleton(text);
    drop_test_modules(&mut code);
    let code_text: String = code.iter().collect();
    for call in UNSUPPORTED_ROUTER_CALLS {
        assert!(
            !code_text.contains(call),
            "{file} uses `{call}…)`, which the route sweep cannot enumerate: teach \
             tests/app/route_sweep.rs about it"
        );
    }

    let needle: Vec<char> = ".route(".chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + needle.len() <= code.len() {
        if code[i..i + needle.len()] != needle[..] {
            i += 1;
            continue;
        }
        let start = i + needle.len();
        let mut depth = 1;
        let mut path: Option<String> = None;
        let mut methods = Vec::new();
        let mut k = start;
        while k < code.len() && depth > 0 {
            match code[k] {
                '(' => depth += 1,
                ')' => depth -= 1,
                '"' if depth == 1 && path.is_none() => {
                    let end = (k + 1..code.len())
                        .find(|&e| code[e] == '"')
                        .expect("a closed string literal");
                    let literal: String = original[k + 1..end].iter().collect();
                    assert!(
                        !literal.contains('\\') && at_prev(&original, k) != '#',
                        "{file}: route path {literal:?} must be a plain string literal"
                    );
                    path = Some(literal);
                    k = end;
                }
                c if is_ident(c) && depth == 1 && !is_ident(code[k - 1]) => {
                    // A name at the top level of the call: if it is called, it must be a method
                    // function (get, post, …) or a wrapper that adds no method (layer).
                    let mut e = k;
                    while e < code.len() && is_ident(code[e]) {
                        e += 1;
                    }
                    let name: String = code[k..e].iter().collect();
                    let mut after = e;
                    while after < code.len() && code[after].is_whitespace() {
                        after += 1;
                    }
                    if code.get(after) == Some(&'(') {
                        if let Some((_, method)) = METHOD_FUNCTIONS.iter().find(|(f, _)| *f == name)
                        {
                            methods.push(method.to_string());
                        } else {
                            assert!(
                                NON_METHOD_CALLS.contains(&name.as_str()),
                                "{file}: `{name}(…)` in a .route(…) call is not a method the \
                                 route sweep knows (any/on cannot be enumerated): teach \
                                 tests/app/route_sweep.rs about it"
                            );
                        }
                    }
                    k = e - 1;
                }
                _ => {}
            }
            k += 1;
        }
        let path = path.unwrap_or_else(|| {
            panic!("{file}: a .route(…) call whose path is not a string literal")
        });
        assert!(
            !methods.is_empty(),
            "{file}: .route({path:?}, …) names no method"
        );
        for method in methods {
            found.push((method, path.clone()));
        }
        i = k;
    }
    found
}

/// Every (method, path) the routers of `src/http/*.rs` declare, read from their source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("src/http is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    let mut all = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for route in routes_in(&name, &text) {
            assert!(
                all.insert(route.clone()),
                "{name}: {} {} is declared twice",
                route.0,
                route.1
            );
        }
    }
    all
}

#[test]
fn the_route_parser_handles_chains_layers_comments_and_wildcards() {
    let source = r#"
        // .route("/commented", get(nope))
        Router::new()
            .route("/a", get(a).post(b))
            .route(
                "/b",
                get(import_page)
                    .post(import)
                    .layer(DefaultBodyLimit::max(LIMIT + 64 * 1024)),
            )
            .route("/c", post(upload).layer(DefaultBodyLimit::max(n + get_more(1))))
            .route("/static/{*path}", get(asset)) /* .route("/x", get(y)) */
            .fallback(|| async { ")" });
        #[cfg(test)]
        mod tests {
            fn t() { Router::new().route("/only-in-tests", get(t)); }
        }
    "#;
    let found: BTreeSet<_> = routes_in("example.rs", source).into_iter().collect();
    let expected: BTreeSet<_> = [
        ("GET", "/a"),
        ("POST", "/a"),
        ("GET", "/b"),
        ("POST", "/b"),
        ("POST", "/c"),
        ("GET", "/static/{*path}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn the_access_policy_names_exactly_the_routes_of_the_router() {
    let served = routes_in_source();
    let mut policy = BTreeSet::new();
    for spec in ROUTES {
        assert!(
            policy.insert((spec.method.to_owned(), spec.path.to_owned())),
            "ROUTES lists {} {} twice",
            spec.method,
            spec.path
        );
    }
    let unlisted: Vec<_> = served.difference(&policy).collect();
    let stale: Vec<_> = policy.difference(&served).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "src/http/routes.rs ROUTES must name every route exactly.\n\
         Served but without an access policy (add them to ROUTES): {unlisted:?}\n\
         In ROUTES but not served (remove them, or add the route): {stale:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The sweep: every route, every kind of visitor.
// ---------------------------------------------------------------------------------------------

/// Headers each response of the sweep must carry with exactly this value (DESIGN.md §4).
const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// Fields sent with every sweep POST besides the token: enough for each form handler to get past
/// its extractor to its access check (which must come first anyway), nothing that could succeed
/// on a public form (no email or password).
const FORM_FIELDS: [(&str, &str); 5] = [
    ("expected_version", "2"),
    ("title", "Sweep"),
    ("name", "Sweep"),
    ("direction", "up"),
    ("role", "user"),
];

/// The ids the sweep puts into paths.
struct Ids {
    /// Alice's CV.
    cv: String,
    /// Alice's account.
    user: String,
    /// The work entry of alice's CV.
    entry: String,
}

/// `pattern` with every parameter replaced by a real value; an unknown parameter fails the test,
/// so a new kind of route makes the sweep learn what to put there.
fn concrete(pattern: &str, ids: &Ids) -> String {
    let segments: Vec<String> = pattern
        .split('/')
        .map(|segment| match segment {
            "{id}" if pattern.starts_with("/cvs/") || pattern.starts_with("/admin/cvs/") => {
                ids.cv.clone()
            }
            "{id}" if pattern.starts_with("/users/") || pattern.starts_with("/admin/users/") => {
                ids.user.clone()
            }
            "{section}" => "work".to_owned(),
            "{entry}" => ids.entry.clone(),
            "{n}" | "{position}" => "1".to_owned(),
            "{token}" => "a1".repeat(32),
            "{*path}" => "app.css".to_owned(),
            other if other.starts_with('{') => {
                panic!("the route sweep does not know what to put for {other} in {pattern}")
            }
            other => other.to_owned(),
        })
        .collect();
    segments.join("/")
}

/// What a response should be.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 303 to `/login?next=<the requested path>`.
    LoginRedirect,
    /// Anything but a redirect to the login page.
    NoLoginRedirect,
    /// Exactly this status.
    Status(StatusCode),
}

/// The sweep's findings: every request checked, every disagreement kept.
#[derive(Default)]
struct Sweep {
    checked: usize,
    failures: Vec<String>,
}

impl Sweep {
    /// Checks `response` (to `method path`, sent as `who`) against `expect`, the security
    /// headers and "never 5xx".
    fn check(
        &mut self,
        who: &str,
        method: &str,
        path: &str,
        response: &TestResponse,
        expect: Expect,
    ) {
        self.checked += 1;
        let mut fail = |what: String| {
            self.failures.push(format!(
                "{who}: {method} {path} → {}: {what}",
                response.status
            ))
        };
        for (name, expected) in SECURITY_HEADERS {
            match response.headers.get(name).and_then(|v| v.to_str().ok()) {
                Some(value) if value == expected => {}
                Some(value) => fail(format!("{name} is {value:?}, expected {expected:?}")),
                None => fail(format!("no {name} header")),
            }
        }
        // The policy's full text is security.rs's business; here: present, our origin only,
        // and no inline script anywhere.
        match response
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
        {
            Some(csp) if csp.contains("default-src 'self'") && !csp.contains("unsafe-inline") => {}
            Some(csp) => fail(format!("content-security-policy is {csp:?}")),
            None => fail("no content-security-policy header".into()),
        }
        if !response.headers.contains_key("x-request-id") {
            fail("no x-request-id header".into());
        }
        if response.status.is_server_error() {
            fail("a server error".into());
        }
        let location = response.location();
        let to_login = response.status.is_redirection() && location.starts_with("/login");
        match expect {
            Expect::LoginRedirect => {
                let next = location
                    .strip_prefix("/login?next=")
                    .and_then(|next| {
                        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("next={next}"))
                            .ok()
                    })
                    .and_then(|pairs| pairs.into_iter().next().map(|(_, value)| value));
                if response.status != StatusCode::SEE_OTHER || next.as_deref() != Some(path) {
                    fail(format!(
                        "expected 303 → /login?next={path}, got Location {location:?}"
                    ));
                }
            }
            Expect::NoLoginRedirect => {
                if to_login {
                    fail(format!("a public route redirects to {location:?}"));
                }
            }
            Expect::Status(status) => {
                if response.status != status {
                    fail(format!("expected {status}"));
                }
            }
        }
    }
}

/// How a sweep POST proves (or fails to prove) that it comes from our own form.
#[derive(Clone, Copy)]
enum Provenance<'a> {
    /// The session's token and `Sec-Fetch-Site: same-origin`: what our own form sends.
    SameSite(&'a str),
    /// `Sec-Fetch-Site: same-origin` but no token in the body.
    NoToken,
    /// The right token, from a page of another origin.
    ForeignOrigin(&'a str),
    /// The right token, but the browser says another site started the request.
    CrossSite(&'a str),
}

/// POSTs the sweep's form to `path` from `browser`.
async fn post(browser: &mut Browser, path: &str, provenance: Provenance<'_>) -> TestResponse {
    let (token, header) = match provenance {
        Provenance::SameSite(token) => (Some(token), ("sec-fetch-site", "same-origin")),
        Provenance::NoToken => (None, ("sec-fetch-site", "same-origin")),
        Provenance::ForeignOrigin(token) => (Some(token), ("origin", "https://evil.example")),
        Provenance::CrossSite(token) => (Some(token), ("sec-fetch-site", "cross-site")),
    };
    let mut fields: Vec<(&str, &str)> = token.map(|t| ("csrf_token", t)).into_iter().collect();
    fields.extend_from_slice(&FORM_FIELDS);
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header.0, header.1)
        .body(Body::from(serde_urlencoded::to_string(&fields).unwrap()))
        .unwrap();
    browser.send(request).await
}

/// The id in a `/cvs/{id}/…` location.
fn cv_id_in(location: &str) -> String {
    location
        .strip_prefix("/cvs/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not a CV location: {location:?}"))
        .to_owned()
}

/// Pictures: alice uploaded none, so her own avatar is a 404 too. Access to pictures with a
/// picture present is covered by `profile::pictures_are_private_to_their_owner_and_superusers`.
const AVATAR: &str = "/users/{id}/avatar";

fn is_get(spec: &RouteSpec) -> bool {
    spec.method == "GET"
}

#[tokio::test]
async fn every_route_enforces_its_access_policy() {
    // The superuser drives the app's own browser; the others are browsers of their own.
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;

    let mut alice = app.new_browser();
    let registered = alice
        .register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(registered.status, StatusCode::SEE_OTHER);
    let created = alice
        .post_form("/cvs/new", &[("title", "Alice's CV")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let cv = cv_id_in(created.location());
    let added = alice
        .post_form(
            &format!("/cvs/{cv}/sections/work"),
            &[("expected_version", "1"), ("name", "Acme")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let editor = alice.get(&format!("/cvs/{cv}/edit")).await;
    let marker = format!("/cvs/{cv}/sections/work/");
    let start = editor.body.find(&marker).expect("the work entry's form") + marker.len();
    let entry = editor.body[start..start + 36].to_owned();
    assert!(uuid::Uuid::parse_str(&entry).is_ok(), "entry id {entry:?}");
    let ids = Ids {
        cv,
        user: app.user_id("alice@example.com").await.to_string(),
        entry,
    };

    let mut eve = app.new_browser();
    let registered = eve.register("eve", "eve@example.com", GOOD_PASSWORD).await;
    assert_eq!(registered.status, StatusCode::SEE_OTHER);

    let mut anonymous = app.new_browser();
    let mut sweep = Sweep::default();

    // Anonymous: everything but the public allowlist sends to the login page. POSTs carry a
    // valid token of the anonymous session, so that the login check, not CSRF, answers.
    for spec in ROUTES {
        let path = concrete(spec.path, &ids);
        let response = if is_get(spec) {
            anonymous.get(&path).await
        } else {
            // Fetched each time: the anonymous POST /logout ends the session and its token.
            let token = anonymous.csrf_token().await;
            post(&mut anonymous, &path, Provenance::SameSite(&token)).await
        };
        let expect = match spec.access {
            Access::Public => Expect::NoLoginRedirect,
            _ => Expect::LoginRedirect,
        };
        sweep.check("anonymous", spec.method, &path, &response, expect);
    }

    // Eve, a regular user who owns nothing here: /admin is 403, alice's things do not exist.
    let token = eve.csrf_token().await;
    for spec in ROUTES {
        let expect = match spec.access {
            Access::Superuser => Expect::Status(StatusCode::FORBIDDEN),
            Access::Owner | Access::OwnerOrSuperuser => Expect::Status(StatusCode::NOT_FOUND),
            // Her own pages: the GETs must work (POSTs would change her account or log her
            // out; their own tests cover them).
            Access::User if is_get(spec) => Expect::Status(StatusCode::OK),
            Access::User | Access::Public => continue,
        };
        let path = concrete(spec.path, &ids);
        let response = if is_get(spec) {
            eve.get(&path).await
        } else {
            post(&mut eve, &path, Provenance::SameSite(&token)).await
        };
        sweep.check("eve", spec.method, &path, &response, expect);
    }

    // The superuser reads any CV but edits none they do not own (403, DESIGN.md §3). Admin
    // GETs must work, which also shows that eve's 403s are about her, not the paths. Admin
    // POSTs are not sent: they would change alice's account for real.
    let token = app.csrf_token().await;
    for spec in ROUTES {
        let expect = match spec.access {
            Access::OwnerOrSuperuser if spec.path == AVATAR => {
                Expect::Status(StatusCode::NOT_FOUND)
            }
            Access::OwnerOrSuperuser => Expect::Status(StatusCode::OK),
            Access::Owner => Expect::Status(StatusCode::FORBIDDEN),
            Access::Superuser if is_get(spec) => Expect::Status(StatusCode::OK),
            Access::Superuser | Access::User | Access::Public => continue,
        };
        let path = concrete(spec.path, &ids);
        let response = if is_get(spec) {
            app.get(&path).await
        } else {
            post(&mut app.browser, &path, Provenance::SameSite(&token)).await
        };
        sweep.check("superuser", spec.method, &path, &response, expect);
    }

    // Alice, the owner: every GET of hers works, which shows that eve's 404s are about eve and
    // not about ids that do not exist.
    for spec in ROUTES.iter().filter(|spec| is_get(spec)) {
        let expect = match spec.access {
            _ if spec.path == AVATAR => Expect::Status(StatusCode::NOT_FOUND),
            Access::User | Access::Owner | Access::OwnerOrSuperuser => {
                Expect::Status(StatusCode::OK)
            }
            Access::Superuser => Expect::Status(StatusCode::FORBIDDEN),
            Access::Public => Expect::NoLoginRedirect,
        };
        let path = concrete(spec.path, &ids);
        let response = alice.get(&path).await;
        sweep.check("alice", spec.method, &path, &response, expect);
    }

    // CSRF: every POST, public ones included, is refused without the token, and with the token
    // when the request comes from another site (DESIGN.md §3: 403).
    let token = alice.csrf_token().await;
    for spec in ROUTES.iter().filter(|spec| !is_get(spec)) {
        let path = concrete(spec.path, &ids);
        for (who, provenance) in [
            ("alice without a CSRF token", Provenance::NoToken),
            (
                "alice from Origin https://evil.example",
                Provenance::ForeignOrigin(&token),
            ),
            (
                "alice with Sec-Fetch-Site: cross-site",
                Provenance::CrossSite(&token),
            ),
        ] {
            let response = post(&mut alice, &path, provenance).await;
            sweep.check(
                who,
                spec.method,
                &path,
                &response,
                Expect::Status(StatusCode::FORBIDDEN),
            );
        }
    }

    assert!(
        sweep.failures.is_empty(),
        "{} of {} sweep checks disagree with the access policy:\n{}",
        sweep.failures.len(),
        sweep.checked,
        sweep.failures.join("\n")
    );
    // Nothing refused may have happened anyway: alice's CV is as she left it.
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_id = ?")
        .bind(&ids.cv)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(events, 2, "alice's CV changed during the sweep");
}
