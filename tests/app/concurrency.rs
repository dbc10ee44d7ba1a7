//! Concurrency. Uniqueness under races: the claims table, not a read-model lookup, decides.
//! And the real binary under mixed parallel load for a bounded time — sign-ups (some racing for
//! one name), logins (some throttled), CV edits on separate CVs and on one CV shared by several
//! sessions, admin actions: no answer ≥ 500, no lock contention in the log, every 409 explained
//! by the edit that won, every event the one its request's answer promised, and read models
//! equal to a rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cvm::throttle::ACCOUNT_LIMIT;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::helpers::{hidden_input, TestApp, GOOD_PASSWORD};
use crate::real_server::{cvm, Browser, Failure, Reply, Server, XorShift};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_to_one_account_all_get_in() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("devices").await;
    let attempts = (0..12).map(|_| {
        let (mut browser, email) = (app.new_browser(), email.clone());
        tokio::spawn(async move { browser.login(&email, GOOD_PASSWORD).await.status })
    });
    let statuses = futures_statuses(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_to_one_account_are_refused_never_a_5xx() {
    let mut app = TestApp::spawn().await;
    let email = app.existing_user("target").await;
    let attempts = (0..12).map(|n| {
        let (mut browser, email) = (app.new_browser(), email.clone());
        let guess = format!("wrong guess number {n}");
        tokio::spawn(async move { browser.login(&email, &guess).await.status })
    });
    let statuses = futures_statuses(attempts).await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
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

// ---------------------------------------------------------------------------------------------
// Mixed parallel load on the real binary.

/// How long the load runs (the whole test takes a few seconds more: setup and checks).
const LOAD: Duration = Duration::from_secs(8);
/// Threads editing their own CV each, and sessions editing the one shared CV.
const SEPARATE_EDITORS: usize = 3;
const SHARED_EDITORS: usize = 3;
/// Accounts the login threads log in to (at random, so sometimes two at once to one account).
const LOGIN_ACCOUNTS: usize = 3;
const LOGIN_THREADS: usize = 2;
/// Requests sent at the same moment in a burst of logins (more than the login throttle's limit,
/// and more than the number of password hashes the server computes at once).
const BURST: usize = 8;
/// Sections the editors add entries to, with the field each entry is named by. A section holds
/// at most 100 entries, so adds are spread over several.
const SECTIONS: [(&str, &str); 4] = [
    ("skills", "name"),
    ("interests", "name"),
    ("languages", "language"),
    ("awards", "title"),
];
/// Adds per section a separate editor makes at most (it then only updates basics and title).
const ADDS_PER_SECTION: usize = 90;
/// Adds per section each shared editor tries at most, so that together they stay under 100.
const SHARED_ADDS_PER_SECTION: usize = 30;

/// What a request was part of, for the expectations and the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Arranging accounts, sessions and CVs before the load.
    Setup,
    /// Sign-ups of new users, each from a new browser.
    Register,
    /// Two sign-ups at once with the same email or username.
    RaceRegister,
    /// Logins with the right password, then a page and a logout.
    Login,
    /// Logins to one account from many browsers at once, with the right password.
    LoginBurst,
    /// Wrong passwords sent at once to the account that gets throttled.
    WrongGuessBurst,
    /// Logins one at a time to the throttled account, wrong and right passwords in turn.
    WrongPassword,
    /// Edits of a CV only one thread edits.
    SeparateEdit,
    /// Edits of the CV several sessions of its owner edit at once.
    SharedEdit,
    /// Admin pages that only read.
    AdminRead,
    /// Admin changes: (de)activate, promote/demote, archive and the owner's unarchive.
    AdminAction,
}

/// One request and how it ended.
#[derive(Debug)]
struct Exchange {
    worker: String,
    kind: Kind,
    method: &'static str,
    path: String,
    /// The statuses this request may get; anything else is a failure of the test.
    allowed: &'static [u16],
    result: Result<Answer, Failure>,
    /// The `expected_version` a CV edit carried.
    expected_version: Option<u64>,
    /// For a 409 on a CV edit: the version the page says the CV is at now.
    current_version: Option<u64>,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    request_id: String,
    retry_after: String,
}

impl Exchange {
    fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().map(|answer| answer.status)
    }

    fn request_id(&self) -> &str {
        self.result.as_ref().map_or("", |a| a.request_id.as_str())
    }
}

/// One browser of one worker thread, recording every request it makes.
struct Client {
    address: String,
    worker: String,
    browser: Browser,
    log: Vec<Exchange>,
    /// Anything wrong besides a status (a page without its form, a race with two winners, …).
    problems: Vec<String>,
}

impl Client {
    fn new(address: &str, worker: impl Into<String>) -> Self {
        Self {
            address: address.to_owned(),
            worker: worker.into(),
            browser: Browser::new(address),
            log: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Takes over what other clients of this worker did.
    fn absorb(&mut self, others: impl IntoIterator<Item = Client>) {
        for other in others {
            self.log.extend(other.log);
            self.problems.extend(other.problems);
        }
    }

    /// Hands over the browser (with its session) and goes on with a new one.
    fn take_browser(&mut self) -> Browser {
        std::mem::replace(&mut self.browser, Browser::new(&self.address))
    }

    /// Forgets the session: the next request comes from a new browser.
    fn new_browser(&mut self) {
        self.browser = Browser::new(&self.address);
    }

    fn record(
        &mut self,
        kind: Kind,
        method: &'static str,
        path: &str,
        allowed: &'static [u16],
        result: Result<Reply, Failure>,
        expected_version: Option<u64>,
    ) -> Option<Reply> {
        let answer = result.as_ref().map(|reply| Answer {
            status: reply.status,
            request_id: reply.request_id.clone(),
            retry_after: reply.retry_after.clone(),
        });
        self.log.push(Exchange {
            worker: self.worker.clone(),
            kind,
            method,
            path: path.to_owned(),
            allowed,
            result: answer.map_err(|failure| *failure),
            expected_version,
            current_version: None,
        });
        result.ok()
    }

    fn get(&mut self, kind: Kind, path: &str) -> Option<Reply> {
        let result = self.browser.get(path);
        self.record(kind, "GET", path, &[200], result, None)
    }

    /// Loads a page with a form: its CSRF token and the page.
    fn form(&mut self, kind: Kind, path: &str) -> Option<(String, String)> {
        let page = self.get(kind, path)?;
        match hidden_input(&page.body, "csrf_token") {
            Some(token) if page.status == 200 => Some((token, page.body)),
            _ => {
                self.problems
                    .push(format!("{}: {path} shows no form", self.worker));
                None
            }
        }
    }

    fn post(
        &mut self,
        kind: Kind,
        path: &str,
        fields: &[(&str, &str)],
        allowed: &'static [u16],
    ) -> Option<Reply> {
        let expected_version = fields
            .iter()
            .find(|(name, _)| *name == "expected_version")
            .and_then(|(_, value)| value.parse().ok());
        let result = self.browser.post(path, fields);
        self.record(kind, "POST", path, allowed, result, expected_version)
    }

    /// Loads `page` for its token and posts `fields` (plus the token) to `action`.
    fn submit(
        &mut self,
        kind: Kind,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        allowed: &'static [u16],
    ) -> Option<Reply> {
        let (token, _) = self.form(kind, page)?;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(kind, action, &all, allowed)
    }

    fn register(
        &mut self,
        kind: Kind,
        username: &str,
        email: &str,
        allowed: &'static [u16],
    ) -> Option<Reply> {
        let fields = [
            ("username", username),
            ("email", email),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ];
        self.submit(kind, "/register", "/register", &fields, allowed)
    }

    fn log_in(
        &mut self,
        kind: Kind,
        email: &str,
        password: &str,
        allowed: &'static [u16],
    ) -> Option<Reply> {
        let fields = [("email", email), ("password", password)];
        self.submit(kind, "/login", "/login", &fields, allowed)
    }

    /// Opens the editor of `cv` and submits one change from it; returns the status.
    fn edit_cv(
        &mut self,
        kind: Kind,
        cv: Uuid,
        change: &CvChange,
        allowed: &'static [u16],
    ) -> Option<u16> {
        let editor = format!("/cvs/{cv}/edit");
        let (token, page) = self.form(kind, &editor)?;
        let Some(version) = hidden_input(&page, "expected_version") else {
            self.problems.push(format!(
                "{}: the editor has no expected_version",
                self.worker
            ));
            return None;
        };
        let (action, field, value) = match change {
            CvChange::Basics(name) => (format!("/cvs/{cv}/basics"), "name", name),
            CvChange::Rename(title) => (editor.clone(), "title", title),
            CvChange::Add {
                section,
                field,
                value,
            } => (format!("/cvs/{cv}/sections/{section}"), *field, value),
        };
        let mut fields = vec![
            ("csrf_token", token.as_str()),
            ("expected_version", version.as_str()),
            (field, value.as_str()),
        ];
        if matches!(change, CvChange::Basics(_)) {
            fields.push(("label", "Engineer"));
        }
        let reply = self.post(kind, &action, &fields, allowed)?;
        if reply.status == 409 {
            // The 409 page says where the CV is now and keeps what was typed.
            let current = reply
                .body
                .split("it is now at version ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|n| n.parse().ok());
            if let Some(exchange) = self.log.last_mut() {
                exchange.current_version = current;
            }
            if current.is_none() || !reply.body.contains(value.as_str()) {
                self.problems.push(format!(
                    "{}: the 409 of {action} names no current version or loses the input",
                    self.worker
                ));
            }
        }
        Some(reply.status)
    }
}

/// One change to a CV, each with a value no other change has (so every change is a change).
enum CvChange {
    Basics(String),
    Rename(String),
    Add {
        section: &'static str,
        field: &'static str,
        value: String,
    },
}

/// What the setup made: the accounts and CVs the workers use.
struct Cast {
    admin_id: Uuid,
    /// Logged-in browsers of the shared CV's owner, one per shared editor.
    shared_sessions: Vec<Browser>,
    shared_cv: Uuid,
    /// Each separate editor's logged-in browser and CV.
    separate: Vec<(Browser, Uuid)>,
    login_emails: Vec<String>,
    throttled_email: String,
    /// The account logged in to in bursts.
    burst_email: String,
    /// Accounts only the admin acts on: one to (de)activate, one to promote/demote.
    deactivation_target: Uuid,
    promotion_target: Uuid,
    /// The CV the admin archives and its owner (logged in) unarchives.
    archive_owner: Browser,
    archive_cv: Uuid,
}

#[test]
fn mixed_parallel_load_gives_no_5xx_no_lock_errors_only_explained_409s_and_exact_read_models() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let created = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ])
        .env("CVM_SUPERUSER_PASSWORD", GOOD_PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "create-superuser: {created:?}");
    let server = Server::start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = runtime.block_on(async {
        projections::database::open(&dir.path().join("cvm.db"))
            .await
            .unwrap()
    });

    // Arrange: accounts, sessions and CVs, all before the load starts.
    let mut setup = Client::new(&server.address, "setup");
    let cast = arrange(&mut setup, &runtime, &pool);
    let setup_events: BTreeMap<Uuid, i64> = [cast.shared_cv]
        .into_iter()
        .chain(cast.separate.iter().map(|(_, cv)| *cv))
        .map(|cv| (cv, runtime.block_on(cv_sequence(&pool, cv))))
        .collect();

    // Act: every kind of worker at once until the deadline.
    let load_started = Instant::now();
    let until = load_started + LOAD;
    let address = server.address.as_str();
    let Cast {
        admin_id,
        shared_sessions,
        shared_cv,
        separate,
        login_emails,
        throttled_email,
        burst_email,
        deactivation_target,
        promotion_target,
        archive_owner,
        archive_cv,
    } = cast;
    let clients: Vec<Client> = thread::scope(|scope| {
        let mut workers = Vec::new();
        workers.push(scope.spawn(move || register_fresh_users(address, until)));
        workers.push(scope.spawn(move || race_registrations(address, until)));
        let emails = &login_emails;
        for n in 0..LOGIN_THREADS {
            workers.push(scope.spawn(move || log_in_repeatedly(address, n, emails, until)));
        }
        let throttled = &throttled_email;
        workers.push(scope.spawn(move || guess_passwords(address, throttled, until)));
        let burst = &burst_email;
        workers.push(scope.spawn(move || log_in_in_bursts(address, burst, until)));
        for (n, (browser, cv)) in separate.into_iter().enumerate() {
            workers.push(scope.spawn(move || edit_separately(address, n, browser, cv, until)));
        }
        for (n, browser) in shared_sessions.into_iter().enumerate() {
            workers.push(scope.spawn(move || edit_shared(address, n, browser, shared_cv, until)));
        }
        workers.push(scope.spawn(move || {
            administer(
                address,
                admin_id,
                deactivation_target,
                promotion_target,
                (archive_owner, archive_cv),
                until,
            )
        }));
        workers.push(scope.spawn(move || read_admin_pages(address, shared_cv, until)));
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a worker thread panicked"))
            .collect()
    });
    let load_took = load_started.elapsed();
    let log = server.terminate();

    // Assert: every request answered, nothing ≥ 500, only the statuses each one may get.
    let exchanges: Vec<&Exchange> = std::iter::once(&setup)
        .chain(&clients)
        .flat_map(|client| &client.log)
        .collect();
    let problems: Vec<&String> = std::iter::once(&setup)
        .chain(&clients)
        .flat_map(|client| &client.problems)
        .collect();
    let summary = summarise(&exchanges);
    eprintln!(
        "mixed load: {} requests in {:.1} s of load ({:.1} s in all): {summary}",
        exchanges.len(),
        load_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // The log first: it names the cause of most failures below.
    let locked: Vec<&String> = log
        .iter()
        .filter(|line| {
            let line = line.to_lowercase();
            line.contains("database is locked") || line.contains("busy")
        })
        .collect();
    assert!(
        locked.is_empty(),
        "{} lines of lock contention in the log: {:#?}",
        locked.len(),
        first(&locked)
    );
    let errors: Vec<&String> = log
        .iter()
        .filter(|line| line.contains(" ERROR ") || line.contains("panicked"))
        .collect();
    assert!(
        errors.is_empty(),
        "the server logged {} errors: {:#?}",
        errors.len(),
        first(&errors)
    );

    let unanswered: Vec<&&Exchange> = exchanges.iter().filter(|e| e.result.is_err()).collect();
    assert!(
        unanswered.is_empty(),
        "requests without an answer: {unanswered:#?}"
    );
    let server_errors: Vec<&&Exchange> = exchanges
        .iter()
        .filter(|e| e.status().is_some_and(|status| status >= 500))
        .collect();
    assert!(
        server_errors.is_empty(),
        "{} answers ≥ 500: {:#?}",
        server_errors.len(),
        first(&server_errors)
    );
    let unexpected: Vec<&&Exchange> = exchanges
        .iter()
        .filter(|e| {
            e.status()
                .is_some_and(|status| !e.allowed.contains(&status))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} unexpected statuses: {:#?}",
        unexpected.len(),
        first(&unexpected)
    );
    assert!(problems.is_empty(), "{problems:#?}");

    check_throttling(&exchanges);
    runtime.block_on(async {
        check_log_and_read_models(&pool, &exchanges, &setup_events, shared_cv).await;
        pool.close().await;
    });
    let verify = cvm(dir.path())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "rebuild-projections --verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The first few of a long list, for a readable failure message.
fn first<T>(items: &[T]) -> &[T] {
    &items[..items.len().min(5)]
}

/// Registers the cast, logs in their sessions and creates their CVs.
fn arrange(setup: &mut Client, runtime: &tokio::runtime::Runtime, pool: &SqlitePool) -> Cast {
    let mut account = |username: &str| -> Browser {
        let email = format!("{username}@example.com");
        setup.register(Kind::Setup, username, &email, &[303]);
        setup.take_browser()
    };
    let shared_owner = account("sharer");
    let separate_browsers: Vec<Browser> = (0..SEPARATE_EDITORS)
        .map(|n| account(&format!("editor{n}")))
        .collect();
    let login_emails: Vec<String> = (0..LOGIN_ACCOUNTS)
        .map(|n| {
            account(&format!("login{n}"));
            format!("login{n}@example.com")
        })
        .collect();
    account("throttled");
    account("burst");
    account("deactivation-target");
    account("promotion-target");
    let archive_owner = account("archivist");
    let id_of = |username: &str| runtime.block_on(user_id(pool, username));

    setup.browser = shared_owner;
    let shared_cv = create_cv(setup, "Shared CV");
    let mut shared_sessions = vec![setup.take_browser()];
    while shared_sessions.len() < SHARED_EDITORS {
        setup.log_in(Kind::Setup, "sharer@example.com", GOOD_PASSWORD, &[303]);
        shared_sessions.push(setup.take_browser());
    }
    let separate = separate_browsers
        .into_iter()
        .enumerate()
        .map(|(n, browser)| {
            setup.browser = browser;
            let cv = create_cv(setup, &format!("Separate CV {n}"));
            (setup.take_browser(), cv)
        })
        .collect();
    setup.browser = archive_owner;
    let archive_cv = create_cv(setup, "Archived now and then");
    let archive_owner = setup.take_browser();
    Cast {
        admin_id: id_of("admin"),
        shared_sessions,
        shared_cv,
        separate,
        login_emails,
        throttled_email: "throttled@example.com".to_owned(),
        burst_email: "burst@example.com".to_owned(),
        deactivation_target: id_of("deactivation-target"),
        promotion_target: id_of("promotion-target"),
        archive_owner,
        archive_cv,
    }
}

fn create_cv(setup: &mut Client, title: &str) -> Uuid {
    let reply = setup
        .submit(
            Kind::Setup,
            "/cvs/new",
            "/cvs/new",
            &[("title", title)],
            &[303],
        )
        .expect("the server answers during setup");
    reply
        .location
        .strip_prefix("/cvs/")
        .and_then(|rest| rest.strip_suffix("/edit"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("a created CV redirects to its editor: {reply:?}"))
}

async fn user_id(pool: &SqlitePool, username: &str) -> Uuid {
    let id: String = sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_one(pool)
        .await
        .unwrap();
    Uuid::parse_str(&id).unwrap()
}

/// The sequence number of the CV's last event.
async fn cv_sequence(pool: &SqlitePool, cv: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(sequence), 0) FROM events
          WHERE aggregate_type = 'Cv' AND aggregate_id = ?",
    )
    .bind(cv.to_string())
    .fetch_one(pool)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The workers. Each runs until `until` and returns its client with everything it did.

/// Sign-ups of new users, each from a new browser; each is then logged in and sees its CVs.
fn register_fresh_users(address: &str, until: Instant) -> Client {
    let mut client = Client::new(address, "register");
    for n in 0.. {
        if Instant::now() >= until {
            break;
        }
        client.new_browser();
        let username = format!("fresh{n}");
        let email = format!("{username}@example.com");
        if client
            .register(Kind::Register, &username, &email, &[303])
            .is_some_and(|reply| reply.status == 303)
        {
            client.get(Kind::Register, "/cvs");
        }
    }
    client
}

/// Pairs of sign-ups sent at the same moment, alternately with one email and with one username
/// (in different cases): exactly one of each pair wins, the other gets 422.
fn race_registrations(address: &str, until: Instant) -> Client {
    let mut client = Client::new(address, "race");
    for n in 0.. {
        if Instant::now() >= until {
            break;
        }
        let same_email = n % 2 == 0;
        let contestants: Vec<(String, String)> = ["a", "b"]
            .iter()
            .map(|side| {
                if same_email {
                    (format!("race{n}{side}"), format!("race{n}@example.com"))
                } else {
                    let username = if *side == "a" {
                        format!("Racer{n}")
                    } else {
                        format!("rACER{n}")
                    };
                    (username, format!("racer{n}{side}@example.com"))
                }
            })
            .collect();
        let forms: Vec<Vec<(&str, &str)>> = contestants
            .iter()
            .map(|(username, email)| {
                vec![
                    ("username", username.as_str()),
                    ("email", email.as_str()),
                    ("password", GOOD_PASSWORD),
                    ("password_confirm", GOOD_PASSWORD),
                ]
            })
            .collect();
        let answers = at_once(
            address,
            &format!("race{n}"),
            Kind::RaceRegister,
            "/register",
            &forms,
            &[303, 422],
        );
        let mut statuses: Vec<Option<u16>> = answers
            .iter()
            .map(|(_, reply)| reply.as_ref().map(|reply| reply.status))
            .collect();
        statuses.sort();
        if statuses != [Some(303), Some(422)] {
            client.problems.push(format!(
                "race {n} ({}): one winner and one 422 expected, got {statuses:?}",
                if same_email { "email" } else { "username" }
            ));
        }
        if answers.iter().any(|(_, reply)| {
            reply
                .as_ref()
                .is_some_and(|reply| reply.status == 422 && !reply.body.contains("already"))
        }) {
            client.problems.push(format!(
                "race {n}: a 422 that does not say the name is taken"
            ));
        }
        client.absorb(answers.into_iter().map(|(racer, _)| racer));
    }
    client
}

/// Posts one form from each of `forms.len()` new browsers at the same moment: each loads
/// `path` for its CSRF token, all wait for one another, then all post `path` at once. Returns
/// each browser's client with its answer.
fn at_once(
    address: &str,
    worker: &str,
    kind: Kind,
    path: &str,
    forms: &[Vec<(&str, &str)>],
    allowed: &'static [u16],
) -> Vec<(Client, Option<Reply>)> {
    let barrier = Barrier::new(forms.len());
    thread::scope(|scope| {
        let senders: Vec<_> = forms
            .iter()
            .map(|fields| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut client = Client::new(address, worker);
                    let form = client.form(kind, path);
                    // Everyone waits here, also a sender whose form did not load.
                    barrier.wait();
                    let reply = form.and_then(|(token, _)| {
                        let mut all = vec![("csrf_token", token.as_str())];
                        all.extend_from_slice(fields);
                        client.post(kind, path, &all, allowed)
                    });
                    (client, reply)
                })
            })
            .collect();
        senders
            .into_iter()
            .map(|sender| sender.join().expect("a sender panicked"))
            .collect()
    })
}

/// Logins with the right password to a few accounts at random (so now and then to one
/// account from two threads at once), each from a new browser, then a page and a logout.
fn log_in_repeatedly(address: &str, n: usize, emails: &[String], until: Instant) -> Client {
    let mut client = Client::new(address, format!("login{n}"));
    let mut random = XorShift::from_clock();
    while Instant::now() < until {
        client.new_browser();
        let email = &emails[random.between(0, emails.len() as u64 - 1) as usize];
        if client
            .log_in(Kind::Login, email, GOOD_PASSWORD, &[303])
            .is_some_and(|reply| reply.status == 303)
        {
            client.submit(Kind::Login, "/cvs", "/logout", &[], &[303]);
        }
    }
    client
}

/// Wrong passwords for one account: first a burst of them at once (as a script would send
/// them), which blocks the account, then one at a time, wrong and right in turn. The burst
/// gets 422s (at least as many as the limit: the throttle counts a failure once it is decided)
/// or 429s; everything after it 429 with `Retry-After`, the right password included.
fn guess_passwords(address: &str, email: &str, until: Instant) -> Client {
    let mut client = Client::new(address, "guess");
    let guesses: Vec<String> = (0..BURST)
        .map(|n| format!("wrong password number {n}"))
        .collect();
    let forms: Vec<Vec<(&str, &str)>> = guesses
        .iter()
        .map(|guess| vec![("email", email), ("password", guess.as_str())])
        .collect();
    let burst = at_once(
        address,
        "guess",
        Kind::WrongGuessBurst,
        "/login",
        &forms,
        &[422, 429],
    );
    client.absorb(burst.into_iter().map(|(sender, _)| sender));
    for n in 0.. {
        if Instant::now() >= until {
            break;
        }
        client.new_browser();
        let password = if n % 2 == 0 {
            GOOD_PASSWORD.to_owned()
        } else {
            format!("another wrong password {n}")
        };
        client.log_in(Kind::WrongPassword, email, &password, &[429]);
        thread::sleep(Duration::from_millis(100));
    }
    client
}

/// Bursts of logins with the right password to one account from many browsers at once (a
/// user's devices all reconnecting): every one must get in.
fn log_in_in_bursts(address: &str, email: &str, until: Instant) -> Client {
    let mut client = Client::new(address, "burst");
    let forms = vec![vec![("email", email), ("password", GOOD_PASSWORD)]; BURST];
    while Instant::now() < until {
        let burst = at_once(address, "burst", Kind::LoginBurst, "/login", &forms, &[303]);
        client.absorb(burst.into_iter().map(|(sender, _)| sender));
        thread::sleep(Duration::from_millis(200));
    }
    client
}

/// Edits of a CV no one else edits: basics, title and new entries in turn, each from a freshly
/// loaded editor, so every one must be accepted (303).
fn edit_separately(address: &str, n: usize, browser: Browser, cv: Uuid, until: Instant) -> Client {
    let mut client = Client::new(address, format!("editor{n}"));
    client.browser = browser;
    let mut adds = [0; SECTIONS.len()];
    for i in 0.. {
        if Instant::now() >= until {
            break;
        }
        let (fewest, _) = adds
            .iter()
            .enumerate()
            .min_by_key(|(_, count)| **count)
            .expect("sections");
        let change = match i % 3 {
            0 => CvChange::Rename(format!("Separate CV {n} #{i}")),
            1 if adds[fewest] < ADDS_PER_SECTION => {
                adds[fewest] += 1;
                CvChange::Add {
                    section: SECTIONS[fewest].0,
                    field: SECTIONS[fewest].1,
                    value: format!("editor {n} entry {i}"),
                }
            }
            _ => CvChange::Basics(format!("Editor {n} #{i}")),
        };
        client.edit_cv(Kind::SeparateEdit, cv, &change, &[303]);
        if i % 10 == 9 {
            client.get(Kind::SeparateEdit, &format!("/cvs/{cv}"));
            client.get(Kind::SeparateEdit, &format!("/cvs/{cv}/history"));
        }
    }
    client
}

/// Edits of the shared CV from one of its owner's sessions: basics or a new entry, from the
/// editor as loaded just before. Another session may have saved in between: 303 or 409.
fn edit_shared(address: &str, n: usize, browser: Browser, cv: Uuid, until: Instant) -> Client {
    let mut client = Client::new(address, format!("sharer{n}"));
    client.browser = browser;
    let mut random = XorShift::from_clock();
    let mut adds = [0; SECTIONS.len()];
    for i in 0.. {
        if Instant::now() >= until {
            break;
        }
        // Half of the changes add an entry to a random section, half update the basics.
        let change = match random.between(0, SECTIONS.len() as u64 * 2 - 1) as usize {
            section if section < SECTIONS.len() && adds[section] < SHARED_ADDS_PER_SECTION => {
                adds[section] += 1;
                CvChange::Add {
                    section: SECTIONS[section].0,
                    field: SECTIONS[section].1,
                    value: format!("session {n} entry {i}"),
                }
            }
            _ => CvChange::Basics(format!("Session {n} #{i}")),
        };
        client.edit_cv(Kind::SharedEdit, cv, &change, &[303, 409]);
    }
    client
}

/// A superuser at work: deactivates and activates one account, promotes and demotes another,
/// tries to demote and deactivate themselves while they are the last superuser (409), archives
/// a CV from `/admin/cvs` that its owner then unarchives.
fn administer(
    address: &str,
    admin: Uuid,
    deactivation_target: Uuid,
    promotion_target: Uuid,
    (owner_browser, cv): (Browser, Uuid),
    until: Instant,
) -> Client {
    let kind = Kind::AdminAction;
    let mut client = Client::new(address, "admin");
    client.log_in(kind, "admin@example.com", GOOD_PASSWORD, &[303]);
    let mut owner = Client::new(address, "archivist");
    owner.browser = owner_browser;
    let (mut target_active, mut target_promoted, mut archived) = (true, false, false);
    for i in 0.. {
        if Instant::now() >= until {
            break;
        }
        match i % 4 {
            0 => {
                let page = format!("/admin/users/{deactivation_target}");
                let action = if target_active {
                    "deactivate"
                } else {
                    "activate"
                };
                let reply = client.submit(kind, &page, &format!("{page}/{action}"), &[], &[303]);
                target_active ^= reply.is_some_and(|reply| reply.status == 303);
            }
            1 => {
                let page = format!("/admin/users/{promotion_target}");
                let role = if target_promoted { "user" } else { "superuser" };
                let fields = [("role", role)];
                let reply = client.submit(kind, &page, &format!("{page}/role"), &fields, &[303]);
                target_promoted ^= reply.is_some_and(|reply| reply.status == 303);
            }
            // Only while no one else is a superuser: otherwise this would really demote.
            2 if !target_promoted => {
                let page = format!("/admin/users/{admin}");
                for (action, fields) in [
                    ("role", &[("role", "user"), ("confirm", "yes")][..]),
                    ("deactivate", &[("confirm", "yes")][..]),
                ] {
                    let reply =
                        client.submit(kind, &page, &format!("{page}/{action}"), fields, &[409]);
                    if reply.is_some_and(|reply| !reply.body.contains("last active superuser")) {
                        client
                            .problems
                            .push(format!("admin: a {action} 409 without the reason"));
                    }
                }
            }
            _ => {
                let reply = if archived {
                    let path = format!("/cvs/{cv}/unarchive");
                    owner.submit(kind, &format!("/cvs/{cv}"), &path, &[], &[303])
                } else {
                    let path = format!("/admin/cvs/{cv}/archive");
                    client.submit(kind, "/admin/cvs?q=Archived", &path, &[], &[303])
                };
                archived ^= reply.is_some_and(|reply| reply.status == 303);
            }
        }
    }
    client.absorb([owner]);
    client
}

/// A second superuser session reading every admin page in turn, and the shared CV read-only.
fn read_admin_pages(address: &str, shared_cv: Uuid, until: Instant) -> Client {
    let kind = Kind::AdminRead;
    let mut client = Client::new(address, "admin-reader");
    client.log_in(kind, "admin@example.com", GOOD_PASSWORD, &[303]);
    let pages = [
        "/admin".to_owned(),
        "/admin/analytics.json?days=90".to_owned(),
        "/admin/users".to_owned(),
        "/admin/users?q=FRESH".to_owned(),
        "/admin/users?role=superuser&active=true".to_owned(),
        "/admin/users?active=false&sort=last_login".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/audit?event_type=CvEntryAdded".to_owned(),
        format!("/admin/audit?aggregate_id={shared_cv}"),
        "/admin/audit/export.csv".to_owned(),
        "/admin/cvs".to_owned(),
        "/admin/cvs?q=shared".to_owned(),
        format!("/cvs/{shared_cv}"),
        format!("/cvs/{shared_cv}/history"),
    ];
    for page in pages.iter().cycle() {
        if Instant::now() >= until {
            break;
        }
        client.get(kind, page);
    }
    client
}

// ---------------------------------------------------------------------------------------------
// The checks afterwards.

/// Counts by kind and status, as one line.
fn summarise(exchanges: &[&Exchange]) -> String {
    let mut counts: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for exchange in exchanges {
        let status = match &exchange.result {
            Ok(answer) => answer.status.to_string(),
            Err(failure) => format!("{failure:?}"),
        };
        *counts
            .entry(exchange.kind)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, statuses)| {
            let statuses: Vec<String> = statuses
                .iter()
                .map(|(status, count)| format!("{status}×{count}"))
                .collect();
            format!("{kind:?} {}", statuses.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The guessed account: the burst of wrong passwords got 422 or 429, at least as many 422 as
/// the limit (a 429 means the limit was reached); every later attempt 429 with `Retry-After`.
fn check_throttling(exchanges: &[&Exchange]) {
    let posts = |kind: Kind| -> Vec<&Answer> {
        exchanges
            .iter()
            .filter(|e| e.kind == kind && e.method == "POST")
            .filter_map(|e| e.result.as_ref().ok())
            .collect()
    };
    let burst: Vec<u16> = posts(Kind::WrongGuessBurst)
        .iter()
        .map(|answer| answer.status)
        .collect();
    let failed = burst.iter().filter(|status| **status == 422).count();
    assert!(
        burst.len() == BURST && failed >= ACCOUNT_LIMIT,
        "{BURST} guesses at once: at least {ACCOUNT_LIMIT} × 422, the rest 429: {burst:?}"
    );
    let later = posts(Kind::WrongPassword);
    assert!(!later.is_empty(), "no attempt after the burst");
    assert!(
        later
            .iter()
            .all(|answer| answer.status == 429 && !answer.retry_after.is_empty()),
        "every attempt on the blocked account is refused with Retry-After: {:?}",
        later.iter().map(|answer| answer.status).collect::<Vec<_>>()
    );
}

/// One event of the log, with the request that caused it.
#[derive(Debug, sqlx::FromRow)]
struct LoggedEvent {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    request_id: String,
}

impl LoggedEvent {
    fn is_of_cv(&self, cv: Uuid) -> bool {
        self.aggregate_type == "Cv" && self.aggregate_id == cv.to_string()
    }
}

/// How many events the request should have recorded: one for every acknowledged change and
/// for every failed login that reached the account (the throttle refuses before it does);
/// none for a logout, a page, a stale or refused edit, or a lost registration race.
fn events_expected(exchange: &Exchange) -> i64 {
    match (exchange.method, exchange.path.as_str(), exchange.status()) {
        ("POST", "/logout", _) => 0,
        ("POST", _, Some(303)) => 1,
        ("POST", "/login", Some(422)) => 1,
        _ => 0,
    }
}

/// The event type a sign-up or login records, by its answer.
fn account_event(exchange: &Exchange) -> Option<&'static str> {
    match (exchange.path.as_str(), exchange.status()) {
        ("/register", Some(303)) => Some("UserRegistered"),
        ("/login", Some(303)) => Some("UserLoggedIn"),
        ("/login", Some(422)) => Some("UserLoginFailed"),
        _ => None,
    }
}

/// The event log holds exactly what the requests did, numbered without gaps; every 409 on the
/// shared CV is explained by an acknowledged edit that took the version it expected; the read
/// models are level with the log and equal a rebuild.
async fn check_log_and_read_models(
    pool: &SqlitePool,
    exchanges: &[&Exchange],
    setup_events: &BTreeMap<Uuid, i64>,
    shared_cv: Uuid,
) {
    let gaps: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, COUNT(*), MIN(sequence), MAX(sequence)
           FROM events GROUP BY aggregate_type, aggregate_id
         HAVING MIN(sequence) <> 1 OR MAX(sequence) <> COUNT(*)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        gaps.is_empty(),
        "(type, id, count, min, max) with gaps: {gaps:?}"
    );

    // Every event belongs to one request that should have caused it, and no request caused
    // more or fewer; create-superuser's one event is the only one from elsewhere.
    let recorded: Vec<LoggedEvent> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_type,
                json_extract(metadata, '$.request_id') AS request_id
           FROM events ORDER BY rowid",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut by_request: BTreeMap<&str, Vec<&LoggedEvent>> = BTreeMap::new();
    for event in &recorded {
        by_request
            .entry(event.request_id.as_str())
            .or_default()
            .push(event);
    }
    let mut mismatched = Vec::new();
    for exchange in exchanges {
        let events = by_request.remove(exchange.request_id()).unwrap_or_default();
        let wrong_type = account_event(exchange)
            .is_some_and(|expected| events.iter().any(|e| e.event_type != expected));
        if events.len() as i64 != events_expected(exchange) || wrong_type {
            mismatched.push(format!(
                "{}: {} {} {:?} → {events:?}",
                exchange.worker,
                exchange.method,
                exchange.path,
                exchange.status()
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "requests whose events are not what their answer said: {mismatched:#?}"
    );
    let elsewhere: Vec<_> = by_request.values().flatten().collect();
    assert!(
        elsewhere.len() == 1 && elsewhere[0].request_id.starts_with("cli-"),
        "events no request of the test caused: {elsewhere:?}"
    );

    // CV edits: an acknowledged one is the event right after the version it expected; a 409
    // expected version v while an acknowledged edit had already made v + 1.
    let event_at = |cv: Uuid, sequence: i64| {
        recorded
            .iter()
            .find(|e| e.is_of_cv(cv) && e.sequence == sequence)
    };
    let acknowledged: BTreeSet<&str> = exchanges
        .iter()
        .filter(|e| e.status() == Some(303))
        .map(|e| e.request_id())
        .collect();
    let mut conflicts = 0;
    for (cv, setup_sequence) in setup_events {
        let edits: Vec<&&Exchange> = exchanges
            .iter()
            .filter(|e| e.method == "POST" && e.path.starts_with(&format!("/cvs/{cv}/")))
            .collect();
        for edit in &edits {
            let expected = edit.expected_version.expect("edits carry a version") as i64;
            match edit.status() {
                Some(303) => {
                    let event = event_at(*cv, expected + 1);
                    assert!(
                        event.is_some_and(|e| e.request_id == edit.request_id()),
                        "the edit acknowledged at version {expected} of {cv} is not event {}",
                        expected + 1
                    );
                }
                Some(409) => {
                    conflicts += 1;
                    let event = event_at(*cv, expected + 1);
                    assert!(
                        event.is_some_and(|e| e.request_id != edit.request_id()
                            && acknowledged.contains(e.request_id.as_str())),
                        "a 409 at version {expected} of {cv} with no acknowledged edit making \
                         version {}: {event:?}",
                        expected + 1
                    );
                    assert!(
                        edit.current_version
                            .is_some_and(|now| now as i64 > expected),
                        "the 409 page names a version past {expected}: {:?}",
                        edit.current_version
                    );
                }
                other => panic!("an edit answered {other:?}"),
            }
        }
        let added = recorded
            .iter()
            .filter(|e| e.is_of_cv(*cv) && e.sequence > *setup_sequence)
            .count();
        let saved = edits.iter().filter(|e| e.status() == Some(303)).count();
        assert_eq!(added, saved, "CV {cv}: one event per acknowledged edit");
    }
    let shared_version = recorded.iter().filter(|e| e.is_of_cv(shared_cv)).count();
    eprintln!(
        "mixed load: the shared CV went from version {} to {shared_version}, {conflicts} stale \
         edits refused (409); {} events in the log",
        setup_events[&shared_cv],
        recorded.len()
    );
    assert!(
        conflicts > 0,
        "no edit of the shared CV was stale, so the 409 path was not exercised"
    );

    let projector = crate::helpers::projector_over(pool).await;
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        projector.checkpoint().await.unwrap(),
        head,
        "read models at the head"
    );
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(audited, recorded.len() as i64, "one audit row per event");
    let differences = projector.verify().await.unwrap();
    assert!(
        differences.is_empty(),
        "read models differ from a rebuild: {differences:?}"
    );
}

/// Under load every connection's page cache would fill with its own copy of the hot pages: the
/// server caps SQLite's memory in the whole process (`PRAGMA soft_heap_limit`) once it runs.
#[tokio::test]
async fn the_server_caps_sqlites_memory_for_every_connection() {
    let app = TestApp::spawn().await;
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(app.pool().acquire().await.unwrap());
    }
    for connection in &mut connections {
        let limit: i64 = sqlx::query_scalar("PRAGMA soft_heap_limit")
            .fetch_one(&mut **connection)
            .await
            .unwrap();
        assert_eq!(limit, projections::database::SERVER_SQLITE_HEAP);
    }
}
