//! `TestApp`: the real router over a fresh data directory, driven in-process with
//! `tower::ServiceExt::oneshot`, with a one-cookie jar and CSRF tokens handled like a browser.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use cvm::app::{build_router, Core};
use cvm::config::ServeConfig;
use sqlx::SqlitePool;
use tempfile::TempDir;
use tower::ServiceExt;

/// A password that passes every rule of the policy.
pub const GOOD_PASSWORD: &str = "correct horse battery staple";

/// A fresh instance of the application and one browser talking to it (the app derefs to its
/// browser, so `app.get(..)` is that browser's request).
pub struct TestApp {
    pub browser: Browser,
    pub core: Core,
    /// The data directory; dropping it deletes the data.
    data_dir: TempDir,
}

impl Deref for TestApp {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut Browser {
        &mut self.browser
    }
}

/// What came back.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as text (lossy for binary bodies; see `bytes`).
    pub body: String,
    pub bytes: Vec<u8>,
}

impl TestResponse {
    /// The `Location` header of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the hidden CSRF input on the page.
    pub fn csrf_token(&self) -> Option<String> {
        hidden_input(&self.body, "csrf_token")
    }
}

/// The `value` of `<input … name="NAME" value="…">` in `html`.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl TestApp {
    /// A fresh application with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh application with settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::spawn_in(dir, configure).await
    }

    /// The application over the data directory `dir`, which may hold data already.
    pub async fn spawn_in(dir: TempDir, configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = ServeConfig::for_data_dir(dir.path());
        configure(&mut config);
        let (router, core, _sessions) = build_router(config).await.expect("application builds");
        Self {
            browser: Browser::new(router),
            core,
            data_dir: dir,
        }
    }

    /// Another browser (no cookie) on the same server.
    pub fn new_browser(&self) -> Browser {
        Browser::new(self.browser.router.clone())
    }

    /// The data directory (database, pictures, outbox).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// The id of the account with this email.
    pub async fn user_id(&self, email: &str) -> uuid::Uuid {
        projections::users::find_by_email(self.pool(), email)
            .await
            .unwrap()
            .expect("user exists")
            .id
    }

    /// Runs a command as the CLI would (no actor).
    pub async fn run(&self, id: uuid::Uuid, command: domain::UserCommand) {
        self.core
            .commands
            .user(id, command, &projections::EventMetadata::now("test"))
            .await
            .expect("command accepted");
    }

    /// The database of the event log and read models.
    pub fn pool(&self) -> &SqlitePool {
        &self.core.pool
    }

    /// Registers `username` with `username@example.com`, then logs out: an account to log in to.
    pub async fn existing_user(&mut self, username: &str) -> String {
        let email = format!("{username}@example.com");
        let response = self.register(username, &email, GOOD_PASSWORD).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
        self.logout().await;
        email
    }

    /// Creates a superuser through the same path as the CLI, and logs this browser in as them.
    pub async fn logged_in_superuser(&mut self) {
        let registration = cvm::accounts::Registration {
            username: "admin".into(),
            email: "admin@example.com".into(),
            password: GOOD_PASSWORD.into(),
            password_confirm: GOOD_PASSWORD.into(),
        };
        self.core
            .accounts
            .register(
                &registration,
                domain::Role::Superuser,
                &projections::EventMetadata::now("test"),
            )
            .await
            .expect("superuser created");
        let response = self.login("admin@example.com", GOOD_PASSWORD).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER);
    }

    /// Every event of the log, oldest first, as the application reads it: personal data
    /// decrypted (the `events` table itself holds it sealed).
    pub async fn events(&self) -> Vec<projections::StoredEvent> {
        self.core
            .log
            .read_after(0, i64::MAX)
            .await
            .expect("the event log")
    }

    /// Number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .expect("count")
    }
}

/// A browser: a session cookie jar, a client address, and form posting with CSRF tokens.
pub struct Browser {
    pub router: Router,
    /// The session cookie (`name=value`) the browser holds, if any.
    pub cookie: Option<String>,
    /// The address the requests come from.
    pub peer: SocketAddr,
}

impl Browser {
    fn new(router: Router) -> Self {
        Self {
            router,
            cookie: None,
            peer: "192.0.2.10:40000".parse().unwrap(),
        }
    }

    /// Sends `request` with the cookie and peer address, and keeps any cookie set.
    pub async fn send(&mut self, mut request: Request<Body>) -> TestResponse {
        if let Some(cookie) = self.cookie.as_ref() {
            if !request.headers().contains_key(header::COOKIE) {
                request
                    .headers_mut()
                    .insert(header::COOKIE, cookie.parse().unwrap());
            }
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        for set_cookie in headers.get_all(header::SET_COOKIE) {
            let set_cookie = set_cookie.to_str().unwrap();
            let pair = set_cookie.split(';').next().unwrap().trim().to_owned();
            if set_cookie.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    /// The session's CSRF token, read from a page's form as a browser would see it (the login
    /// form when anonymous, the logout form when logged in).
    pub async fn csrf_token(&mut self) -> String {
        for page in ["/login", "/"] {
            if let Some(token) = self.get(page).await.csrf_token() {
                return token;
            }
        }
        panic!("no page shows a CSRF token");
    }

    /// POSTs an urlencoded `body` as-is, with a same-origin header and no token added.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> TestResponse {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header("sec-fetch-site", "same-origin")
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    /// POSTs a form like a browser would: with the page's CSRF token and a same-origin header.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.post_raw(path, "application/x-www-form-urlencoded", body)
            .await
    }

    /// Registers through the form; leaves the browser logged in on success.
    pub async fn register(&mut self, username: &str, email: &str, password: &str) -> TestResponse {
        self.post_form(
            "/register",
            &[
                ("username", username),
                ("email", email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    /// Logs in through the form.
    pub async fn login(&mut self, email: &str, password: &str) -> TestResponse {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// POSTs a multipart upload of one file field, with the CSRF token in the query string
    /// as the page's form does.
    pub async fn upload(
        &mut self,
        path: &str,
        field: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> TestResponse {
        let token = self.csrf_token().await;
        let boundary = "----cvm-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let separator = if path.contains('?') { '&' } else { '?' };
        self.post_raw(
            &format!("{path}{separator}csrf_token={token}"),
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await
    }

    /// Logs out through the form.
    pub async fn logout(&mut self) -> TestResponse {
        self.post_form("/logout", &[]).await
    }
}

/// The mails in the outbox, waiting up to `wait` for `count` of them (sending runs in the
/// background).
pub async fn outbox(app: &TestApp, count: usize, wait: Duration) -> Vec<String> {
    let dir = app.data_dir().join("outbox");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mails: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if mails.len() >= count || tokio::time::Instant::now() >= deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reset path (`/password-reset/<token>`) in a mail, undoing quoted-printable soft breaks.
pub fn reset_path(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/password-reset/").expect("a reset link");
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '-')
        .collect()
}

/// A projector over the database file behind `pool`, with the master key the application keeps
/// beside it (`master.key` in the same data directory), as the CLI would open it.
pub async fn projector_over(pool: &SqlitePool) -> projections::Projector {
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await
            .expect("the database file");
    let key_file = std::path::Path::new(&file)
        .parent()
        .expect("a data directory")
        .join("master.key");
    let keyring = projections::Keyring::open(&key_file, pool)
        .await
        .expect("the master key");
    projections::Projector::new(projections::EventLog::new(
        pool.clone(),
        std::sync::Arc::new(keyring),
    ))
}
