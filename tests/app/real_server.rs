//! The real `cvm` binary as a test drives it: a server process on a data directory (start,
//! `kill -9`, SIGTERM, its log read on a thread), a minimal blocking HTTP/1.1 client with a
//! one-cookie jar that posts forms as a same-origin browser does, and a small random source.
//!
//! Shared by the tests that need a real process rather than the in-process router: the crash
//! test (`crash.rs`) and the mixed-load test (`concurrency.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::helpers::hidden_input;

/// Longest wait for a server to log its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for a response: a live server answers in milliseconds, so hitting this means
/// it hangs.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Log lines worth keeping, besides warnings, errors and panics: the startup catch-up, and any
/// sign of SQLite lock contention (matched case-insensitively, so `SQLITE_BUSY` and "busy"
/// are both caught).
const KEPT_MARKS: &[&str] = &["caught up", "database is locked", "busy"];

/// The `cvm` binary with `data_dir` as its data directory, no colours and no stdin.
pub(crate) fn cvm(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvm"));
    command
        .env("CVM_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// A running `cvm serve` and the thread reading its log.
pub(crate) struct Server {
    child: Child,
    /// `host:port` it listens on.
    pub(crate) address: String,
    /// Reads stdout to the end (so the server never blocks on a full pipe) and returns the
    /// lines worth a look: see [`is_kept`].
    log: Option<JoinHandle<Vec<String>>>,
}

/// Whether a log line is kept: every WARN, ERROR or panic line, and any line with one of
/// [`KEPT_MARKS`].
fn is_kept(line: &str) -> bool {
    let lower = line.to_lowercase();
    [" WARN ", " ERROR ", "panicked"]
        .iter()
        .any(|mark| line.contains(mark))
        || KEPT_MARKS.iter().any(|mark| lower.contains(mark))
}

impl Drop for Server {
    /// A failing assertion must not leave a server running (a no-op once it was waited for).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cvm serve` on a free port of 127.0.0.1 and waits until it logs its address.
    pub(crate) fn start(data_dir: &Path) -> Self {
        let mut child = cvm(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (address_tx, address_rx) = mpsc::channel();
        let log = thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            let mut kept = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(start) = line.find("listening on http://") {
                    let rest = &line[start + "listening on http://".len()..];
                    if let (Some(tx), Some(address)) = (address_tx.take(), rest.split(' ').next()) {
                        let _ = tx.send(address.to_owned());
                    }
                }
                if is_kept(&line) {
                    kept.push(line);
                }
            }
            kept
        });
        match address_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(address) => Self {
                child,
                address,
                log: Some(log),
            },
            Err(error) => {
                // Not started (or exited at once, e.g. refusing the database): say why.
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the server did not log its address ({error}); exit {status:?}; log: {:#?}",
                    log.join()
                );
            }
        }
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill. Returns the kept log lines.
    pub(crate) fn kill_9(self) -> Vec<String> {
        self.signal("-KILL", false)
    }

    /// SIGTERM: a graceful stop, which must exit 0. Returns the kept log lines.
    pub(crate) fn terminate(self) -> Vec<String> {
        self.signal("-TERM", true)
    }

    fn signal(mut self, signal: &str, graceful: bool) -> Vec<String> {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal}");
        let status = self.child.wait().unwrap();
        assert_eq!(
            status.success(),
            graceful,
            "the server exited with {status}"
        );
        let log = self.log.take().expect("joined once");
        log.join().expect("the log reader")
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one connection per request (`Connection: close`), a cookie jar of
// one cookie, and forms posted as a same-origin browser posts them.

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection was refused: no server listening.
    Refused,
    /// Connected and sent, then the connection ended before a whole response.
    Lost,
    /// Connected and sent, then nothing for [`IO_TIMEOUT`].
    TimedOut,
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The `Location` header (empty if none).
    pub(crate) location: String,
    /// The `X-Request-Id` header (empty if none): the id the server records in the metadata
    /// of the events this request caused.
    pub(crate) request_id: String,
    /// The `Retry-After` header (empty if none).
    pub(crate) retry_after: String,
    pub(crate) body: String,
}

/// A client with a one-cookie jar, as one browser tab.
pub(crate) struct Browser {
    address: String,
    cookie: Option<String>,
}

impl Browser {
    /// A browser with an empty cookie jar talking to `address` (`host:port`).
    pub(crate) fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            cookie: None,
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> Result<Reply, Failure> {
        self.send("GET", path, None)
    }

    /// Loads a page with a form and returns its CSRF token and the page.
    pub(crate) fn form_token(&mut self, path: &str) -> Result<(String, String), Failure> {
        let page = self.get(path)?;
        match hidden_input(&page.body, "csrf_token") {
            Some(token) if page.status == 200 => Ok((token, page.body)),
            _ => panic!("{path} shows a form ({}): {}", page.status, page.body),
        }
    }

    /// Posts `fields` as `application/x-www-form-urlencoded`, with `Sec-Fetch-Site: same-origin`.
    pub(crate) fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply, Failure> {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send("POST", path, Some(body))
    }

    fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Result<Reply, Failure> {
        let mut stream = TcpStream::connect(&self.address).map_err(|_| Failure::Refused)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.address
        );
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(body) = &body {
            request.push_str(&format!(
                "Sec-Fetch-Site: same-origin\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body.as_deref().unwrap_or(""));
        stream
            .write_all(request.as_bytes())
            .map_err(|_| Failure::Lost)?;

        let mut raw = Vec::new();
        if let Err(error) = stream.read_to_end(&mut raw) {
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return Err(Failure::TimedOut);
            }
            // A reset: what arrived before it is judged below like a short read.
        }
        let reply = parse_response(&raw).ok_or(Failure::Lost)?;
        for set_cookie in &reply.1 {
            let pair = set_cookie.split(';').next().unwrap_or("").trim();
            self.cookie = (!set_cookie.contains("Max-Age=0")).then(|| pair.to_owned());
        }
        Ok(reply.0)
    }
}

/// A whole response (status, `Location`, body) and its `Set-Cookie` values, or `None` when the
/// bytes stop before the end of the headers or of the announced body.
pub(crate) fn parse_response(raw: &[u8]) -> Option<(Reply, Vec<String>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut body = raw[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let (mut location, mut request_id, mut retry_after) =
        (String::new(), String::new(), String::new());
    let (mut cookies, mut length, mut chunked) = (Vec::new(), None, false);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "location" => location = value.to_owned(),
            "x-request-id" => request_id = value.to_owned(),
            "retry-after" => retry_after = value.to_owned(),
            "set-cookie" => cookies.push(value.to_owned()),
            "content-length" => length = Some(value.parse::<usize>().ok()?),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(length) = length {
        if body.len() < length {
            return None;
        }
        body.truncate(length);
    }
    let reply = Reply {
        status,
        location,
        request_id,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Some((reply, cookies))
}

/// The payload of a chunked body, or `None` if it stops before the last chunk.
pub(crate) fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        let chunk = raw.get(line_end + 2..line_end + 2 + size)?;
        out.extend_from_slice(chunk);
        raw = raw.get(line_end + 2 + size + 2..)?;
    }
}

/// xorshift64: enough randomness for kill delays and load mixes without a dependency.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock (never zero).
    pub(crate) fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self(nanos | 1)
    }

    /// Uniform enough in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low + 1)
    }
}
