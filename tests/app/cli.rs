//! The `cvm` binary itself: CLI subcommands, help, and a real server start and graceful stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::GOOD_PASSWORD;

fn cvm(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvm"));
    command
        .env_remove("CVM_SUPERUSER_PASSWORD")
        .env("CVM_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn open(data_dir: &Path) -> sqlx::SqlitePool {
    projections::database::open(&data_dir.join("cvm.db"))
        .await
        .unwrap()
}

#[tokio::test]
async fn create_superuser_reads_the_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();

    let output = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "Root@Example.com",
        ])
        .env("CVM_SUPERUSER_PASSWORD", GOOD_PASSWORD)
        .output()
        .unwrap();

    assert!(output.status.success(), "{}", text(&output));
    let pool = open(dir.path()).await;
    let (role, email): (String, String) = sqlx::query_as("SELECT role, email FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (role.as_str(), email.as_str()),
        ("superuser", "root@example.com")
    );
    let request_id: String =
        sqlx::query_scalar("SELECT json_extract(metadata, '$.request_id') FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        request_id.starts_with("cli-"),
        "an event was recorded by the CLI"
    );
}

#[tokio::test]
async fn create_superuser_applies_the_password_policy() {
    let dir = tempfile::tempdir().unwrap();
    let output = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .env("CVM_SUPERUSER_PASSWORD", "password1234")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("This password is too common."),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn create_superuser_without_a_terminal_or_variable_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let output = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("CVM_SUPERUSER_PASSWORD"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn rebuild_projections_verify_passes_then_names_a_tampered_table() {
    let dir = tempfile::tempdir().unwrap();
    let created = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .env("CVM_SUPERUSER_PASSWORD", GOOD_PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));

    let clean = cvm(dir.path())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(clean.status.success(), "{}", text(&clean));

    let pool = open(dir.path()).await;
    sqlx::query("UPDATE users SET username = 'tampered'")
        .execute(&pool)
        .await
        .unwrap();
    let tampered = cvm(dir.path())
        .args(["rebuild-projections", "--verify"])
        .output()
        .unwrap();
    assert!(!tampered.status.success());
    assert!(text(&tampered).contains("users"), "{}", text(&tampered));

    let rebuilt = cvm(dir.path())
        .args(["rebuild-projections"])
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let username: String = sqlx::query_scalar("SELECT username FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(username, "root");
}

#[tokio::test]
async fn rebuild_projections_only_rebuilds_the_named_read_model() {
    let dir = tempfile::tempdir().unwrap();
    let created = cvm(dir.path())
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .env("CVM_SUPERUSER_PASSWORD", GOOD_PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let pool = open(dir.path()).await;
    sqlx::query("UPDATE users SET username = 'tampered'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE profiles SET full_name = 'left alone'")
        .execute(&pool)
        .await
        .unwrap();

    let unknown = cvm(dir.path())
        .args(["rebuild-projections", "--only", "nonsense"])
        .output()
        .unwrap();
    let rebuilt = cvm(dir.path())
        .args(["rebuild-projections", "--only", "users"])
        .output()
        .unwrap();

    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("users, profiles"),
        "{}",
        text(&unknown)
    );
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let (username, full_name): (String, String) = sqlx::query_as(
        "SELECT u.username, p.full_name FROM users u JOIN profiles p ON p.user_id = u.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(username, "root", "the named model is rebuilt");
    assert_eq!(full_name, "left alone", "the others are not touched");
}

#[test]
fn serve_help_documents_every_server_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_cvm"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = text(&output);
    for variable in [
        "CVM_LISTEN",
        "CVM_DATA_DIR",
        "CVM_PUBLIC_URL",
        "CVM_SESSION_IDLE",
        "CVM_SESSION_ABSOLUTE",
        "CVM_LOGIN_COOLDOWN",
        "CVM_TRUSTED_PROXIES",
    ] {
        assert!(
            help.contains(variable),
            "{variable} missing from serve --help"
        );
    }
}

#[test]
fn the_server_starts_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = cvm(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let start = line.find("listening on http://")? + "listening on http://".len();
            Some(line[start..].split_whitespace().next()?.to_owned())
        })
        .expect("the server logs its address");

    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id:"));

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(dir.path().join("cvm.db").exists());
}
