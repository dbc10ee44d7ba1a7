//! Command-line flags and `CVM_*` environment variables (clap), for every subcommand.
//!
//! The configuration is parsed once in `main` and passed down explicitly; nothing reads a global.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// CV Manager: self-hosted CVs and user management.
///
/// With no subcommand, `cvm` runs the web server (`cvm serve`).
#[derive(Debug, Parser)]
#[command(name = "cvm", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Server settings when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// The subcommands of `cvm`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve(Box<ServeConfig>),
    /// Create a superuser account (works while the server runs).
    CreateSuperuser(CreateSuperuserArgs),
    /// Empty the read models and rebuild them from the event log.
    RebuildProjections(RebuildArgs),
    /// Write everything held about one user to a zip archive (their right of access).
    ExportUser(ExportUserArgs),
    /// Erase one user: their personal data becomes unrecoverable; the log keeps the facts.
    EraseUser(EraseUserArgs),
    /// Replace the master key and re-wrap every data key with it (works while the server runs).
    RotateMasterKey(RotateArgs),
    /// Fill an empty data directory with realistic demo or benchmark data.
    Seed(SeedArgs),
}

/// Where the data lives; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DataConfig {
    /// Directory for the database and uploaded files (created if missing).
    #[arg(long, env = "CVM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// File holding the master key that protects every person's data key (created with a new
    /// random key at the first start). Default: `<data dir>/master.key`. Keep a backup of it
    /// apart from the database, and in production keep it outside the data directory: without
    /// it the personal data in the database cannot be read.
    #[arg(long, env = "CVM_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl DataConfig {
    /// The event log and read models.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("cvm.db")
    }

    /// The master key file.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Where mail goes when no SMTP server is configured.
    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Sessions live in their own file: they are written on most requests and need none of the
    /// event log's durability, so they never queue behind its `synchronous=FULL` commits.
    pub fn sessions_path(&self) -> PathBuf {
        self.data_dir.join("sessions.db")
    }
}

/// Settings of the web server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub data: DataConfig,

    /// Address and port to listen on.
    #[arg(long, env = "CVM_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// The URL people use to reach the server. An https URL turns on `Secure` cookies; its
    /// origin is the one cross-site checks accept.
    #[arg(long, env = "CVM_PUBLIC_URL", default_value = "http://127.0.0.1:3000")]
    pub public_url: String,

    /// A session ends after this long without a request (e.g. 90s, 15m, 2h, 7d).
    #[arg(long, env = "CVM_SESSION_IDLE", default_value = "2h", value_parser = parse_duration)]
    pub session_idle: Duration,

    /// A session ends this long after login, however active it is.
    #[arg(long, env = "CVM_SESSION_ABSOLUTE", default_value = "7d", value_parser = parse_duration)]
    pub session_absolute: Duration,

    /// How long logins stay refused after too many failures (5 per account or 20 per client IP
    /// within this window).
    #[arg(long, env = "CVM_LOGIN_COOLDOWN", default_value = "15m", value_parser = parse_duration)]
    pub login_cooldown: Duration,

    /// Comma-separated IPs of reverse proxies whose `X-Forwarded-For` is believed. Empty: the
    /// peer address is the client.
    #[arg(long, env = "CVM_TRUSTED_PROXIES", value_delimiter = ',', num_args = 0..)]
    pub trusted_proxies: Vec<IpAddr>,

    /// When expired sessions and password-reset links are purged (cron with seconds).
    #[arg(
        long,
        env = "CVM_SESSION_PURGE_SCHEDULE",
        default_value = "0 */15 * * * *"
    )]
    pub session_purge_schedule: String,

    /// When the read models' lag behind the event log is checked (cron with seconds).
    #[arg(long, env = "CVM_LAG_CHECK_SCHEDULE", default_value = "30 * * * * *")]
    pub lag_check_schedule: String,

    /// When the daily analytics roll-up runs (cron with seconds, UTC).
    #[arg(long, env = "CVM_ANALYTICS_SCHEDULE", default_value = "0 5 0 * * *")]
    pub analytics_schedule: String,

    /// Largest profile picture accepted, in bytes (larger uploads get 413).
    #[arg(long, env = "CVM_AVATAR_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub avatar_max_bytes: usize,

    /// How long an emailed password-reset link stays valid.
    #[arg(long, env = "CVM_PASSWORD_RESET_TTL", default_value = "1h", value_parser = parse_duration)]
    pub password_reset_ttl: Duration,

    /// SMTP server for outgoing mail, e.g. `smtps://user:password@mail.example.com` or
    /// `smtp://localhost:25`. Unset: mail is written to `<data dir>/outbox/` as .eml files.
    #[arg(long, env = "CVM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of outgoing mail.
    #[arg(
        long,
        env = "CVM_MAIL_FROM",
        default_value = "CV Manager <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// Longest time a request may take before it is answered with 408; also bounds shutdown.
    #[arg(long, env = "CVM_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

impl ServeConfig {
    /// Whether cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        let url = self.public_url.trim_end_matches('/');
        match url.find("://") {
            Some(scheme_end) => {
                let rest = &url[scheme_end + 3..];
                let host_end = rest.find('/').unwrap_or(rest.len());
                format!("{}{}", &url[..scheme_end + 3], &rest[..host_end])
            }
            None => url.to_owned(),
        }
    }

    /// Settings for tests and embedding: everything default, data under `data_dir`, any port.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Cli::parse_from(["cvm"]).serve;
        config.data.data_dir = data_dir.into();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }
}

/// `create-superuser` arguments.
#[derive(Debug, Args)]
pub struct CreateSuperuserArgs {
    #[command(flatten)]
    pub data: DataConfig,

    /// The new account's username.
    #[arg(long)]
    pub username: String,

    /// The new account's email.
    #[arg(long)]
    pub email: String,

    /// The password, for non-interactive use; otherwise it is asked for at a prompt.
    #[arg(
        long = "password-from-env",
        env = "CVM_SUPERUSER_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

/// `rebuild-projections` arguments.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub data: DataConfig,

    /// Do not touch the live tables: rebuild into a scratch database, compare, name any table
    /// that differs and exit non-zero if one does.
    #[arg(long, conflicts_with = "only")]
    pub verify: bool,

    /// Rebuild only this read model (users, profiles, password_resets, cvs, analytics, audit);
    /// the others are left as they are.
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
}

/// `export-user` arguments.
#[derive(Debug, Args)]
pub struct ExportUserArgs {
    #[command(flatten)]
    pub data: DataConfig,
    /// The user: their email address or id.
    #[arg(long)]
    pub user: String,
    /// Where to write the archive (default: `cv-manager-<username>-<date>.zip` here).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `erase-user` arguments.
#[derive(Debug, Args)]
pub struct EraseUserArgs {
    #[command(flatten)]
    pub data: DataConfig,
    /// The user: their email address or id.
    #[arg(long)]
    pub user: String,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `seed` arguments. The superuser is `admin@example.com` with the password
/// `seeded chief passphrase`; users are `user000001@example.com`, … with `seeded member
/// passphrase`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub data: DataConfig,
    /// Ordinary users to make (a superuser comes on top).
    #[arg(long, default_value_t = 1_000)]
    pub users: u64,
    /// CVs per user, each with basics, work, education, skills, languages and an edit.
    #[arg(long, default_value_t = 2)]
    pub cvs_per_user: u32,
    /// Days the history spreads over, ending now.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Logins per user after signing up.
    #[arg(long, default_value_t = 3)]
    pub logins_per_user: u32,
    /// Seed of the pseudo-random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `rotate-master-key` arguments.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub data: DataConfig,
}

/// Parses `90s`, `15m`, `2h`, `7d` (anything humantime accepts).
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{error} (write e.g. 90s, 15m, 2h, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_with_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("7").is_err());
    }

    #[test]
    fn an_https_public_url_means_secure_cookies() {
        let mut config = ServeConfig::for_data_dir("/tmp/x");
        assert!(!config.secure_cookies());
        config.public_url = "https://cv.example.com/".into();
        assert!(config.secure_cookies());
        assert_eq!(config.public_origin(), "https://cv.example.com");
    }

    #[test]
    fn the_public_origin_drops_any_path() {
        let mut config = ServeConfig::for_data_dir("/tmp/x");
        config.public_url = "http://localhost:8080/cv/".into();
        assert_eq!(config.public_origin(), "http://localhost:8080");
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::parse_from(["cvm"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:3000");
    }
}
