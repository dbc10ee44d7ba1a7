//! The CLI subcommands other than `serve`: `create-superuser` and `rebuild-projections`.
//! Both work while the server runs on the same data directory (WAL and a busy timeout).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use anyhow::{bail, Context};
use domain::Role;
use projections::EventMetadata;

use crate::accounts::{Registration, RegistrationError};
use crate::app::{Core, CoreOptions};
use crate::config::{CreateSuperuserArgs, RebuildArgs};

/// Creates a superuser through the same command path as registration (an event is recorded).
pub async fn create_superuser(args: CreateSuperuserArgs) -> anyhow::Result<()> {
    let password = match args.password {
        Some(password) => password,
        None if std::io::stdin().is_terminal() => {
            let password = rpassword::prompt_password("Password: ")?;
            let confirm = rpassword::prompt_password("Password (again): ")?;
            if password != confirm {
                bail!("the two passwords do not match");
            }
            password
        }
        None => bail!(
            "no password: run in a terminal to be asked for one, or set CVM_SUPERUSER_PASSWORD"
        ),
    };
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    let registration = Registration {
        username: args.username,
        email: args.email,
        password: password.clone(),
        password_confirm: password,
    };
    let metadata = EventMetadata::now(format!("cli-{}", uuid::Uuid::new_v4()));
    match core
        .accounts
        .register(&registration, Role::Superuser, &metadata)
        .await
    {
        Ok(id) => {
            tracing::info!(user_id = %id, "superuser created");
            Ok(())
        }
        Err(RegistrationError::Invalid(errors)) => {
            let details: Vec<String> = errors
                .into_iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect();
            bail!("cannot create the superuser:\n  {}", details.join("\n  "))
        }
        Err(RegistrationError::Internal(error)) => Err(error),
    }
}

/// Rebuilds the read models from the log, or with `--verify` compares a rebuild with them.
pub async fn rebuild_projections(args: RebuildArgs) -> anyhow::Result<()> {
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    if args.verify {
        let differences = core.projector.verify().await?;
        if differences.is_empty() {
            tracing::info!("read models match a rebuild of the event log");
            return Ok(());
        }
        for difference in &differences {
            tracing::error!(
                table = difference.table,
                only_live = difference.only_live,
                only_rebuilt = difference.only_rebuilt,
                "read model differs from a rebuild"
            );
        }
        let tables: Vec<&str> = differences.iter().map(|d| d.table.as_str()).collect();
        bail!(
            "read models differ from the event log: {}",
            tables.join(", ")
        );
    }
    if let Some(name) = args.only.as_deref() {
        let started = Instant::now();
        let events = core.projector.rebuild_only(name).await?;
        tracing::info!(
            read_model = name,
            events,
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "read model rebuilt"
        );
        return Ok(());
    }
    let total = projections::EventLog::new(core.pool.clone())
        .head()
        .await
        .context("cannot read the event log")?;
    let started = Instant::now();
    let bar = ProgressBar::new(total.max(0) as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding read models [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let applied = core
        .projector
        .rebuild(|done| bar.set_position(done))
        .await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        events = applied,
        seconds = format!("{seconds:.2}"),
        events_per_second = format!("{:.0}", applied as f64 / seconds.max(1e-9)),
        "read models rebuilt"
    );
    Ok(())
}
