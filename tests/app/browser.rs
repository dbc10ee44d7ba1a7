//! The pages in a real browser (headless Chromium driven over WebDriver): the things that
//! depend on the browser — forms with their CSRF tokens and cookies, the editor's small
//! scripts (confirming a removal, opening the entry named in the address), and that an
//! injection payload never runs.
//!
//! Needs Debian's `chromium` and `chromium-driver`. `.ci/run` installs them and sets
//! `CVM_REQUIRE_BROWSER=1`, which makes a missing browser a failure; elsewhere the test says
//! it was skipped, so `cargo test` still works on a machine without Chromium.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
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

async fn browser(profile: &Path) -> Option<(Driver, Client)> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CVM_REQUIRE_BROWSER").is_none(),
            "CVM_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
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

/// Fills and submits a form, then waits until the browser has left the page it was on (a
/// WebDriver submit does not wait for the next page).
async fn fill(client: &Client, form: &str, fields: &[(&str, &str)]) {
    let before = client.current_url().await.expect("a page");
    let form = client.form(Locator::Css(form)).await.expect("the form");
    for (name, value) in fields {
        form.set_by_name(name, value).await.expect("a field");
    }
    form.submit().await.expect("submitted");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = client
            .execute("return document.readyState;", vec![])
            .await
            .map(|state| state == serde_json::json!("complete"))
            .unwrap_or(false);
        let now = client.current_url().await.expect("a page");
        if ready && now != before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the form at {before} never led anywhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    // Log out through the navigation's form.
    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.goto(&format!("{base}/cvs")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_runs_the_admin_pages_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    {
        // The first superuser, made as the CLI makes it.
        let core = cvm::app::Core::open(
            &cvm::config::DataConfig {
                data_dir: data.path().to_owned(),
            },
            cvm::app::CoreOptions::defaults(),
        )
        .await
        .unwrap();
        let registration = cvm::accounts::Registration {
            username: "boss".into(),
            email: "boss@example.com".into(),
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
    let base = start_server(data.path()).await;

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
    assert_eq!(client.current_url().await.unwrap().path(), "/admin");
    let charts = client
        .find_all(Locator::Css("svg[role='img']"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 4, "four charts on the dashboard");

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
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/admin/users/"));
    assert!(body_text(&client).await.contains("newbie@example.com"));

    // The audit trail, filtered by event type; app.js adds local times to the UTC ones.
    client
        .goto(&format!("{base}/admin/audit?event_type=UserRegistered"))
        .await
        .unwrap();
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
    client.close().await.unwrap();
}
