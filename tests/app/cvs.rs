//! CVs end to end: building one, stale edits, access, escaping, history and time travel,
//! JSON Resume export and import, archive and duplicate, parallel edits.

use axum::http::{header, StatusCode};

use crate::helpers::{hidden_input, Browser, TestApp, TestResponse, GOOD_PASSWORD};

/// Registers `name` and creates a CV titled `title`; returns the CV's id.
async fn user_with_cv(app: &mut TestApp, name: &str, title: &str) -> String {
    let response = app
        .register(name, &format!("{name}@example.com"), GOOD_PASSWORD)
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    create_cv(&mut app.browser, title).await
}

async fn create_cv(browser: &mut Browser, title: &str) -> String {
    let created = browser.post_form("/cvs/new", &[("title", title)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    created
        .location()
        .trim_start_matches("/cvs/")
        .trim_end_matches("/edit")
        .to_owned()
}

/// The version the editor's forms carry.
async fn version_of(browser: &mut Browser, id: &str) -> String {
    let editor = browser.get(&format!("/cvs/{id}/edit")).await;
    hidden_input(&editor.body, "expected_version").expect("the editor carries a version")
}

/// Posts a CV form with the current version filled in.
async fn edit(
    browser: &mut Browser,
    id: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> TestResponse {
    let version = version_of(browser, id).await;
    let mut all = vec![("expected_version", version.as_str())];
    all.extend_from_slice(fields);
    browser.post_form(&format!("/cvs/{id}{path}"), &all).await
}

/// The rendered CV (the `<article class="cv-document">` part of a page).
fn cv_part(body: &str) -> String {
    let start = body
        .find("<article class=\"cv-document\">")
        .expect("a rendered CV");
    let end = body[start..].find("</article>").expect("end of the CV") + start;
    body[start..end].to_owned()
}

/// Entry ids of `section` in editor order.
fn entry_ids(editor: &str, section: &str) -> Vec<String> {
    let marker = format!("/sections/{section}/");
    let mut ids = Vec::new();
    for piece in editor.split(&marker).skip(1) {
        let id: String = piece.chars().take(36).collect();
        if id.len() == 36 && piece[36..].starts_with('"') && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

async fn build_complete_cv(app: &mut TestApp) -> String {
    let id = user_with_cv(app, "richard", "Main CV").await;
    let steps: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/basics",
            vec![
                ("name", "Richard Hendriks"),
                ("label", "Programmer"),
                ("email", "richard@example.com"),
                ("url", "https://richard.example.com"),
                ("summary", "Compression expert."),
                ("city", "San Francisco"),
            ],
        ),
        (
            "/sections/work",
            vec![
                ("name", "Pied Piper"),
                ("position", "CEO"),
                ("startDate", "2013-12"),
                ("url", "https://piedpiper.example.com"),
                ("highlights", "Built an app\nRaised a round"),
            ],
        ),
        (
            "/sections/education",
            vec![
                ("institution", "Stanford"),
                ("area", "CS"),
                ("studyType", "BSc"),
                ("startDate", "2008"),
                ("endDate", "2012"),
            ],
        ),
        (
            "/sections/skills",
            vec![
                ("name", "Compression"),
                ("level", "Master"),
                ("keywords", "Middle-out\nLossless"),
            ],
        ),
        (
            "/sections/languages",
            vec![("language", "English"), ("fluency", "Native")],
        ),
        (
            "/sections/projects",
            vec![
                ("name", "Middle-out"),
                ("description", "A new algorithm."),
                ("roles", "Inventor"),
            ],
        ),
        (
            "/sections/profiles",
            vec![
                ("network", "GitHub"),
                ("username", "richard"),
                ("url", "https://github.example/richard"),
            ],
        ),
        (
            "/sections/awards",
            vec![("title", "TechCrunch Disrupt"), ("date", "2014-05")],
        ),
        (
            "/sections/certificates",
            vec![("name", "Rust"), ("issuer", "Ferris")],
        ),
        (
            "/sections/publications",
            vec![("name", "Video compression"), ("releaseDate", "2014-10-01")],
        ),
        (
            "/sections/volunteer",
            vec![("organization", "CoderDojo"), ("position", "Mentor")],
        ),
        (
            "/sections/interests",
            vec![("name", "Music"), ("keywords", "Guitar")],
        ),
        (
            "/sections/references",
            vec![("name", "Erlich Bachman"), ("reference", "Visionary.")],
        ),
    ];
    for (path, fields) in steps {
        let response = edit(&mut app.browser, &id, path, &fields).await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            response.body
        );
    }
    id
}

#[tokio::test]
async fn a_complete_cv_is_built_section_by_section_and_rendered() {
    let mut app = TestApp::spawn().await;

    let id = build_complete_cv(&mut app).await;

    let page = app.get(&format!("/cvs/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Richard Hendriks",
        "Programmer",
        "San Francisco",
        "Pied Piper",
        "CEO",
        "2013-12 – present",
        "Raised a round",
        "Stanford",
        "Middle-out",
        "English",
        "GitHub",
        "TechCrunch Disrupt",
        "Ferris",
        "Video compression",
        "CoderDojo",
        "Guitar",
        "Erlich Bachman",
        "Visionary.",
    ] {
        assert!(page.body.contains(text), "{text} on the CV page");
    }
    assert!(page
        .body
        .contains("href=\"https:&#x2f;&#x2f;piedpiper.example.com\""));
    let list = app.get("/cvs").await;
    assert!(list.body.contains("Main CV"));
    assert_eq!(
        version_of(&mut app.browser, &id).await,
        "14",
        "1 + 13 edits"
    );
}

#[tokio::test]
async fn entries_can_be_changed_reordered_and_removed() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    for name in ["First", "Second", "Third"] {
        edit(&mut app.browser, &id, "/sections/skills", &[("name", name)]).await;
    }
    let editor = app.get(&format!("/cvs/{id}/edit")).await;
    let ids = entry_ids(&editor.body, "skills");
    assert_eq!(ids.len(), 3);

    let moved = edit(
        &mut app.browser,
        &id,
        &format!("/sections/skills/{}/move", ids[2]),
        &[("direction", "up")],
    )
    .await;
    let changed = edit(
        &mut app.browser,
        &id,
        &format!("/sections/skills/{}", ids[0]),
        &[("name", "Premier")],
    )
    .await;
    let removed = edit(
        &mut app.browser,
        &id,
        &format!("/sections/skills/{}/delete", ids[1]),
        &[],
    )
    .await;

    for response in [&moved, &changed, &removed] {
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    }
    let page = app.get(&format!("/cvs/{id}")).await.body;
    let premier = page.find("Premier").unwrap();
    let third = page.find("Third").unwrap();
    assert!(premier < third, "order kept: Premier, Third");
    assert!(!page.contains("Second"));
}

#[tokio::test]
async fn invalid_entries_answer_422_with_the_input_kept() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;

    let response = edit(
        &mut app.browser,
        &id,
        "/sections/work",
        &[
            ("name", "Analytical Engines Ltd"),
            ("startDate", "2014-05"),
            ("endDate", "2013"),
            ("url", "javascript:alert(1)"),
        ],
    )
    .await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("The end date is before the start date."));
    assert!(response
        .body
        .replace("&#x2f;", "/")
        .contains("http:// or https://"));
    assert!(
        response.body.contains("value=\"Analytical Engines Ltd\""),
        "input kept"
    );
    assert!(!response.body.contains("href=\"javascript"), "never a link");
}

#[tokio::test]
async fn a_stale_edit_answers_409_and_keeps_the_input() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let seen = version_of(&mut app.browser, &id).await;
    edit(
        &mut app.browser,
        &id,
        "/basics",
        &[("name", "Ada Lovelace")],
    )
    .await;

    let response = app
        .post_form(
            &format!("/cvs/{id}/sections/work"),
            &[
                ("expected_version", seen.as_str()),
                ("name", "My unsaved job"),
            ],
        )
        .await;

    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("changed since you opened this form"));
    assert!(
        response.body.contains("value=\"My unsaved job\""),
        "input kept"
    );
    assert!(
        response.body.contains(&format!("href=\"/cvs/{id}\"")),
        "a way to see the newer version"
    );
    assert!(!app
        .get(&format!("/cvs/{id}"))
        .await
        .body
        .contains("My unsaved job"));
}

#[tokio::test]
async fn a_form_without_its_version_is_refused() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let response = app
        .post_form(
            &format!("/cvs/{id}/sections/work"),
            &[("name", "No version")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("value=\"No version\""));
}

#[tokio::test]
async fn another_users_cv_is_404_on_every_route() {
    let mut app = TestApp::spawn().await;
    let id = build_complete_cv(&mut app).await;
    let entry = entry_ids(&app.get(&format!("/cvs/{id}/edit")).await.body, "work")[0].clone();
    let mut eve = app.new_browser();
    eve.register("eve", "eve@example.com", GOOD_PASSWORD).await;

    for path in [
        format!("/cvs/{id}"),
        format!("/cvs/{id}/print"),
        format!("/cvs/{id}/edit"),
        format!("/cvs/{id}/history"),
        format!("/cvs/{id}/versions/1"),
        format!("/cvs/{id}/export.json"),
    ] {
        assert_eq!(
            eve.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    for path in [
        format!("/cvs/{id}/edit"),
        format!("/cvs/{id}/basics"),
        format!("/cvs/{id}/sections/work"),
        format!("/cvs/{id}/sections/work/{entry}"),
        format!("/cvs/{id}/sections/work/{entry}/delete"),
        format!("/cvs/{id}/sections/work/{entry}/move"),
        format!("/cvs/{id}/archive"),
        format!("/cvs/{id}/unarchive"),
        format!("/cvs/{id}/duplicate"),
        format!("/cvs/{id}/versions/1/restore"),
    ] {
        let response = eve
            .post_form(
                &path,
                &[
                    ("expected_version", "14"),
                    ("title", "pwned"),
                    ("name", "pwned"),
                    ("direction", "up"),
                ],
            )
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "POST {path}");
    }
    assert!(!app.get(&format!("/cvs/{id}")).await.body.contains("pwned"));
    assert_eq!(
        eve.get("/cvs/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eve.get(&format!("/cvs/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_superuser_can_view_any_cv_but_not_edit_it() {
    let mut app = TestApp::spawn().await;
    let id = build_complete_cv(&mut app).await;
    let mut admin = app.new_browser();
    app.core
        .accounts
        .register(
            &cvm::accounts::Registration {
                username: "boss".into(),
                email: "boss@example.com".into(),
                password: GOOD_PASSWORD.into(),
                password_confirm: GOOD_PASSWORD.into(),
            },
            domain::Role::Superuser,
            &projections::EventMetadata::now("test"),
        )
        .await
        .unwrap();
    admin.login("boss@example.com", GOOD_PASSWORD).await;

    assert_eq!(
        admin.get(&format!("/cvs/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin.get(&format!("/cvs/{id}/history")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin.get(&format!("/cvs/{id}/export.json")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin.get(&format!("/cvs/{id}/edit")).await.status,
        StatusCode::FORBIDDEN
    );
    let response = admin
        .post_form(
            &format!("/cvs/{id}/basics"),
            &[("expected_version", "14"), ("name", "Admin was here")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn xss_payloads_in_every_field_render_escaped() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "<script>alert('title')</script>").await;
    let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    edit(
        &mut app.browser,
        &id,
        "/basics",
        &[
            ("name", payload),
            ("label", payload),
            ("summary", payload),
            ("city", payload),
        ],
    )
    .await;
    for section in ["work", "education", "skills", "projects", "references"] {
        let title_field = match section {
            "education" => "institution",
            _ => "name",
        };
        let response = edit(
            &mut app.browser,
            &id,
            &format!("/sections/{section}"),
            &[
                (title_field, payload),
                ("summary", payload),
                ("highlights", payload),
                ("keywords", payload),
                ("reference", payload),
                ("description", payload),
            ],
        )
        .await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "{section}: {}",
            response.body
        );
    }

    for path in [
        format!("/cvs/{id}"),
        format!("/cvs/{id}/edit"),
        format!("/cvs/{id}/print"),
        format!("/cvs/{id}/history"),
        format!("/cvs/{id}/versions/3"),
        "/cvs".to_owned(),
    ] {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: raw script");
        assert!(!page.body.contains("<img src=x"), "{path}: raw tag");
    }
}

#[tokio::test]
async fn every_version_renders_exactly_what_the_page_showed_then() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let mut shown = vec![cv_part(&app.get(&format!("/cvs/{id}")).await.body)];
    let edits: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/basics", vec![("name", "Ada"), ("label", "Analyst")]),
        (
            "/sections/work",
            vec![("name", "Engines"), ("startDate", "1842")],
        ),
        ("/sections/skills", vec![("name", "Mathematics")]),
        (
            "/basics",
            vec![("name", "Ada Lovelace"), ("label", "Analyst")],
        ),
        ("/edit", vec![("title", "Renamed CV")]),
    ];
    for (path, fields) in edits {
        let response = edit(&mut app.browser, &id, path, &fields).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER);
        shown.push(cv_part(&app.get(&format!("/cvs/{id}")).await.body));
    }

    for (index, expected) in shown.iter().enumerate() {
        let n = index + 1;
        let page = app.get(&format!("/cvs/{id}/versions/{n}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(&cv_part(&page.body), expected, "version {n}");
    }
    assert_eq!(
        app.get(&format!("/cvs/{id}/versions/7")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/cvs/{id}/versions/0")).await.status,
        StatusCode::NOT_FOUND
    );
    let history = app.get(&format!("/cvs/{id}/history")).await.body;
    for text in [
        "created the CV",
        "updated basics",
        "added work entry",
        "renamed",
        "ada",
    ] {
        assert!(history.contains(text), "history mentions {text}");
    }
}

#[tokio::test]
async fn restoring_a_version_adds_a_new_version_with_its_content() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    edit(&mut app.browser, &id, "/basics", &[("name", "First name")]).await;
    let at_two = cv_part(&app.get(&format!("/cvs/{id}")).await.body);
    edit(&mut app.browser, &id, "/basics", &[("name", "Second name")]).await;

    let restored = edit(&mut app.browser, &id, "/versions/2/restore", &[]).await;

    assert_eq!(restored.status, StatusCode::SEE_OTHER);
    assert_eq!(cv_part(&app.get(&format!("/cvs/{id}")).await.body), at_two);
    assert_eq!(
        version_of(&mut app.browser, &id).await,
        "4",
        "history is never rewritten"
    );
    assert!(app
        .get(&format!("/cvs/{id}/history"))
        .await
        .body
        .contains("restored version 2"));
}

#[tokio::test]
async fn export_then_import_gives_an_equal_cv() {
    let mut app = TestApp::spawn().await;
    let id = build_complete_cv(&mut app).await;

    let exported = app.get(&format!("/cvs/{id}/export.json")).await;

    assert_eq!(exported.status, StatusCode::OK);
    assert_eq!(exported.headers[header::CONTENT_TYPE], "application/json");
    let disposition = exported.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert_eq!(disposition, "attachment; filename=\"main-cv.json\"");
    let document: serde_json::Value = serde_json::from_str(&exported.body).unwrap();
    assert_eq!(document["work"][0]["name"], "Pied Piper");
    assert_eq!(document["basics"]["location"]["city"], "San Francisco");
    assert_eq!(document["basics"]["profiles"][0]["network"], "GitHub");

    let imported = app
        .post_form("/cvs/import", &[("json", &exported.body)])
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{}", imported.body);
    let new_id = imported.location().trim_start_matches("/cvs/").to_owned();
    assert_ne!(new_id, id);
    let again = app.get(&format!("/cvs/{new_id}/export.json")).await;
    let again: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(again, document);
}

#[tokio::test]
async fn importing_a_file_upload_works_too() {
    let mut app = TestApp::spawn().await;
    app.register("ada", "ada@example.com", GOOD_PASSWORD).await;
    let sample = include_bytes!("../../domain/src/cv/jsonresume/sample.resume.json");

    let response = app
        .upload(
            "/cvs/import",
            "file",
            "resume.json",
            "application/json",
            sample,
        )
        .await;

    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let page = app.get(response.location()).await;
    assert!(page.body.contains("Richard Hendriks"));
    assert!(page.body.contains("Pied Piper"));
}

#[tokio::test]
async fn malformed_imports_answer_422_naming_the_place() {
    let mut app = TestApp::spawn().await;
    app.register("ada", "ada@example.com", GOOD_PASSWORD).await;
    let cases = [
        ("{\"work\": [", "line"),
        (
            "{\"work\": [{\"name\": \"X\", \"startDate\": 2020}]}",
            "/work/0/startDate",
        ),
        (
            "{\"work\": [{\"name\": \"X\", \"startDate\": \"May 2020\"}]}",
            "/work/0/startDate",
        ),
        (
            "{\"basics\": {\"url\": \"javascript:alert(1)\"}}",
            "/basics/url",
        ),
        ("[1, 2, 3]", "JSON Resume"),
    ];
    for (json, expected) in cases {
        let response = app.post_form("/cvs/import", &[("json", json)]).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        let error = response
            .body
            .split("id=\"import-error\">")
            .nth(1)
            .unwrap_or("");
        assert!(
            error.replace("&#x2f;", "/").contains(expected),
            "{json}: {error}"
        );
    }
    assert!(app.get("/cvs").await.body.contains("no CVs yet"));
}

#[tokio::test]
async fn an_import_over_one_mebibyte_is_refused_with_413() {
    let mut app = TestApp::spawn().await;
    app.register("ada", "ada@example.com", GOOD_PASSWORD).await;
    let big = format!(
        "{{\"basics\": {{\"summary\": \"{}\"}}}}",
        "a".repeat(1024 * 1024 + 10)
    );
    let response = app
        .upload(
            "/cvs/import",
            "file",
            "big.json",
            "application/json",
            big.as_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_archived_cv_is_read_only_until_unarchived() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let version = version_of(&mut app.browser, &id).await;

    let archived = app.post_form(&format!("/cvs/{id}/archive"), &[]).await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let refused = app
        .post_form(
            &format!("/cvs/{id}/basics"),
            &[("expected_version", "2"), ("name", "Too late")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("archived"));
    let list = app.get("/cvs").await.body;
    assert!(list.contains("Archived"));

    app.post_form(&format!("/cvs/{id}/unarchive"), &[]).await;
    let accepted = edit(&mut app.browser, &id, "/basics", &[("name", "In time")]).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(version, "1");
}

#[tokio::test]
async fn duplicating_makes_an_independent_copy() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "Original").await;
    edit(&mut app.browser, &id, "/basics", &[("name", "Ada")]).await;

    let copy = app.post_form(&format!("/cvs/{id}/duplicate"), &[]).await;

    assert_eq!(copy.status, StatusCode::SEE_OTHER);
    let copy_id = copy.location().trim_start_matches("/cvs/").to_owned();
    assert_ne!(copy_id, id);
    let page = app.get(&format!("/cvs/{copy_id}")).await.body;
    assert!(page.contains("Copy of Original") && page.contains("Ada"));
    edit(
        &mut app.browser,
        &copy_id,
        "/basics",
        &[("name", "Changed copy")],
    )
    .await;
    assert!(app.get(&format!("/cvs/{id}")).await.body.contains("Ada"));
    assert!(!app
        .get(&format!("/cvs/{id}"))
        .await
        .body
        .contains("Changed copy"));
}

#[tokio::test]
async fn the_print_page_has_no_navigation() {
    let mut app = TestApp::spawn().await;
    let id = build_complete_cv(&mut app).await;
    let page = app.get(&format!("/cvs/{id}/print")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("print.css"));
    assert!(!page.body.contains("Log out"));
    assert!(page.body.contains("Richard Hendriks"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_edits_of_one_cv_are_each_saved_or_refused_as_stale() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let cookie = app.cookie.clone();
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let mut browser = app.new_browser();
            browser.cookie = cookie.clone();
            let id = id.clone();
            tokio::spawn(async move {
                browser
                    .post_form(
                        &format!("/cvs/{id}/sections/skills"),
                        &[("expected_version", "1"), ("name", &format!("Skill {n}"))],
                    )
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }

    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "one wins"
    );
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = ? ORDER BY sequence")
            .bind(&id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        sequences,
        (1..=sequences.len() as i64).collect::<Vec<_>>(),
        "gapless"
    );
    assert!(
        app.core.projector.verify().await.unwrap().is_empty(),
        "read models equal a replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_edits_without_conflicting_versions_all_land() {
    let mut app = TestApp::spawn().await;
    let id = user_with_cv(&mut app, "ada", "CV").await;
    let cookie = app.cookie.clone();
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let mut browser = app.new_browser();
            browser.cookie = cookie.clone();
            let id = id.clone();
            tokio::spawn(async move {
                loop {
                    let version = version_of(&mut browser, &id).await;
                    let status = browser
                        .post_form(
                            &format!("/cvs/{id}/sections/skills"),
                            &[
                                ("expected_version", version.as_str()),
                                ("name", &format!("Skill {n}")),
                            ],
                        )
                        .await
                        .status;
                    if status != StatusCode::CONFLICT {
                        return status;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::SEE_OTHER);
    }
    assert_eq!(version_of(&mut app.browser, &id).await, "11");
    assert!(app.core.projector.verify().await.unwrap().is_empty());
}
