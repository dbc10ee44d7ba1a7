//! Crash safety of the real binary: `kill -9` at random moments while writes stream in.
//!
//! The same data directory goes through many rounds of "start `cvm serve`, write over HTTP from
//! two threads, SIGKILL after a random delay". Every write the server acknowledged (303) is
//! remembered, as is every write whose connection was accepted but never answered (lost in
//! flight: it may or may not have been applied). After a last clean start (whose startup
//! catch-up brings the read models level with the log) the database file must pass
//! `PRAGMA integrity_check`, hold every acknowledged write, hold nothing half applied, number
//! every aggregate's events 1..=n without gaps, and have read models equal to a rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use domain::Section;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::helpers::{hidden_input, GOOD_PASSWORD};
use crate::real_server::{cvm, Browser, Failure, Reply, Server, XorShift};

/// Rounds of start / write / `kill -9`, whatever the time they take.
const MIN_ROUNDS: usize = 10;
/// Rounds never go beyond this many.
const MAX_ROUNDS: usize = 30;
/// After [`MIN_ROUNDS`], rounds continue only while the test is younger than this, so it stays
/// well under a minute on a slow machine (a debug server starts in a fraction of a second).
const ROUNDS_BUDGET: Duration = Duration::from_secs(20);
/// The kill comes this long (in milliseconds, drawn uniformly) after the server is ready.
const KILL_AFTER_MS: (u64, u64) = (20, 400);
/// A CV section holds at most 100 entries; a new CV is started before that.
const ADDS_PER_CV: usize = 90;

#[test]
fn acknowledged_writes_survive_kill_9_and_the_read_models_equal_a_rebuild() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut random = XorShift::from_clock();
    let mut owner = Owner::default();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut log = Vec::new();

    let mut round = 0;
    while round < MIN_ROUNDS || (round < MAX_ROUNDS && started.elapsed() < ROUNDS_BUDGET) {
        round += 1;
        let server = Server::start(dir.path());
        // Two writers at once: the owner's CV edits (cheap, many) and sign-ups (each hashes a
        // password, so each spends tens of milliseconds inside the server). Between them a
        // kill at a random moment usually finds a write in flight.
        let editor = {
            let (address, owner) = (server.address.clone(), owner.clone());
            thread::spawn(move || edit_cvs(&address, round, owner))
        };
        let registrar = {
            let address = server.address.clone();
            thread::spawn(move || register_users(&address, round))
        };
        thread::sleep(Duration::from_millis(
            random.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1),
        ));
        log.extend(server.kill_9());
        // With the server gone every request fails at once, so the writers end promptly.
        let (edited_owner, edits) = editor.join().expect("the editor thread");
        owner = edited_owner;
        attempts.extend(edits);
        attempts.extend(registrar.join().expect("the registrar thread"));
    }

    // Every write is valid and uncontested: anything but a 303 or a kill is a bug.
    let unexpected: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Answered(_) | Outcome::TimedOut))
        .collect();
    assert!(
        unexpected.is_empty(),
        "every write is acknowledged or cut off by the kill; these were not: {unexpected:#?}"
    );

    // A last clean start: its startup catch-up applies whatever the last kill left unprojected.
    // Then the running app itself must show acknowledged writes of earlier rounds.
    let server = Server::start(dir.path());
    let owner_email = owner
        .email
        .clone()
        .expect("some round registered the CV owner");
    let mut browser = Browser::new(&server.address);
    let login = log_in(&mut browser, &owner_email).expect("the restarted server answers");
    assert_eq!(login.status, 303, "the owner logs in: {}", login.body);
    if let Some(last) = attempts
        .iter()
        .rev()
        .find_map(|a| match (&a.write, a.outcome) {
            (Change::AddSkill { cv, name }, Outcome::Acknowledged) => Some((*cv, name.clone())),
            _ => None,
        })
    {
        let page = browser
            .get(&format!("/cvs/{}", last.0))
            .expect("the restarted server answers");
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(&last.1), "the CV page shows {}", last.1);
    }
    log.extend(server.terminate());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let pool = projections::database::open(&dir.path().join("cvm.db"))
            .await
            .unwrap();
        let report = check_database(&pool, &attempts).await;
        pool.close().await;
        report
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

    let errors: Vec<&String> = log
        .iter()
        .filter(|line| line.contains(" ERROR ") || line.contains("panicked"))
        .collect();
    assert!(errors.is_empty(), "the server logged errors: {errors:#?}");
    let lost = count(&attempts, Outcome::Lost);
    assert!(
        lost > 0,
        "no kill landed while a write was in flight, so the test proved little"
    );

    let cut_rounds: BTreeSet<usize> = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Lost)
        .map(|a| a.round)
        .collect();
    // A start that found events past the checkpoint: a kill fell between append and projection.
    let catch_ups = log.iter().filter(|line| line.contains("caught up")).count();
    eprintln!(
        "crash test: {round} rounds in {:.1} s, {} of them killed with a write in flight, \
         {catch_ups} restarts caught up; writes acknowledged {}, lost in flight {lost} \
         ({} of them applied), never sent {}; {} orphaned claims",
        started.elapsed().as_secs_f64(),
        cut_rounds.len(),
        count(&attempts, Outcome::Acknowledged),
        report.lost_but_applied,
        count(&attempts, Outcome::Refused),
        report.orphan_claims,
    );

    // A kill between claiming a name and recording the registration must not block the name
    // for good: any start releases claims that have no account once they are 5 s old.
    std::thread::sleep(Duration::from_secs(6));
    let restart = cvm(dir.path())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(restart.status.success());
    let orphans = runtime.block_on(async {
        let pool = projections::database::open(&dir.path().join("cvm.db"))
            .await
            .unwrap();
        let orphans = scalar(
            &pool,
            "SELECT COUNT(*) FROM claims WHERE owner_id NOT IN
               (SELECT aggregate_id FROM events WHERE event_type = 'UserRegistered')",
        )
        .await;
        pool.close().await;
        orphans
    });
    assert_eq!(
        orphans, 0,
        "names of unfinished sign-ups are released at the next start"
    );
}

fn count(attempts: &[Attempt], outcome: Outcome) -> usize {
    attempts.iter().filter(|a| a.outcome == outcome).count()
}

// ---------------------------------------------------------------------------------------------
// What the writers did.

/// One write the test tried.
#[derive(Debug, Clone)]
enum Change {
    /// `POST /register` as `<username>` with `<username>@example.com`.
    Register { username: String },
    /// `POST /login` as the CV owner.
    LogIn { email: String },
    /// `POST /cvs/new`; the id is known once acknowledged (from `Location`).
    CreateCv { title: String, id: Option<Uuid> },
    /// `POST /cvs/{cv}/sections/skills` with a skill named `name`.
    AddSkill { cv: Uuid, name: String },
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 303: the server says it is recorded.
    Acknowledged,
    /// The connection was accepted and the request sent, but no complete response came back:
    /// the server died with the write in flight. It may or may not have been applied.
    Lost,
    /// No connection: the server was already dead, the request never reached it.
    Refused,
    /// A response other than 303 (a bug here: every write is valid and uncontested).
    Answered(u16),
    /// No response within the client's I/O timeout from a live server.
    TimedOut,
}

#[derive(Debug, Clone)]
struct Attempt {
    round: usize,
    write: Change,
    outcome: Outcome,
}

/// What carries over from round to round for the owner of the CVs.
#[derive(Debug, Clone, Default)]
struct Owner {
    /// Set once a registration of the owner was acknowledged.
    email: Option<String>,
    /// The CV being filled and how many skills were tried on it (acknowledged or not: each
    /// try adds at most one entry, so this bounds the entry count).
    cv: Option<(Uuid, usize)>,
}

/// The owner's writes for one round: register (until acknowledged once) or log in, then add
/// skills to a CV (a new one when there is none or it is nearly full), until the server dies.
fn edit_cvs(address: &str, round: usize, mut owner: Owner) -> (Owner, Vec<Attempt>) {
    let mut attempts = Vec::new();
    let mut browser = Browser::new(address);
    let mut record = |write: Change, result: &Result<Reply, Failure>| {
        let outcome = outcome(result);
        attempts.push(Attempt {
            round,
            write,
            outcome,
        });
        outcome
    };

    let login = match owner.email.clone() {
        None => {
            let username = format!("owner-{round}");
            let result = register(&mut browser, &username);
            let outcome = record(Change::Register { username }, &result);
            if outcome == Outcome::Acknowledged {
                owner.email = Some(format!("owner-{round}@example.com"));
            }
            outcome
        }
        Some(email) => {
            let result = log_in(&mut browser, &email);
            record(Change::LogIn { email }, &result)
        }
    };
    if login != Outcome::Acknowledged {
        return (owner, attempts);
    }

    for n in 1.. {
        let (cv, tried) = match owner.cv {
            Some((cv, tried)) if tried < ADDS_PER_CV => (cv, tried),
            _ => {
                let title = format!("crash-{round}-{n}");
                let result = browser.form_token("/cvs/new").and_then(|(token, _)| {
                    browser.post("/cvs/new", &[("csrf_token", &token), ("title", &title)])
                });
                let id = result.as_ref().ok().and_then(|reply| {
                    let rest = reply.location.strip_prefix("/cvs/")?;
                    Uuid::parse_str(rest.strip_suffix("/edit")?).ok()
                });
                if record(Change::CreateCv { title, id }, &result) != Outcome::Acknowledged {
                    break;
                }
                owner.cv = Some((id.expect("a created CV redirects to its editor"), 0));
                continue;
            }
        };
        // The version comes from the editor, as a browser's form would carry it: a write
        // applied but unacknowledged before an earlier kill has moved it on.
        let edit = format!("/cvs/{cv}/edit");
        let (token, version) = match browser.form_token(&edit) {
            Ok((token, page)) => match hidden_input(&page, "expected_version") {
                Some(version) => (token, version),
                None => panic!("the editor carries expected_version: {page}"),
            },
            Err(_) => break,
        };
        let name = format!("skill-{round}-{n}");
        let result = browser.post(
            &format!("/cvs/{cv}/sections/skills"),
            &[
                ("csrf_token", &token),
                ("expected_version", &version),
                ("name", &name),
            ],
        );
        owner.cv = Some((cv, tried + 1));
        if record(Change::AddSkill { cv, name }, &result) != Outcome::Acknowledged {
            break;
        }
    }
    (owner, attempts)
}

/// Sign-ups of new users, each from a fresh browser, until the server dies.
fn register_users(address: &str, round: usize) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for n in 1.. {
        let username = format!("user-{round}-{n}");
        let result = register(&mut Browser::new(address), &username);
        let outcome = outcome(&result);
        attempts.push(Attempt {
            round,
            write: Change::Register { username },
            outcome,
        });
        if outcome != Outcome::Acknowledged {
            break;
        }
    }
    attempts
}

fn outcome(result: &Result<Reply, Failure>) -> Outcome {
    match result {
        Ok(reply) if reply.status == 303 => Outcome::Acknowledged,
        Ok(reply) => Outcome::Answered(reply.status),
        Err(Failure::Lost) => Outcome::Lost,
        Err(Failure::Refused) => Outcome::Refused,
        Err(Failure::TimedOut) => Outcome::TimedOut,
    }
}

fn register(browser: &mut Browser, username: &str) -> Result<Reply, Failure> {
    let (token, _) = browser.form_token("/register")?;
    let email = format!("{username}@example.com");
    browser.post(
        "/register",
        &[
            ("csrf_token", &token),
            ("username", username),
            ("email", &email),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ],
    )
}

fn log_in(browser: &mut Browser, email: &str) -> Result<Reply, Failure> {
    let (token, _) = browser.form_token("/login")?;
    browser.post(
        "/login",
        &[
            ("csrf_token", &token),
            ("email", email),
            ("password", GOOD_PASSWORD),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// The checks on the database file.

/// Figures for the summary line.
struct Report {
    /// Writes lost in flight that turned out to be recorded.
    lost_but_applied: usize,
    /// Claims on a username or email without a registration.
    orphan_claims: usize,
}

async fn check_database(pool: &SqlitePool, attempts: &[Attempt]) -> Report {
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");

    // Gapless: each aggregate's events are numbered 1..=n (the primary key rules out twins).
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

    // The startup catch-up brought the read models to the head of the log; one audit row
    // per event shows each event was applied exactly once.
    let (head, events): (i64, i64) =
        sqlx::query_as("SELECT COALESCE(MAX(rowid), 0), COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .unwrap();
    let checkpoint = crate::helpers::projector_over(pool)
        .await
        .checkpoint()
        .await
        .unwrap();
    assert_eq!(checkpoint, head, "the checkpoint is at the head of the log");
    let audited: i64 = scalar(pool, "SELECT COUNT(*) FROM audit_log").await;
    assert_eq!(audited, events, "one audit row per event");

    let lost_but_applied = check_users(pool, attempts).await;
    let lost_but_applied = lost_but_applied + check_cvs(pool, attempts).await;
    let orphan_claims = check_claims(pool, attempts).await;

    let differences = crate::helpers::projector_over(pool)
        .await
        .verify()
        .await
        .unwrap();
    assert!(
        differences.is_empty(),
        "read models differ from a rebuild: {differences:?}"
    );
    Report {
        lost_but_applied,
        orphan_claims,
    }
}

/// Every registration event is whole (user, profile, both claims), every acknowledged one is
/// there, none that never reached the server is; returns how many lost ones were applied.
async fn check_users(pool: &SqlitePool, attempts: &[Attempt]) -> usize {
    let registered: Vec<(String, String, String)> = opened_events(pool)
        .await
        .into_iter()
        .filter(|event| event.event_type == "UserRegistered")
        .map(|event| {
            let text = |field: &str| {
                event.payload["Registered"][field]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (event.aggregate_id.clone(), text("username"), text("email"))
        })
        .collect();
    for (id, username, email) in &registered {
        let users: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE id = ? AND username = ? AND email = ?",
        )
        .bind(id)
        .bind(username)
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap();
        let profiles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM profiles WHERE user_id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        let claims: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM claims WHERE owner_id = ?
                AND ((kind = 'username' AND value = lower(?)) OR (kind = 'email' AND value = ?))",
        )
        .bind(id)
        .bind(username)
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            (users, profiles, claims),
            (1, 1, 2),
            "registration of {username} is whole: one user, one profile, two claims"
        );
    }
    let users: i64 = scalar(pool, "SELECT COUNT(*) FROM users").await;
    let profiles: i64 = scalar(pool, "SELECT COUNT(*) FROM profiles").await;
    assert_eq!(
        (users, profiles),
        (registered.len() as i64, registered.len() as i64),
        "no user or profile without a registration"
    );

    let names: BTreeSet<&str> = registered.iter().map(|(_, u, _)| u.as_str()).collect();
    let mut lost_but_applied = 0;
    for attempt in attempts {
        let Change::Register { username } = &attempt.write else {
            continue;
        };
        let present = names.contains(username.as_str());
        match attempt.outcome {
            Outcome::Acknowledged => assert!(present, "acknowledged sign-up {username} is lost"),
            Outcome::Refused => assert!(!present, "{username} never reached the server"),
            Outcome::Lost => lost_but_applied += usize::from(present),
            _ => {}
        }
    }

    // Each acknowledged login is an event (a lost one may be too).
    let mut logins: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for attempt in attempts {
        if let Change::LogIn { email } = &attempt.write {
            let entry = logins.entry(email).or_default();
            match attempt.outcome {
                Outcome::Acknowledged => entry.0 += 1,
                Outcome::Lost => entry.1 += 1,
                _ => {}
            }
        }
    }
    for (email, (acknowledged, lost)) in logins {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE event_type = 'UserLoggedIn'
                AND aggregate_id = (SELECT id FROM users WHERE email = ?)",
        )
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap();
        // The final check-up login of the test itself is one more.
        assert!(
            (acknowledged + 1..=acknowledged + 1 + lost).contains(&recorded),
            "{email}: {acknowledged} logins acknowledged, {lost} lost, {recorded} recorded"
        );
        lost_but_applied += (recorded - acknowledged - 1) as usize;
    }
    lost_but_applied
}

/// Every CV is whole in both read models, holds every acknowledged skill exactly once and
/// nothing that never reached the server; returns how many lost writes were applied.
async fn check_cvs(pool: &SqlitePool, attempts: &[Attempt]) -> usize {
    let created: Vec<(String, String)> = opened_events(pool)
        .await
        .into_iter()
        .filter(|event| event.event_type == "CvCreated")
        .map(|event| {
            let title = event.payload["Created"]["title"]
                .as_str()
                .unwrap()
                .to_owned();
            (event.aggregate_id, title)
        })
        .collect();
    let mut skills: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (id, _) in &created {
        let (events, added): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(event_type = 'CvEntryAdded'), 0)
               FROM events WHERE aggregate_type = 'Cv' AND aggregate_id = ?",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        let versions: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT cvs.version, cv_documents.version
               FROM cvs JOIN cv_documents ON cv_documents.cv_id = cvs.id WHERE cvs.id = ?",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(versions, [(events, events)], "CV {id} is at its last event");
        let uuid = Uuid::parse_str(id).unwrap();
        let document = projections::cvs::document(pool, uuid)
            .await
            .unwrap()
            .expect("a created CV has a document");
        let names: Vec<String> = document
            .content
            .entries(Section::Skills)
            .iter()
            .map(|entry| entry.text("name").to_owned())
            .collect();
        assert_eq!(names.len() as i64, added, "CV {id}: one skill per event");
        let distinct: BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "CV {id}: a skill twice");
        skills.insert(uuid, names);
    }
    let cvs: i64 = scalar(pool, "SELECT COUNT(*) FROM cvs").await;
    assert_eq!(cvs, created.len() as i64, "no CV without a creation");

    let titles: BTreeSet<&str> = created.iter().map(|(_, t)| t.as_str()).collect();
    let mut lost_but_applied = 0;
    for attempt in attempts {
        let (present, what) = match &attempt.write {
            Change::CreateCv { title, id } => {
                let present = titles.contains(title.as_str());
                if let Some(id) = id {
                    assert!(skills.contains_key(id), "acknowledged CV {id} is lost");
                }
                (present, title)
            }
            Change::AddSkill { cv, name } => {
                let present = skills.get(cv).is_some_and(|names| names.contains(name));
                (present, name)
            }
            _ => continue,
        };
        match attempt.outcome {
            Outcome::Acknowledged => assert!(present, "acknowledged write {what} is lost"),
            Outcome::Refused => assert!(!present, "{what} never reached the server"),
            Outcome::Lost => lost_but_applied += usize::from(present),
            _ => {}
        }
    }
    lost_but_applied
}

/// A registration claims the username and the email before its event is stored, so a kill in
/// between leaves claims that no account owns until the next start releases them (once they
/// are 5 s old). They may only come from sign-ups cut off by a kill; returns how many there are.
async fn check_claims(pool: &SqlitePool, attempts: &[Attempt]) -> usize {
    let orphans: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, value FROM claims WHERE owner_id NOT IN
           (SELECT aggregate_id FROM events WHERE event_type = 'UserRegistered')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let cut_off: BTreeSet<String> = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Lost)
        .filter_map(|a| match &a.write {
            Change::Register { username } => Some(username.clone()),
            _ => None,
        })
        .collect();
    for (kind, value) in &orphans {
        let username = value.strip_suffix("@example.com").unwrap_or(value);
        assert!(
            cut_off.contains(username),
            "a {kind} claim on {value} has no account and no sign-up was cut off for it"
        );
    }
    orphans.len()
}

/// The whole log as the application reads it (personal data is sealed in the table itself).
async fn opened_events(pool: &SqlitePool) -> Vec<projections::StoredEvent> {
    crate::helpers::projector_over(pool)
        .await
        .log()
        .read_after(0, i64::MAX)
        .await
        .unwrap()
}

async fn scalar(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
