//! Outgoing email (first use: password-reset links).
//!
//! A [`Mailer`] delivers plain-text messages either over SMTP, when a connection URL is
//! configured, or — the default, so the app works without a mail server — by writing each
//! message as an `.eml` file into an outbox folder. Log lines name only the file or the
//! Message-ID, never addresses or names, and nothing here ever prints SMTP credentials.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a message could not be set up or sent. The texts never contain the addresses involved,
/// so they are safe to log.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A sender or recipient address did not parse.
    #[error("invalid address: {0}")]
    Address(String),
    /// The message (or the SMTP configuration) could not be assembled.
    #[error("could not build the message: {0}")]
    Build(String),
    /// Writing the message to the outbox or handing it to the SMTP server failed.
    #[error("could not deliver the message: {0}")]
    Transport(String),
}

/// An email to send: plain text.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The recipient, `addr@example.com` or `Name <addr@example.com>`.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Sends [`OutgoingMail`] over SMTP or into an outbox folder. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Outbox {
        dir: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, kept apart from the URL so that credentials never reach a log.
        endpoint: String,
    },
}

impl Mailer {
    /// `smtp_url`: e.g. `smtps://user:pass@mail.example.com` or `smtp://localhost:25` (lettre's
    /// `AsyncSmtpTransport::from_url`); None → outbox in `outbox_dir` (created if missing).
    ///
    /// Nothing connects here: the SMTP connection is opened when a message is sent. An SMTP
    /// mailer must be created inside a Tokio runtime (its connection pool starts a background
    /// task); outside one this returns [`MailError::Transport`] instead of panicking.
    pub fn new(smtp_url: Option<&str>, from: &str, outbox_dir: PathBuf) -> Result<Self, MailError> {
        let from =
            Mailbox::from_str(from).map_err(|e| MailError::Address(format!("sender: {e}")))?;
        let transport = match smtp_url {
            None => Transport::Outbox {
                transport: AsyncFileTransport::new(&outbox_dir),
                dir: outbox_dir,
            },
            Some(url) => {
                // The URL holds the password, so neither it nor lettre's parse error (which
                // could echo parts of it in future versions) goes into our error text.
                let builder =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| {
                        MailError::Build(
                        "invalid SMTP URL (expected smtp://host[:port] or smtps://user:pass@host)"
                            .to_owned(),
                    )
                    })?;
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(MailError::Transport(
                        "an SMTP mailer must be created inside a Tokio runtime".to_owned(),
                    ));
                }
                Transport::Smtp {
                    transport: builder.build(),
                    endpoint: smtp_endpoint(url),
                }
            }
        };
        Ok(Self { from, transport })
    }

    /// Sends one message. In outbox mode the folder is created if it is missing.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build_message(mail)?;
        let message_id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or("<none>")
            .to_owned();
        match &self.transport {
            Transport::Outbox { dir, transport } => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    MailError::Transport(format!(
                        "could not create the outbox {}: {e}",
                        dir.display()
                    ))
                })?;
                let id = transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Transport(format!("outbox: {e}")))?;
                let file = dir.join(format!("{id}.eml"));
                tracing::info!(
                    file = %file.display(),
                    message_id = %message_id,
                    "email written to the outbox (no mail server configured)"
                );
            }
            Transport::Smtp {
                transport,
                endpoint,
            } => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Transport(describe_smtp_error(&e)))?;
                tracing::info!(message_id = %message_id, server = %endpoint, "email sent via SMTP");
            }
        }
        Ok(())
    }

    /// Where the outbox is, if this mailer writes to one.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Outbox { dir, .. } => Some(dir),
            Transport::Smtp { .. } => None,
        }
    }

    /// Human description for the startup log without secrets: "outbox at ./data/outbox" or
    /// "SMTP via mail.example.com:465" (no password!).
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Outbox { dir, .. } => format!("outbox at {}", dir.display()),
            Transport::Smtp { endpoint, .. } => format!("SMTP via {endpoint}"),
        }
    }

    fn build_message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to = Mailbox::from_str(&mail.to)
            .map_err(|e| MailError::Address(format!("recipient: {e}")))?;
        // lettre encodes header values (RFC 2047), so CR/LF in the subject cannot start a new
        // header line.
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately not deriving: the SMTP transport holds credentials, and the sender is
        // left out so Debug output stays free of addresses.
        f.debug_struct("Mailer")
            .field("transport", &self.describe())
            .finish_non_exhaustive()
    }
}

/// `host:port` of an SMTP URL that lettre has already accepted, without user or password.
/// The default ports mirror lettre's: 465 for `smtps`, 587 for `smtp` with `?tls=…`, else 25.
fn smtp_endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("smtp", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        return host_port.to_owned();
    }
    let default_port = if scheme.eq_ignore_ascii_case("smtps") {
        465
    } else if url.contains("tls=") {
        587
    } else {
        25
    };
    format!("{host_port}:{default_port}")
}

/// A loggable description of an SMTP failure. Server replies are dropped because they often
/// quote the recipient's address; the reply code is enough to diagnose.
fn describe_smtp_error(error: &lettre::transport::smtp::Error) -> String {
    let code = error
        .status()
        .map(|code| format!(" (code {code})"))
        .unwrap_or_default();
    if error.is_permanent() {
        format!("SMTP server rejected the message permanently{code}")
    } else if error.is_transient() {
        format!("SMTP server refused the message for now{code}")
    } else if error.is_response() {
        format!("unexpected reply from the SMTP server{code}")
    } else if error.is_timeout() {
        "timed out talking to the SMTP server".to_owned()
    } else if error.is_tls() {
        "TLS error talking to the SMTP server".to_owned()
    } else {
        format!("SMTP error: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "CV Manager <no-reply@localhost>";

    fn mail(to: &str, subject: &str, body: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: body.to_owned(),
        }
    }

    fn outbox_mailer(dir: &Path) -> Mailer {
        Mailer::new(None, FROM, dir.to_path_buf()).expect("outbox mailer")
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort();
        files
    }

    /// The header block of an .eml file, one entry per (unfolded) header line.
    fn header_names(eml: &str) -> Vec<String> {
        let headers = eml.split("\r\n\r\n").next().unwrap_or_default();
        headers
            .split("\r\n")
            .filter(|line| !line.starts_with([' ', '\t']))
            .filter_map(|line| {
                line.split_once(':')
                    .map(|(name, _)| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[tokio::test]
    async fn outbox_mode_writes_one_eml_with_recipient_subject_and_body() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("outbox");
        let mailer = outbox_mailer(&dir);
        let message = mail(
            "Alice <alice@example.com>",
            "Reset your password",
            "Open this link to reset your password.",
        );

        // Act
        mailer.send(&message).await.expect("send");

        // Assert
        let files = eml_files(&dir);
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(&files[0]).expect("read eml");
        assert!(eml.contains("To: Alice <alice@example.com>"), "{eml}");
        assert!(
            eml.contains("From: \"CV Manager\" <no-reply@localhost>"),
            "{eml}"
        );
        assert!(eml.contains("Subject: Reset your password"), "{eml}");
        assert!(eml.contains("Content-Type: text/plain"), "{eml}");
        assert!(eml.contains("Message-ID: <"), "{eml}");
        assert!(eml.contains("Date: "), "{eml}");
        assert!(
            eml.contains("Open this link to reset your password."),
            "{eml}"
        );
    }

    #[tokio::test]
    async fn two_sends_write_two_files() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let mailer = outbox_mailer(tmp.path());
        let message = mail("bob@example.com", "Hello", "First and second.");

        // Act
        mailer.send(&message).await.expect("first send");
        mailer.send(&message).await.expect("second send");

        // Assert
        assert_eq!(eml_files(tmp.path()).len(), 2);
    }

    #[tokio::test]
    async fn an_invalid_recipient_is_an_address_error_and_writes_nothing() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("outbox");
        let mailer = outbox_mailer(&dir);

        // Act
        let result = mailer.send(&mail("not an address", "Hi", "Body")).await;

        // Assert
        assert!(matches!(result, Err(MailError::Address(_))), "{result:?}");
        assert!(eml_files(&dir).is_empty());
    }

    #[tokio::test]
    async fn a_recipient_with_an_injected_header_is_rejected() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let mailer = outbox_mailer(tmp.path());

        // Act
        let result = mailer
            .send(&mail("a@example.com\r\nBcc: x@evil.example", "Hi", "Body"))
            .await;

        // Assert
        assert!(matches!(result, Err(MailError::Address(_))), "{result:?}");
        assert!(eml_files(tmp.path()).is_empty());
    }

    #[test]
    fn an_invalid_sender_is_rejected_by_new() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");

        // Act
        let result = Mailer::new(None, "CV Manager <no-at-sign>", tmp.path().to_path_buf());

        // Assert
        assert!(matches!(result, Err(MailError::Address(_))), "{result:?}");
    }

    #[test]
    fn outbox_mode_reports_its_folder() {
        // Arrange
        let mailer = Mailer::new(None, FROM, PathBuf::from("./data/outbox")).expect("mailer");

        // Act
        let described = mailer.describe();

        // Assert
        assert_eq!(mailer.outbox_dir(), Some(Path::new("./data/outbox")));
        assert_eq!(described, "outbox at ./data/outbox");
    }

    #[tokio::test]
    async fn an_smtp_url_is_accepted_without_connecting() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");

        // Act
        let mailer = Mailer::new(
            Some("smtp://127.0.0.1:2525"),
            FROM,
            tmp.path().to_path_buf(),
        );

        // Assert
        let mailer = mailer.expect("smtp mailer");
        assert_eq!(mailer.outbox_dir(), None);
        assert_eq!(mailer.describe(), "SMTP via 127.0.0.1:2525");
    }

    #[tokio::test]
    async fn describe_names_the_smtp_host_but_not_the_credentials() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let mailer = Mailer::new(
            Some("smtp://user:secret@127.0.0.1:2525"),
            FROM,
            tmp.path().to_path_buf(),
        )
        .expect("smtp mailer");

        // Act
        let described = mailer.describe();

        // Assert
        assert!(described.contains("127.0.0.1:2525"), "{described}");
        assert!(!described.contains("secret"), "{described}");
        assert!(!described.contains("user"), "{described}");
    }

    #[tokio::test]
    async fn debug_output_does_not_contain_the_smtp_password() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let mailer = Mailer::new(
            Some("smtps://user:secret@127.0.0.1:2525"),
            FROM,
            tmp.path().to_path_buf(),
        )
        .expect("smtp mailer");

        // Act
        let debug = format!("{mailer:?}");

        // Assert
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("127.0.0.1:2525"), "{debug}");
    }

    #[test]
    fn the_default_smtp_ports_follow_the_scheme() {
        // Arrange
        let urls = [
            "smtps://user:pass@mail.example.com",
            "smtp://mail.example.com",
            "smtp://mail.example.com?tls=required",
            "smtp://[::1]:2525/client.example",
        ];

        // Act
        let endpoints: Vec<String> = urls.iter().map(|url| smtp_endpoint(url)).collect();

        // Assert
        assert_eq!(
            endpoints,
            [
                "mail.example.com:465",
                "mail.example.com:25",
                "mail.example.com:587",
                "[::1]:2525"
            ]
        );
    }

    #[test]
    fn a_malformed_smtp_url_is_a_build_error_without_the_url() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");

        // Act
        let result = Mailer::new(
            Some("ftp://user:secret@mail.example.com"),
            FROM,
            tmp.path().to_path_buf(),
        );

        // Assert
        let error = result.expect_err("ftp is not SMTP");
        assert!(matches!(error, MailError::Build(_)), "{error:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn an_smtp_mailer_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");

        // Act
        let result = Mailer::new(
            Some("smtp://127.0.0.1:2525"),
            FROM,
            tmp.path().to_path_buf(),
        );

        // Assert
        assert!(matches!(result, Err(MailError::Transport(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_subject_with_an_injected_header_does_not_add_a_bcc() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let mailer = outbox_mailer(tmp.path());
        let message = mail(
            "carol@example.com",
            "Hello\r\nBcc: x@evil.example",
            "Plain body.",
        );

        // Act
        mailer.send(&message).await.expect("send");

        // Assert
        let files = eml_files(tmp.path());
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(&files[0]).expect("read eml");
        assert!(
            !header_names(&eml).iter().any(|name| name == "bcc"),
            "{eml}"
        );
        assert!(!eml.contains("\r\nBcc:"), "{eml}");
    }
}
