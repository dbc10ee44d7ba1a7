//! The pages in a real browser (headless Chromium driven over WebDriver): the things that
//! depend on the browser — forms with their CSRF tokens and cookies, file uploads, the
//! editor's small scripts (confirming a removal, opening the entry named in the address),
//! pictures that load, downloads fetched by the page, and that an injection payload never runs.
//! The key pages are saved as screenshots at desktop (1280 px) and phone (390 px) widths, into
//! `$CVM_E2E_ARTIFACTS`, or `target/e2e-screenshots/` when that is not set.
//!
//! Needs Debian's `chromium` and `chromium-driver`. `.ci/run` installs them and sets
//! `CVM_E2E=required` (the older `CVM_REQUIRE_BROWSER=1` works too), which makes a missing
//! browser a failure; elsewhere the tests say they were skipped, so `cargo test` still works on
//! a machine without Chromium.

use std::io::Cursor;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cvm::app::Application;
use cvm::config::ServeConfig;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "correct horse battery staple";

/// Kills chromedriver (and with it the browser) when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the server on a free port; returns its base URL.
async fn start_server(data_dir: &Path) -> String {
    let mut config = ServeConfig::for_data_dir(data_dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = Application::build(config).await.expect("server builds");
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until_stopped());
    format!("http://{addr}")
}

/// Whether CI asked for the browser tests, so that they must not skip.
fn browser_required() -> bool {
    std::env::var("CVM_E2E").is_ok_and(|value| value == "required")
        || std::env::var_os("CVM_REQUIRE_BROWSER").is_some_and(|value| !value.is_empty())
}

async fn browser(profile: &Path) -> Option<(Driver, Client)> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            !browser_required(),
            "CVM_E2E=required (or CVM_REQUIRE_BROWSER) is set but {CHROMIUM} or {CHROMEDRIVER} \
             is missing"
        );
        eprintln!("skipped: install Debian's chromium and chromium-driver to run the browser test");
        return None;
    }
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(driver);
    wait_for(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    Some((driver, client))
}

/// Marks the page the browser is on, so that [`arrived`] can tell when another one has loaded
/// (a WebDriver click or submit does not wait for the next page, and a POST may come back to
/// the same address).
async fn leaving(client: &Client) {
    client
        .execute("window.cvmLeft = true;", vec![])
        .await
        .expect("the page takes a mark");
}

/// Waits until a new page (without the mark of [`leaving`]) has loaded.
async fn arrived(client: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let loaded = client
            .execute(
                "return document.readyState === 'complete' && !window.cvmLeft;",
                vec![],
            )
            .await
            .map(|ready| ready == serde_json::json!(true))
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(Instant::now() < deadline, "{what} never led to a new page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fills and submits a form, then waits for the page it leads to.
async fn fill(client: &Client, form: &str, fields: &[(&str, &str)]) {
    let locator = form;
    let form = client.form(Locator::Css(form)).await.expect("the form");
    for (name, value) in fields {
        form.set_by_name(name, value).await.expect("a field");
    }
    leaving(client).await;
    form.submit().await.expect("submitted");
    arrived(client, &format!("the form {locator}")).await;
}

/// Clicks what `css` names and waits for the page it leads to.
async fn click_through(client: &Client, css: &str) {
    let element = client.find(Locator::Css(css)).await.expect(css);
    leaving(client).await;
    element.click().await.expect("clicked");
    arrived(client, css).await;
}

/// Asserts that no dialog (`alert`, `confirm`, `prompt`) is open: an injected script would
/// open one.
async fn no_dialog(client: &Client, page: &str) {
    if let Ok(text) = client.get_alert_text().await {
        panic!("a dialog opened on {page}: {text:?}");
    }
}

/// The path of the page the browser is on.
async fn path(client: &Client) -> String {
    client
        .current_url()
        .await
        .expect("a page")
        .path()
        .to_owned()
}

/// The first 8 bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Where screenshots go: `$CVM_E2E_ARTIFACTS`, or `target/e2e-screenshots/`.
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("CVM_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-screenshots"));
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// The widths every key page is saved at.
const WIDTHS: [(&str, u32); 2] = [("desktop", 1280), ("phone", 390)];

/// Saves the whole page (up to a few screens long) at each of [`WIDTHS`] as
/// `<name>-<width name>.png`, checks each file is a PNG, and returns the browser to desktop size.
async fn screenshots(client: &Client, name: &str) -> Vec<PathBuf> {
    let dir = artifacts_dir();
    let mut saved = Vec::new();
    for (label, width) in WIDTHS {
        client.set_window_size(width, 900).await.expect("resized");
        client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .expect("scrolled");
        // The window is the page's height plus whatever the browser keeps for itself.
        let height = client
            .execute(
                "return document.documentElement.scrollHeight \
                   + Math.max(0, window.outerHeight - window.innerHeight);",
                vec![],
            )
            .await
            .ok()
            .and_then(|height| height.as_u64())
            .unwrap_or(900)
            .clamp(600, 4000);
        client
            .set_window_size(width, height as u32)
            .await
            .expect("resized");
        // Two frames, so that the layout at the new size has been painted.
        client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await
            .expect("a frame");
        let png = client.screenshot().await.expect("a screenshot");
        assert!(
            png.len() > PNG_SIGNATURE.len() && png.starts_with(PNG_SIGNATURE),
            "{name} at {label} width is not a PNG"
        );
        let file = dir.join(format!("{name}-{label}.png"));
        std::fs::write(&file, &png).expect("the screenshot is saved");
        let written = std::fs::read(&file).expect("the screenshot reads back");
        assert!(
            written.len() > PNG_SIGNATURE.len() && written.starts_with(PNG_SIGNATURE),
            "{} is not a PNG",
            file.display()
        );
        saved.push(file);
    }
    client.set_window_size(1280, 900).await.expect("resized");
    saved
}

/// Creates the first superuser the way the CLI does, before the server starts.
async fn create_superuser(data_dir: &Path, username: &str, email: &str) {
    let core = cvm::app::Core::open(
        &cvm::config::DataConfig {
            data_dir: data_dir.to_owned(),
            master_key_file: None,
        },
        cvm::app::CoreOptions::defaults(),
    )
    .await
    .unwrap();
    let registration = cvm::accounts::Registration {
        username: username.into(),
        email: email.into(),
        password: PASSWORD.into(),
        password_confirm: PASSWORD.into(),
    };
    core.accounts
        .register(
            &registration,
            domain::Role::Superuser,
            &projections::EventMetadata::now("test"),
        )
        .await
        .unwrap();
    core.pool.close().await;
}

/// A small PNG picture, written to `dir`.
fn picture_file(dir: &Path) -> PathBuf {
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 160])
    });
    let mut bytes = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    let file = dir.join("portrait.png");
    std::fs::write(&file, bytes.into_inner()).unwrap();
    file
}

async fn body_text(client: &Client) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("its text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_builds_a_cv_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    let base = start_server(data.path()).await;

    // Register: the form carries its CSRF token and the browser its cookie.
    client.goto(&format!("{base}/register")).await.unwrap();
    fill(
        &client,
        "form[action='/register']",
        &[
            ("username", "ada"),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/cvs"));

    // A CV, and a payload in its basics that must never run.
    client.goto(&format!("{base}/cvs/new")).await.unwrap();
    fill(&client, "form[action='/cvs/new']", &[("title", "Main CV")]).await;
    let editor = client.current_url().await.unwrap();
    assert!(editor.path().ends_with("/edit"), "{editor}");
    fill(
        &client,
        "#basics form",
        &[
            ("name", "<img src=x onerror=alert(1)>Ada"),
            ("label", "Analyst"),
        ],
    )
    .await;

    // Add a work entry through the collapsed "Add" form.
    client
        .find(Locator::Css("#add-work summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        &client,
        "#add-work form",
        &[("name", "Analytical Engines"), ("position", "Programmer")],
    )
    .await;

    // Back in the editor at #entry-…: app.js opens that entry.
    let url = client.current_url().await.unwrap();
    let entry = url
        .fragment()
        .expect("the address names the new entry")
        .to_owned();
    assert!(entry.starts_with("entry-"), "{url}");
    let open = client
        .execute(
            "return document.getElementById(arguments[0]).open;",
            vec![serde_json::json!(entry)],
        )
        .await
        .unwrap();
    assert_eq!(
        open,
        serde_json::json!(true),
        "the entry in the address is opened"
    );

    // Removing asks first; dismissing keeps the entry.
    let remove = format!("#{entry} form[action$='/delete'] button");
    client
        .find(Locator::Css(&remove))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = client.get_alert_text().await.expect("a confirmation");
    assert!(question.contains("Remove this work entry?"), "{question}");
    client.dismiss_alert().await.unwrap();
    client
        .goto(&format!("{base}{}", editor.path()))
        .await
        .unwrap();
    assert!(body_text(&client).await.contains("Analytical Engines"));

    // The rendered CV shows the entry and the payload as text; no dialog ever opens.
    let view = editor.path().trim_end_matches("/edit").to_owned();
    client.goto(&format!("{base}{view}")).await.unwrap();
    let text = body_text(&client).await;
    assert!(text.contains("Analytical Engines") && text.contains("Programmer"));
    assert!(
        text.contains("<img src=x onerror=alert(1)>Ada"),
        "shown as text"
    );
    assert!(client.get_alert_text().await.is_err(), "no dialog opened");

    // Confirming the removal removes it.
    client
        .goto(&format!("{base}{}#{entry}", editor.path()))
        .await
        .unwrap();
    client
        .find(Locator::Css(&remove))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.accept_alert().await.unwrap();
    client.goto(&format!("{base}{view}")).await.unwrap();
    assert!(!body_text(&client).await.contains("Analytical Engines"));

    // Log out through the navigation's form (and wait for its answer: going on at once could
    // cancel the POST, as it did once in a full test run).
    click_through(&client, "form[action='/logout'] button").await;
    client.goto(&format!("{base}/cvs")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    client.close().await.unwrap();
}

/// Profile fields with payloads that would open a dialog if they ever ran.
const PROFILE_PAYLOADS: [(&str, &str); 6] = [
    ("full_name", "<img src=x onerror=alert(1)>Ada"),
    ("headline", "\"><script>alert(2)</script>"),
    ("phone", "+44 20 7946 0000"),
    ("location", "</textarea><svg onload=alert(3)>"),
    ("website", "https://example.com/'onmouseover='alert(4)"),
    ("bio", "</textarea><script>alert(5)</script>"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_goes_from_sign_up_to_export_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    create_superuser(data.path(), "boss", "boss@example.com").await;
    let base = start_server(data.path()).await;
    let mut shots = Vec::new();

    // The landing page, and signing up.
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(client
        .find(Locator::Css("a[href='/register']"))
        .await
        .is_ok());
    shots.extend(screenshots(&client, "landing").await);
    click_through(&client, "a[href='/register']").await;
    assert_eq!(path(&client).await, "/register");
    shots.extend(screenshots(&client, "register").await);
    fill(
        &client,
        "form[action='/register']",
        &[
            ("username", "ada"),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(path(&client).await, "/cvs");

    // Out, and in again through the login form.
    click_through(&client, "form[action='/logout'] button").await;
    assert_eq!(path(&client).await, "/");
    click_through(&client, "a[href='/login']").await;
    fill(
        &client,
        "form[action='/login']",
        &[("email", "ada@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(path(&client).await, "/cvs");
    assert!(body_text(&client).await.contains("ada"), "logged in as ada");

    // The profile, with payloads in its fields: shown as text, never run.
    client.goto(&format!("{base}/profile")).await.unwrap();
    fill(&client, "form[action='/profile']", &PROFILE_PAYLOADS).await;
    assert_eq!(path(&client).await, "/profile");
    no_dialog(&client, "the profile").await;
    for (name, value) in PROFILE_PAYLOADS {
        let shown = client
            .find(Locator::Css(&format!(
                "form[action='/profile'] [name='{name}']"
            )))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(shown.as_deref(), Some(value), "{name} kept as typed");
    }

    // A picture, chosen through the file input: the page then shows it, loaded.
    let picture = picture_file(files.path());
    client
        .find(Locator::Css("input[type='file'][name='avatar']"))
        .await
        .unwrap()
        .send_keys(&picture.display().to_string())
        .await
        .unwrap();
    click_through(
        &client,
        "form[action^='/profile/avatar?'] button[type='submit']",
    )
    .await;
    assert_eq!(path(&client).await, "/profile");
    let loaded = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const img = document.querySelector('img.avatar');\
             if (!img) { done(-1); }\
             else if (img.complete) { done(img.naturalWidth); }\
             else { img.addEventListener('load', () => done(img.naturalWidth));\
                    img.addEventListener('error', () => done(0)); }",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        loaded.as_i64().unwrap_or(0) > 0,
        "the profile picture loads: naturalWidth {loaded}"
    );
    no_dialog(&client, "the profile with a picture").await;
    shots.extend(screenshots(&client, "profile").await);

    // A CV with several sections.
    client.goto(&format!("{base}/cvs/new")).await.unwrap();
    fill(&client, "form[action='/cvs/new']", &[("title", "Main CV")]).await;
    let editor = path(&client).await;
    assert!(editor.ends_with("/edit"), "{editor}");
    let cv = editor.trim_end_matches("/edit").to_owned();
    fill(
        &client,
        "#basics form",
        &[
            ("name", "Ada Lovelace"),
            ("label", "<svg onload=alert(6)>Analyst"),
            ("email", "ada@example.com"),
        ],
    )
    .await;
    let sections: [(&str, &[(&str, &str)]); 3] = [
        (
            "work",
            &[
                ("name", "Analytical Engines"),
                ("position", "Programmer"),
                ("startDate", "1842-01"),
                ("highlights", "Notes on the engine\nThe first program"),
            ],
        ),
        (
            "education",
            &[
                ("institution", "University of London"),
                ("area", "Mathematics"),
                ("courses", "Calculus\nLogic"),
            ],
        ),
        (
            "skills",
            &[
                ("name", "Mathematics"),
                ("keywords", "Analysis\nAlgorithms"),
            ],
        ),
    ];
    for (section, fields) in sections {
        client
            .find(Locator::Css(&format!("#add-{section} summary")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        fill(&client, &format!("#add-{section} form"), fields).await;
        assert!(path(&client).await.ends_with("/edit"));
    }
    shots.extend(screenshots(&client, "cv-editor").await);

    // The rendered CV shows every section, and the payload as text.
    client.goto(&format!("{base}{cv}")).await.unwrap();
    no_dialog(&client, "the CV").await;
    let text = body_text(&client).await;
    for shown in [
        "Ada Lovelace",
        "<svg onload=alert(6)>Analyst",
        "Analytical Engines",
        "The first program",
        "University of London",
        "Algorithms",
    ] {
        assert!(text.contains(shown), "the CV shows {shown:?}");
    }
    shots.extend(screenshots(&client, "cv-view").await);

    // A rename of the person; the history lists every version, the one before the rename
    // shows the old name, and restoring it brings the name back as a new version.
    client.goto(&format!("{base}{editor}")).await.unwrap();
    fill(&client, "#basics form", &[("name", "Ada King")]).await;
    client.goto(&format!("{base}{cv}/history")).await.unwrap();
    let rows = client
        .find_all(Locator::Css("table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 6, "created, basics, three entries, the rename");
    shots.extend(screenshots(&client, "history").await);
    click_through(&client, &format!("a[href='{cv}/versions/5']")).await;
    let text = body_text(&client).await;
    assert!(
        text.contains("Ada Lovelace") && !text.contains("Ada King"),
        "{text}"
    );
    click_through(&client, "form[action$='/versions/5/restore'] button").await;
    assert_eq!(path(&client).await, cv);
    let text = body_text(&client).await;
    assert!(
        text.contains("Ada Lovelace") && !text.contains("Ada King"),
        "{text}"
    );
    client.goto(&format!("{base}{cv}/history")).await.unwrap();
    let rows = client
        .find_all(Locator::Css("table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 7, "the restore is a new version");

    // Export: the page's own link, fetched by the page.
    client.goto(&format!("{base}{cv}")).await.unwrap();
    let href = client
        .find(Locator::Css("a[href$='/export.json']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("an export link");
    let fetched = client
        .execute_async(
            "const [href, done] = arguments;\
             fetch(href).then((r) => r.text().then((body) =>\
               done([r.status, r.headers.get('content-type'), body])))\
             .catch((e) => done([0, String(e), '']));",
            vec![serde_json::json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(fetched[0], serde_json::json!(200), "{fetched}");
    assert!(
        fetched[1]
            .as_str()
            .unwrap_or("")
            .starts_with("application/json"),
        "{fetched}"
    );
    let resume: serde_json::Value =
        serde_json::from_str(fetched[2].as_str().unwrap()).expect("a JSON document");
    assert_eq!(resume["basics"]["name"], "Ada Lovelace");
    assert_eq!(resume["basics"]["label"], "<svg onload=alert(6)>Analyst");
    assert_eq!(resume["work"][0]["name"], "Analytical Engines");
    assert_eq!(resume["work"][0]["highlights"][1], "The first program");
    assert_eq!(
        resume["education"][0]["institution"],
        "University of London"
    );
    assert_eq!(resume["skills"][0]["keywords"][1], "Algorithms");

    client.goto(&format!("{base}/cvs")).await.unwrap();
    assert!(body_text(&client).await.contains("Main CV"));
    shots.extend(screenshots(&client, "cvs").await);

    // Log out: the pages are closed again.
    click_through(&client, "form[action='/logout'] button").await;
    client.goto(&format!("{base}/cvs")).await.unwrap();
    assert_eq!(path(&client).await, "/login");

    // A superuser looks at ada: her payloads are text on the admin pages too.
    fill(
        &client,
        "form[action='/login']",
        &[("email", "boss@example.com"), ("password", PASSWORD)],
    )
    .await;
    client
        .goto(&format!("{base}/admin/users?q=ada"))
        .await
        .unwrap();
    no_dialog(&client, "the user list").await;
    click_through(&client, "a[href^='/admin/users/'][href*='-']").await;
    no_dialog(&client, "ada's admin page").await;
    let text = body_text(&client).await;
    assert!(
        text.contains("ada@example.com") && text.contains("<img src=x onerror=alert(1)>Ada"),
        "{text}"
    );
    client.goto(&format!("{base}/admin/cvs")).await.unwrap();
    no_dialog(&client, "the CV list").await;
    client.goto(&format!("{base}{cv}")).await.unwrap();
    no_dialog(&client, "ada's CV, read by the superuser").await;

    assert_eq!(shots.len(), 14, "seven pages at two widths");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deletes_their_account_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    let base = start_server(data.path()).await;
    let register = |username: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client.goto(&format!("{base}/register")).await.unwrap();
            fill(
                &client,
                "form[action='/register']",
                &[
                    ("username", username),
                    ("email", "grace@example.com"),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                ],
            )
            .await;
        }
    };
    register("grace").await;
    assert_eq!(path(&client).await, "/cvs");

    // From the profile to the deletion page, which says what goes and what stays.
    client.goto(&format!("{base}/profile")).await.unwrap();
    click_through(&client, "a[href='/account/delete']").await;
    assert_eq!(path(&client).await, "/account/delete");
    let text = body_text(&client).await;
    assert!(text.contains("grace@example.com") && text.contains("cannot be undone"));
    let shots = screenshots(&client, "account-delete").await;

    // A wrong password is refused on the page, and nothing is erased.
    fill(
        &client,
        "form[action='/account/delete']",
        &[("password", "not my password at all")],
    )
    .await;
    assert_eq!(path(&client).await, "/account/delete");
    assert!(body_text(&client)
        .await
        .contains("That is not your password."));

    // The right one erases the account and logs out.
    fill(
        &client,
        "form[action='/account/delete']",
        &[("password", PASSWORD)],
    )
    .await;
    assert_eq!(path(&client).await, "/");
    assert!(body_text(&client).await.contains("have been erased"));
    client.goto(&format!("{base}/cvs")).await.unwrap();
    assert_eq!(path(&client).await, "/login", "logged out");
    fill(
        &client,
        "form[action='/login']",
        &[("email", "grace@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(path(&client).await, "/login", "the account is gone");

    // The username and email are free again.
    register("grace").await;
    assert_eq!(path(&client).await, "/cvs", "registered anew");
    assert_eq!(shots.len(), 2, "one page at two widths");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_runs_the_admin_pages_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    create_superuser(data.path(), "boss", "boss@example.com").await;
    let base = start_server(data.path()).await;
    let mut shots = Vec::new();

    client
        .goto(&format!("{base}/login?next=/admin"))
        .await
        .unwrap();
    fill(
        &client,
        "form[action='/login']",
        &[("email", "boss@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(path(&client).await, "/admin");

    // Create an account for someone else.
    client
        .goto(&format!("{base}/admin/users/new"))
        .await
        .unwrap();
    fill(
        &client,
        "form[action='/admin/users/new']",
        &[
            ("username", "newbie"),
            ("email", "newbie@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert!(path(&client).await.starts_with("/admin/users/"));
    assert!(body_text(&client).await.contains("newbie@example.com"));

    // The dashboard and its four charts, drawn on the server as SVG.
    client.goto(&format!("{base}/admin")).await.unwrap();
    let charts = client
        .find_all(Locator::Css("svg[role='img']"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 4, "four charts on the dashboard");
    for chart in &charts {
        let width = client
            .execute(
                "return arguments[0].getBoundingClientRect().width;",
                vec![serde_json::to_value(chart).unwrap()],
            )
            .await
            .unwrap();
        assert!(width.as_f64().unwrap_or(0.0) > 100.0, "a chart is drawn");
    }
    shots.extend(screenshots(&client, "admin-dashboard").await);

    // The user list, searched through its form.
    client.goto(&format!("{base}/admin/users")).await.unwrap();
    fill(&client, "form[action='/admin/users']", &[("q", "newb")]).await;
    let text = body_text(&client).await;
    assert!(text.contains("newbie@example.com") && !text.contains("boss@example.com"));
    client.goto(&format!("{base}/admin/users")).await.unwrap();
    shots.extend(screenshots(&client, "admin-users").await);

    // The audit trail, filtered by event type through its form; app.js adds local times to
    // the UTC ones.
    client.goto(&format!("{base}/admin/audit")).await.unwrap();
    fill(
        &client,
        "form[action='/admin/audit']",
        &[("event_type", "UserRegistered")],
    )
    .await;
    let url = client.current_url().await.unwrap();
    assert!(
        url.query()
            .unwrap_or("")
            .contains("event_type=UserRegistered"),
        "{url}"
    );
    let text = body_text(&client).await;
    assert!(text.contains("registered as newbie") && text.contains("registered as boss"));
    assert!(!text.contains("logged in\n"), "only registrations listed");
    let local_times = client
        .find_all(Locator::Css("small.local-time"))
        .await
        .unwrap();
    assert_eq!(
        local_times.len(),
        2,
        "each UTC time also shown in local time"
    );
    shots.extend(screenshots(&client, "audit").await);
    assert_eq!(shots.len(), 6);
    client.close().await.unwrap();
}
