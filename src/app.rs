//! Building and running the server: open the databases, catch the read models up, assemble the
//! router, listen, and shut down gracefully on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use domain::UserServices;
use projections::{EventLog, Keyring, Projector};
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_sessions::CachingSessionStore;
use tower_sessions_moka_store::MokaStore;
use tower_sessions_sqlx_store::SqliteStore;

use crate::accounts::{Accounts, ResetLinks};
use crate::administration::Administration;
use crate::avatars::{AvatarLimits, AvatarStore};
use crate::commands::CommandBus;
use crate::config::{DataConfig, ServeConfig};
use crate::cvs::Cvs;
use crate::http::templates::Templates;
use crate::http::{self, AppState};
use crate::jobs::Jobs;
use crate::mail::Mailer;
use crate::passwords::Argon2Hasher;
use crate::privacy::Privacy;
use crate::profiles::Profiles;
use crate::throttle::LoginThrottle;

/// How many argon2 hashes may run at once (each takes 19 MiB and a core for ~50 ms): one core
/// fewer than the machine has, at least one and at most four. Further logins wait their turn,
/// so a login flood cannot take every core from the pages other people are loading (measured
/// with bench/: on 2 cores, 2 permits let 16 connections on /login push the CV page's p99 past
/// 50 ms).
fn concurrent_hashes() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_sub(1).clamp(1, 4)
}

/// Settings of the use cases that the server and the CLI share.
#[derive(Debug, Clone)]
pub struct CoreOptions {
    /// How long logins stay refused after too many failures.
    pub login_cooldown: Duration,
    /// How long a password-reset link is valid.
    pub password_reset_ttl: Duration,
    /// The URL links in emails start with.
    pub public_url: String,
    /// SMTP server, or `None` for the outbox folder.
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail.
    pub mail_from: String,
    /// Largest profile picture accepted.
    pub avatar_max_bytes: usize,
}

impl From<&ServeConfig> for CoreOptions {
    fn from(config: &ServeConfig) -> Self {
        Self {
            login_cooldown: config.login_cooldown,
            password_reset_ttl: config.password_reset_ttl,
            public_url: config.public_url.clone(),
            smtp_url: config.smtp_url.clone(),
            mail_from: config.mail_from.clone(),
            avatar_max_bytes: config.avatar_max_bytes,
        }
    }
}

impl CoreOptions {
    /// The server's defaults (what the CLI uses).
    pub fn defaults() -> Self {
        Self::from(&ServeConfig::for_data_dir("."))
    }
}

/// The write side and read side over one database, shared by the server and the CLI.
pub struct Core {
    /// The event log and read-model database.
    pub pool: SqlitePool,
    /// The event log (sealing and opening personal data).
    pub log: EventLog,
    /// Applies the log to the read models.
    pub projector: Arc<Projector>,
    /// Runs commands on aggregates.
    pub commands: Arc<CommandBus>,
    /// Account use cases.
    pub accounts: Arc<Accounts>,
    /// Profile use cases.
    pub profiles: Arc<Profiles>,
    /// CV use cases.
    pub cvs: Arc<Cvs>,
    /// What superusers do to accounts and CVs.
    pub administration: Arc<Administration>,
    /// Export and erasure of personal data.
    pub privacy: Arc<Privacy>,
}

impl Core {
    /// Opens (creating and migrating) the database under the data directory and brings the
    /// read models up to date with the log.
    pub async fn open(data: &DataConfig, options: CoreOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&data.data_dir)
            .with_context(|| format!("cannot create data directory {}", data.data_dir.display()))?;
        let pool = projections::database::open(&data.database_path())
            .await
            .context("cannot open the database")?;
        let keyring = Keyring::open(&data.master_key_path(), &pool)
            .await
            .context("cannot open the master key")?;
        let log = EventLog::new(pool.clone(), Arc::new(keyring));
        // A database from before encryption: seal its personal data now, before anything
        // reads it, and leave no plain copy in the write-ahead log.
        let sealed = log
            .seal_plaintext_events()
            .await
            .context("cannot encrypt the personal data of older events")?;
        if sealed > 0 {
            crate::privacy::truncate_write_ahead_log(&pool).await;
            tracing::info!(
                events = sealed,
                "encrypted the personal data of older events"
            );
        }
        let projector = Arc::new(Projector::new(log.clone()));
        let caught_up = projector.catch_up().await?;
        if caught_up > 0 {
            tracing::info!(
                events = caught_up,
                "read models caught up with the event log"
            );
        }
        // Names claimed by registrations that a crash cut short are free again (claims younger
        // than a few seconds may belong to a registration running in another process).
        let released = projections::claims::release_orphans(
            &pool,
            time::OffsetDateTime::now_utc() - time::Duration::seconds(5),
        )
        .await?;
        if released > 0 {
            tracing::info!(
                claims = released,
                "released names of registrations that never finished"
            );
        }
        let hasher = Argon2Hasher::new(concurrent_hashes())?;
        let commands = Arc::new(CommandBus::new(
            log.clone(),
            UserServices::new(Arc::new(hasher.clone())),
            projector.clone(),
        ));
        let mailer = Mailer::new(
            options.smtp_url.as_deref(),
            &options.mail_from,
            data.outbox_path(),
        )
        .context("invalid mail settings")?;
        tracing::debug!(mail = mailer.describe(), "mail transport");
        let accounts = Arc::new(Accounts::new(
            pool.clone(),
            commands.clone(),
            hasher,
            LoginThrottle::new(options.login_cooldown),
            ResetLinks {
                mailer,
                public_url: options.public_url.clone(),
                ttl: options.password_reset_ttl,
            },
        ));
        let profiles = Arc::new(Profiles::new(
            pool.clone(),
            commands.clone(),
            AvatarStore::new(&data.data_dir),
            AvatarLimits {
                max_bytes: options.avatar_max_bytes,
                ..AvatarLimits::default()
            },
        ));
        let cvs = Arc::new(Cvs::new(log.clone(), commands.clone()));
        let administration = Arc::new(Administration::new(pool.clone(), commands.clone()));
        let privacy = Arc::new(Privacy::new(
            pool.clone(),
            administration.clone(),
            &data.data_dir,
            data.outbox_path(),
        ));
        Ok(Self {
            pool,
            log,
            projector,
            commands,
            accounts,
            profiles,
            cvs,
            administration,
            privacy,
        })
    }
}

/// A built server, ready to run.
pub struct Application {
    router: Router,
    listener: TcpListener,
    jobs: Jobs,
    core: Core,
}

impl Application {
    /// Opens everything and binds the listening socket (port 0 picks a free port).
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let (router, core, session_store) = build_router(config.clone()).await?;
        let jobs = Jobs::start(
            &config,
            session_store,
            core.pool.clone(),
            core.projector.clone(),
        )
        .await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self {
            router,
            listener,
            jobs,
            core,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish (each is bounded by
    /// the request timeout) and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        self.jobs.stop().await;
        self.core.pool.close().await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Sessions kept in memory (least recently used first out; a record is well under 1 KiB).
const SESSIONS_CACHED: u64 = 10_000;

/// The router with its state, over the databases in `config`'s data directory. Tests use this
/// directly (no socket).
pub async fn build_router(config: ServeConfig) -> anyhow::Result<(Router, Core, SqliteStore)> {
    let core = Core::open(&config.data, CoreOptions::from(&config)).await?;
    projections::database::limit_page_caches(&core.pool).await?;
    let session_pool = projections::database::open_sessions(&config.data.sessions_path())
        .await
        .context("cannot open the sessions database")?;
    let session_store = SqliteStore::new(session_pool);
    session_store
        .migrate()
        .await
        .context("cannot migrate the sessions table")?;
    let state = AppState {
        config: Arc::new(config),
        pool: core.pool.clone(),
        log: core.log.clone(),
        accounts: core.accounts.clone(),
        profiles: core.profiles.clone(),
        cvs: core.cvs.clone(),
        administration: core.administration.clone(),
        privacy: core.privacy.clone(),
        templates: Arc::new(Templates::new()),
        memos: Arc::default(),
    };
    Ok((
        // Sessions are read from memory once loaded: the store's query was one of the three
        // or four statements of every page (each a round trip to a sqlx worker thread). Every
        // write still goes to the database first, and a deleted session leaves both.
        http::router(
            state,
            CachingSessionStore::new(MokaStore::new(Some(SESSIONS_CACHED)), session_store.clone()),
        ),
        core,
        session_store,
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(?error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(?error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
