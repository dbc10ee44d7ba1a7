//! Personal data: crypto-shredded erasure, the data export, master-key rotation, and the
//! upgrade of a database from before encryption (issue "Privacy").
//!
//! The proofs search bytes, not rows: after an erasure, none of the person's strings may appear
//! in any file under the data directory — database, write-ahead log, sessions, pictures, outbox
//! — nor in the log read back through the application, nor after a full rebuild. The same
//! search finds another person's data (and the erased person's before the erasure), so it is
//! not blind.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::Value;

use crate::helpers::{Browser, TestApp, GOOD_PASSWORD};

/// What Zaphod types into the application: every string must be gone after his erasure.
const ZAPHOD: Person = Person {
    username: "zaphodxq",
    email: "zaphod.unique@example.com",
    full_name: "Zaphod Quintillion Beeblebrox",
    phone: "+44 7700 900871",
    headline: "Two-headed presidentqq",
    bio: "Stole the Heart of Gold zqbio",
    website: "https://zaphod-xq.example.com/",
    website_host: "zaphod-xq.example.com",
    cv_title: "Galactic Presidentqq CV",
    cv_name: "Zaphod Cvname Beeblebrox",
    cv_summary: "Improbability drive enthusiastqq",
    work_name: "Heart of Gold Employerqq",
    work_highlight: "Escaped Magrathea unscathedqq",
};

/// Another person, who must be left whole.
const TRILLIAN: Person = Person {
    username: "trillianxq",
    email: "trillian.unique@example.com",
    full_name: "Tricia Quintillion McMillan",
    phone: "+44 7700 900872",
    headline: "Astrophysicistqq",
    bio: "Met Zaphod at a party tqbio",
    website: "https://trillian-xq.example.com/",
    website_host: "trillian-xq.example.com",
    cv_title: "Astrophysics Qq CV",
    cv_name: "Tricia Cvname McMillan",
    cv_summary: "Mathematician and astrophysicistqq",
    work_name: "Islington Observatoryqq",
    work_highlight: "Charted the Horsehead Nebulaqq",
};

struct Person {
    username: &'static str,
    email: &'static str,
    full_name: &'static str,
    phone: &'static str,
    headline: &'static str,
    bio: &'static str,
    website: &'static str,
    website_host: &'static str,
    cv_title: &'static str,
    cv_name: &'static str,
    cv_summary: &'static str,
    work_name: &'static str,
    work_highlight: &'static str,
}

impl Person {
    /// Every string the person entered, each distinctive enough to be searched for.
    fn strings(&self) -> Vec<&'static str> {
        vec![
            self.username,
            self.email,
            self.full_name,
            self.phone,
            self.headline,
            self.bio,
            self.website_host,
            self.cv_title,
            self.cv_name,
            self.cv_summary,
            self.work_name,
            self.work_highlight,
        ]
    }
}

/// A small PNG.
fn picture() -> Vec<u8> {
    let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut bytes, ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// Registers `person` in `browser`, fills their profile, picture and a CV with a work entry,
/// asks for a password reset (a mail in the outbox) and logs in once more. Returns the CV's id.
async fn move_in(app: &TestApp, browser: &mut Browser, person: &Person) -> String {
    let response = browser
        .register(person.username, person.email, GOOD_PASSWORD)
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let profile = browser
        .post_form(
            "/profile",
            &[
                ("full_name", person.full_name),
                ("headline", person.headline),
                ("phone", person.phone),
                ("location", "Betelgeuse"),
                ("website", person.website),
                ("bio", person.bio),
            ],
        )
        .await;
    assert_eq!(profile.status, StatusCode::SEE_OTHER, "{}", profile.body);
    let upload = browser
        .upload(
            "/profile/avatar",
            "avatar",
            "me.png",
            "image/png",
            &picture(),
        )
        .await;
    assert_eq!(upload.status, StatusCode::SEE_OTHER, "{}", upload.body);

    let created = browser
        .post_form("/cvs/new", &[("title", person.cv_title)])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let id = created
        .location()
        .trim_start_matches("/cvs/")
        .trim_end_matches("/edit")
        .to_owned();
    let basics = browser
        .post_form(
            &format!("/cvs/{id}/basics"),
            &[
                ("expected_version", "1"),
                ("name", person.cv_name),
                ("email", person.email),
                ("phone", person.phone),
                ("summary", person.cv_summary),
            ],
        )
        .await;
    assert_eq!(basics.status, StatusCode::SEE_OTHER, "{}", basics.body);
    let work = browser
        .post_form(
            &format!("/cvs/{id}/sections/work"),
            &[
                ("expected_version", "2"),
                ("name", person.work_name),
                ("position", "President"),
                ("startDate", "2001-04"),
                ("highlights", person.work_highlight),
            ],
        )
        .await;
    assert_eq!(work.status, StatusCode::SEE_OTHER, "{}", work.body);

    browser.logout().await;
    let mut stranger = app.new_browser();
    stranger
        .post_form("/password-reset", &[("email", person.email)])
        .await;
    crate::helpers::outbox(app, 1, std::time::Duration::from_secs(5)).await;
    let login = browser.login(person.email, GOOD_PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    id
}

/// Every file under `dir` whose bytes contain `needle` (ASCII case-insensitively).
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let needle = needle.to_ascii_lowercase().into_bytes();
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            let bytes = bytes.to_ascii_lowercase();
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// Each of `strings` that some file under `dir` contains, with those files.
fn traces(dir: &Path, strings: &[&str]) -> BTreeMap<String, Vec<PathBuf>> {
    strings
        .iter()
        .map(|text| (text.to_string(), files_containing(dir, text)))
        .filter(|(_, files)| !files.is_empty())
        .collect()
}

fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip archive");
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        files.insert(file.name().to_owned(), content);
    }
    files
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

async fn verify_clean(app: &TestApp) {
    let differences = app.core.projector.verify().await.unwrap();
    assert!(
        differences.is_empty(),
        "read models differ from a rebuild: {differences:?}"
    );
}

#[tokio::test]
async fn erasure_leaves_nothing_of_the_person_and_the_log_keeps_the_facts() {
    // Arrange: Zaphod and Trillian, each with profile, picture, CV, mail; an admin watching.
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let mut zaphod = app.new_browser();
    let cv = move_in(&app, &mut zaphod, &ZAPHOD).await;
    let mut trillian = app.new_browser();
    let trillian_cv = move_in(&app, &mut trillian, &TRILLIAN).await;
    let zaphod_id = app.user_id(ZAPHOD.email).await;
    let zaphod_events = app
        .events()
        .await
        .into_iter()
        .filter(|event| event.aggregate_id == zaphod_id.to_string() || event.aggregate_id == cv)
        .count();
    let before = app.get("/admin/analytics.json").await;
    let totals_before = json(&before.bytes)["totals"].clone();
    cvm::privacy::truncate_write_ahead_log(app.pool()).await;
    // The search works: before the erasure it finds Zaphod's data (in the read models).
    assert!(
        traces(app.data_dir(), &ZAPHOD.strings()).len() >= 8,
        "the search finds the data before erasure: {:?}",
        traces(app.data_dir(), &ZAPHOD.strings())
    );

    // Act: Zaphod deletes his account with his password.
    let wrong = zaphod
        .post_form("/account/delete", &[("password", "not my password at all")])
        .await;
    let erased = zaphod
        .post_form("/account/delete", &[("password", GOOD_PASSWORD)])
        .await;

    // Assert: refused with a wrong password, done with the right one.
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("That is not your password."));
    assert_eq!(erased.status, StatusCode::SEE_OTHER);
    assert_eq!(erased.location(), "/");
    assert!(zaphod.get("/").await.body.contains("have been erased"));
    assert_eq!(
        zaphod.get("/cvs").await.status,
        StatusCode::SEE_OTHER,
        "logged out"
    );

    // No byte of Zaphod in any file of the data directory.
    let left = traces(app.data_dir(), &ZAPHOD.strings());
    assert!(left.is_empty(), "traces of the erased person: {left:#?}");
    assert!(!app
        .data_dir()
        .join("avatars")
        .read_dir()
        .unwrap()
        .any(|entry| entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(&zaphod_id.to_string())));
    // …while Trillian's data is all there.
    let kept = traces(app.data_dir(), &TRILLIAN.strings());
    assert_eq!(kept.len(), TRILLIAN.strings().len(), "{kept:#?}");

    // The log, read back through the application, holds no personal data of his either, but
    // every one of his events is still there, marked as an erased person's.
    let events = app.events().await;
    let his: Vec<_> = events
        .iter()
        .filter(|event| event.aggregate_id == zaphod_id.to_string() || event.aggregate_id == cv)
        .collect();
    assert_eq!(
        his.len(),
        zaphod_events + 1,
        "every event kept, plus the erasure"
    );
    assert!(his.iter().all(|event| event.erased));
    assert_eq!(his.last().unwrap().event_type, "UserErased");
    for event in &his {
        let text = format!("{} {}", event.payload, event.metadata);
        for string in ZAPHOD.strings() {
            assert!(!text.contains(string), "{string} in {text}");
        }
        assert!(!text.contains("192.0.2.10"), "no IP address of his: {text}");
    }
    // Trillian's events open as before.
    let hers = events
        .iter()
        .find(|event| event.event_type == "UserProfileUpdated" && !event.erased)
        .expect("Trillian's profile event");
    assert_eq!(
        hers.payload["ProfileUpdated"]["changes"]["full_name"],
        TRILLIAN.full_name
    );
    assert_eq!(
        trillian.get(&format!("/cvs/{trillian_cv}")).await.status,
        StatusCode::OK
    );

    // The audit trail lists his events, by type and time, as an erased user's.
    let trail = app
        .get(&format!("/admin/audit?aggregate_id={zaphod_id}"))
        .await;
    assert_eq!(trail.status, StatusCode::OK);
    assert!(trail.body.contains("erased user"), "{}", trail.body);
    for event_type in [
        "UserRegistered",
        "UserProfileUpdated",
        "UserAvatarChanged",
        "UserErased",
    ] {
        assert!(trail.body.contains(event_type), "{event_type} listed");
    }
    for string in ZAPHOD.strings() {
        assert!(!trail.body.contains(string), "{string} shown in the trail");
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE aggregate_id IN (?, ?)")
            .bind(zaphod_id.to_string())
            .bind(&cv)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(rows as usize, zaphod_events + 1);
    assert_eq!(
        app.get(&format!("/admin/users/{zaphod_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/cvs/{cv}")).await.status,
        StatusCode::NOT_FOUND
    );

    // The totals lost one user and one CV; the per-day figures kept what happened.
    let after = json(&app.get("/admin/analytics.json").await.bytes);
    assert_eq!(
        after["totals"]["users"],
        totals_before["users"].as_i64().unwrap() - 1
    );
    assert_eq!(
        after["totals"]["cvs"],
        totals_before["cvs"].as_i64().unwrap() - 1
    );
    assert_eq!(after["series"], json(&before.bytes)["series"]);

    // A full rebuild gives the same read models, and still nothing of him.
    verify_clean(&app).await;
    app.core.projector.rebuild(|_| {}).await.unwrap();
    verify_clean(&app).await;
    cvm::privacy::truncate_write_ahead_log(app.pool()).await;
    let left = traces(app.data_dir(), &ZAPHOD.strings());
    assert!(left.is_empty(), "traces after a rebuild: {left:#?}");

    // His username and email are free again.
    let mut newcomer = app.new_browser();
    let again = newcomer
        .register(ZAPHOD.username, ZAPHOD.email, GOOD_PASSWORD)
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
}

#[tokio::test]
async fn the_export_holds_everything_the_user_entered_and_nothing_of_anyone_else() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let mut zaphod = app.new_browser();
    let cv = move_in(&app, &mut zaphod, &ZAPHOD).await;
    let mut trillian = app.new_browser();
    move_in(&app, &mut trillian, &TRILLIAN).await;
    let zaphod_id = app.user_id(ZAPHOD.email).await;
    // A superuser acts on his account, so his trail holds someone else's action.
    app.post_form(&format!("/admin/users/{zaphod_id}/deactivate"), &[])
        .await;
    app.post_form(&format!("/admin/users/{zaphod_id}/activate"), &[])
        .await;
    zaphod.login(ZAPHOD.email, GOOD_PASSWORD).await;

    let download = zaphod.get("/account/data").await;

    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.headers["content-type"], "application/zip");
    assert!(download.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("cv-manager-zaphodxq-"));
    let files = unzip(&download.bytes);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "README.txt",
            "account.json",
            "activity.json",
            &format!("cvs/{cv}.json"),
            "picture.jpg"
        ]
    );
    // Every profile field as entered.
    let account = json(&files["account.json"]);
    assert_eq!(account["account"]["username"], ZAPHOD.username);
    assert_eq!(account["account"]["email"], ZAPHOD.email);
    for (field, value) in [
        ("full_name", ZAPHOD.full_name),
        ("headline", ZAPHOD.headline),
        ("phone", ZAPHOD.phone),
        ("location", "Betelgeuse"),
        ("website", ZAPHOD.website),
        ("bio", ZAPHOD.bio),
    ] {
        assert_eq!(account["profile"][field], value, "{field}");
    }
    assert_eq!(account["cvs"][0]["title"], ZAPHOD.cv_title);
    // The CV exactly as its own JSON Resume export, and the picture as served.
    let exported = zaphod.get(&format!("/cvs/{cv}/export.json")).await;
    assert_eq!(
        json(&files[&format!("cvs/{cv}.json")]),
        json(&exported.bytes)
    );
    let served = zaphod.get(&format!("/users/{zaphod_id}/avatar")).await;
    assert_eq!(files["picture.jpg"], served.bytes);
    // His own history: registration, profile, picture, CV edits, and the admin's actions
    // without naming the admin.
    let activity = json(&files["activity.json"]);
    let types: Vec<&str> = activity
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "UserRegistered",
        "UserProfileUpdated",
        "UserAvatarChanged",
        "CvCreated",
        "CvBasicsUpdated",
        "CvEntryAdded",
        "UserDeactivated",
        "UserActivated",
        "UserLoggedIn",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let by_admin = activity
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["event_type"] == "UserDeactivated")
        .unwrap();
    assert_eq!(by_admin["by"], "an administrator");
    assert!(by_admin["ip"].is_null());

    // Nothing of anyone else: not Trillian, not the admin's name, address or id.
    let admin_id = app.user_id("admin@example.com").await.to_string();
    let everything: String = files
        .values()
        .map(|bytes| String::from_utf8_lossy(bytes).to_lowercase())
        .collect();
    for other in TRILLIAN
        .strings()
        .into_iter()
        .chain(["admin@example.com", admin_id.as_str()])
    {
        assert!(
            !everything.contains(&other.to_lowercase()),
            "{other} in the export"
        );
    }

    // A superuser gets the same archive for him.
    let for_admin = app.get(&format!("/admin/users/{zaphod_id}/data")).await;
    assert_eq!(for_admin.status, StatusCode::OK);
    let admin_files = unzip(&for_admin.bytes);
    assert_eq!(
        admin_files.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        json(&admin_files["account.json"])["profile"],
        account["profile"]
    );
    // …and nobody else does.
    assert_eq!(
        trillian
            .get(&format!("/admin/users/{zaphod_id}/data"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_superuser_erases_an_account_but_never_the_last_superuser() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let admin_id = app.user_id("admin@example.com").await;
    let mut zaphod = app.new_browser();
    move_in(&app, &mut zaphod, &ZAPHOD).await;
    let zaphod_id = app.user_id(ZAPHOD.email).await;

    let unconfirmed = app
        .post_form(&format!("/admin/users/{zaphod_id}/erase"), &[])
        .await;
    let erased = app
        .post_form(
            &format!("/admin/users/{zaphod_id}/erase"),
            &[("confirm", "yes")],
        )
        .await;
    let last = app
        .post_form(
            &format!("/admin/users/{admin_id}/erase"),
            &[("confirm", "yes")],
        )
        .await;
    let last_self = app
        .post_form("/account/delete", &[("password", GOOD_PASSWORD)])
        .await;

    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("Tick the box"));
    assert_eq!(erased.status, StatusCode::SEE_OTHER);
    assert_eq!(erased.location(), "/admin/users");
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert_eq!(last_self.status, StatusCode::CONFLICT);
    assert!(last_self.body.contains("last active superuser"));
    // His other session ended with him.
    assert_eq!(zaphod.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        zaphod.login(ZAPHOD.email, GOOD_PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The erasure names the admin as actor; the admin's page still works.
    let erasure: Vec<_> = app
        .events()
        .await
        .into_iter()
        .filter(|event| event.event_type == "UserErased")
        .collect();
    assert_eq!(erasure.len(), 1);
    assert_eq!(erasure[0].metadata["actor"], admin_id.to_string());
    assert_eq!(app.get("/admin").await.status, StatusCode::OK);
    verify_clean(&app).await;
}

#[tokio::test]
async fn the_cli_exports_and_erases_while_the_server_runs() {
    let mut app = TestApp::spawn().await;
    app.logged_in_superuser().await;
    let mut zaphod = app.new_browser();
    move_in(&app, &mut zaphod, &ZAPHOD).await;
    let zaphod_id = app.user_id(ZAPHOD.email).await;
    let archive = app.data_dir().join("export.zip");

    let export = cvm(app.data_dir())
        .args(["export-user", "--user", ZAPHOD.email, "--output"])
        .arg(&archive)
        .output()
        .unwrap();
    let refused = cvm(app.data_dir())
        .args(["erase-user", "--user", &zaphod_id.to_string()])
        .output()
        .unwrap();
    let erase = cvm(app.data_dir())
        .args(["erase-user", "--user", &zaphod_id.to_string(), "--yes"])
        .output()
        .unwrap();

    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stdout)
    );
    let files = unzip(&std::fs::read(&archive).unwrap());
    assert_eq!(
        json(&files["account.json"])["profile"]["phone"],
        ZAPHOD.phone
    );
    std::fs::remove_file(&archive).unwrap();
    assert!(!refused.status.success(), "no terminal, no --yes: refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert!(
        erase.status.success(),
        "{}",
        String::from_utf8_lossy(&erase.stdout)
    );
    // The running server catches up with the CLI's event and cannot read him any more.
    app.core.projector.catch_up().await.unwrap();
    assert_eq!(
        app.get(&format!("/admin/users/{zaphod_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(zaphod.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert!(app
        .events()
        .await
        .iter()
        .filter(|event| event.aggregate_id == zaphod_id.to_string())
        .all(|event| event.erased));
    cvm::privacy::truncate_write_ahead_log(app.pool()).await;
    let left = traces(app.data_dir(), &ZAPHOD.strings());
    assert!(left.is_empty(), "traces after a CLI erasure: {left:#?}");
}

fn cvm(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvm"));
    command
        .env("CVM_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_event_readable() {
    let app = TestApp::spawn().await;
    let mut zaphod = app.new_browser();
    move_in(&app, &mut zaphod, &ZAPHOD).await;
    let mut trillian = app.new_browser();
    move_in(&app, &mut trillian, &TRILLIAN).await;
    let before = app.events().await;
    let key_file = app.data_dir().join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    // Rotate from the CLI while this server keeps its keyring in memory.
    let rotate = cvm(app.data_dir())
        .arg("rotate-master-key")
        .output()
        .unwrap();

    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stdout)
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!app.data_dir().join("master.key.next").exists());
    // The running server reads every event as before (it picks up the new key by itself)…
    assert_eq!(app.events().await, before);
    // …and keeps writing.
    let profile = zaphod
        .post_form("/profile", &[("full_name", "Zaphod After Rotation")])
        .await;
    assert_eq!(profile.status, StatusCode::SEE_OTHER);
    verify_clean(&app).await;
    // The old key file no longer opens the data keys.
    std::fs::write(&key_file, &old_key).unwrap();
    let with_old = cvm(app.data_dir())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(!with_old.status.success());
    assert!(
        String::from_utf8_lossy(&with_old.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&with_old.stderr)
    );
    std::fs::write(&key_file, &new_key).unwrap();
    let with_new = cvm(app.data_dir())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(
        with_new.status.success(),
        "{}",
        String::from_utf8_lossy(&with_new.stdout)
    );
}

#[tokio::test]
async fn a_missing_master_key_is_refused_rather_than_replaced() {
    let mut app = TestApp::spawn().await;
    app.register(ZAPHOD.username, ZAPHOD.email, GOOD_PASSWORD)
        .await;
    std::fs::remove_file(app.data_dir().join("master.key")).unwrap();

    let start = cvm(app.data_dir())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();

    assert!(!start.status.success());
    let text = String::from_utf8_lossy(&start.stderr);
    assert!(
        text.contains("master key file") && text.contains("missing"),
        "{text}"
    );
    assert!(
        !app.data_dir().join("master.key").exists(),
        "no new key was made up"
    );
}

#[tokio::test]
async fn a_database_from_before_encryption_is_encrypted_and_keeps_working() {
    // Arrange: the database an earlier version wrote (tests/fixtures), with Grace's data in
    // plain text in its events.
    let dir = tempfile::tempdir().unwrap();
    {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join("cvm.db"))
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        let dump = include_str!("../fixtures/before-encryption.sql");
        sqlx::raw_sql(dump).execute(&pool).await.unwrap();
        let plain: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE payload LIKE '%grace.hopper@example.com%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(plain, 1, "the fixture holds plain personal data");
        pool.close().await;
    }
    let plain_strings = [
        "grace.hopper@example.com",
        "legacy.admin@example.com",
        "Grace Brewster Hopper",
        "+1 555 0100 777",
        "COBOLlegacytext",
        "Grace legacy CV",
        "legacysummary",
        "legacyhighlight",
        "127.0.0.1",
        "$argon2id",
    ];

    // Act: start the current version on it.
    let mut app = TestApp::spawn_in(dir, |_| {}).await;

    // Assert: no personal data left in plain text in the log…
    let stored: Vec<String> = sqlx::query_scalar("SELECT payload || metadata FROM events")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 8);
    for text in &stored {
        for plain in plain_strings {
            assert!(!text.contains(plain), "{plain} still plain in {text}");
        }
    }
    let (through, sealed): (i64, i64) =
        sqlx::query_as("SELECT plaintext_through, sealed_through FROM plaintext_events")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((through, sealed), (8, 8));
    // …but everything reads and works as before.
    let events = app.events().await;
    assert_eq!(
        events[1].payload["Registered"]["email"],
        "grace.hopper@example.com"
    );
    assert_eq!(events[1].metadata["ip"], "127.0.0.1");
    verify_clean(&app).await;
    let login = app
        .login("grace.hopper@example.com", "legacy user passphrase")
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let cvs = app.get("/cvs").await;
    assert!(cvs.body.contains("Grace legacy CV"));
    let cv_id = events[3].aggregate_id.clone();
    let cv = app.get(&format!("/cvs/{cv_id}")).await;
    assert!(cv.body.contains("Eckert-Mauchly Corporation"));
    assert!(cv.body.contains("legacysummary"));
    let history = app.get(&format!("/cvs/{cv_id}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    // A second start has nothing left to seal.
    assert_eq!(app.core.log.seal_plaintext_events().await.unwrap(), 0);
    // And Grace can now be erased like anyone else.
    let erased = app
        .post_form("/account/delete", &[("password", "legacy user passphrase")])
        .await;
    assert_eq!(erased.status, StatusCode::SEE_OTHER);
    cvm::privacy::truncate_write_ahead_log(app.pool()).await;
    let left = traces(
        app.data_dir(),
        &[
            "grace.hopper@example.com",
            "Grace Brewster Hopper",
            "COBOLlegacytext",
            "legacyhighlight",
        ],
    );
    assert!(left.is_empty(), "{left:#?}");
    verify_clean(&app).await;
}
