//! The CLI subcommands other than `serve`: `create-superuser`, `rebuild-projections`,
//! `export-user`, `erase-user` and `rotate-master-key`. All work while the server runs on the
//! same data directory (WAL and a busy timeout).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use anyhow::{bail, Context};
use domain::Role;
use projections::EventMetadata;

use crate::accounts::{Registration, RegistrationError};
use crate::app::{Core, CoreOptions};
use crate::config::{
    CreateSuperuserArgs, EraseUserArgs, ExportUserArgs, RebuildArgs, RotateArgs, SeedArgs,
};
use crate::privacy::ErasureError;

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
    let total = core.log.head().await.context("cannot read the event log")?;
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

/// The account named by `who`: an email address or a user id.
async fn find_user(core: &Core, who: &str) -> anyhow::Result<projections::users::UserRow> {
    let who = who.trim();
    let found = match uuid::Uuid::parse_str(who) {
        Ok(id) => projections::users::find_by_id(&core.pool, id).await?,
        Err(_) => projections::users::find_by_email(&core.pool, &who.to_lowercase()).await?,
    };
    found.with_context(|| format!("no account has the email address or id {who:?}"))
}

/// Writes a user's data archive to a file.
pub async fn export_user(args: ExportUserArgs) -> anyhow::Result<()> {
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    let user = find_user(&core, &args.user).await?;
    let export = core
        .privacy
        .export(user.id)
        .await?
        .context("the account disappeared during the export")?;
    let path = args
        .output
        .unwrap_or_else(|| std::path::PathBuf::from(&export.file_name));
    std::fs::write(&path, &export.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(
        user_id = %user.id,
        file = %path.display(),
        bytes = export.bytes.len(),
        "data archive written"
    );
    Ok(())
}

/// Erases a user after confirmation (typing the username, or `--yes`).
pub async fn erase_user(args: EraseUserArgs) -> anyhow::Result<()> {
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    let user = find_user(&core, &args.user).await?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("erasing cannot be undone: pass --yes to confirm without a terminal");
        }
        let mut stderr = std::io::stderr();
        write!(
            stderr,
            "This erases {} ({}) and every CV of theirs for good. Type the username to confirm: ",
            user.username, user.id
        )?;
        stderr.flush()?;
        let mut typed = String::new();
        std::io::stdin().lock().read_line(&mut typed)?;
        if typed.trim() != user.username {
            bail!("not confirmed: nothing was erased");
        }
    }
    let metadata = EventMetadata::now(format!("cli-{}", uuid::Uuid::new_v4()));
    match core.privacy.erase(&user, None, &metadata).await {
        Ok(erased) => {
            tracing::info!(
                user_id = %user.id,
                pictures = erased.pictures,
                mails = erased.mails,
                "user erased"
            );
            Ok(())
        }
        Err(ErasureError::LastSuperuser) => {
            bail!("this is the last active superuser: promote someone else first")
        }
        Err(error) => Err(anyhow::anyhow!("cannot erase the user: {error}")),
    }
}

/// Replaces the master key (see `projections::event_log::keys`).
pub async fn rotate_master_key(args: RotateArgs) -> anyhow::Result<()> {
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    let file = args.data.master_key_path();
    projections::event_log::keys::finish_interrupted_rotation(&file, &core.pool).await?;
    let keyring = projections::Keyring::open(&file, &core.pool).await?;
    let rotation = keyring.rotate(&core.pool).await?;
    crate::privacy::truncate_write_ahead_log(&core.pool).await;
    tracing::info!(
        from = rotation.from,
        to = rotation.to,
        data_keys = rotation.rewrapped,
        file = %file.display(),
        "master key rotated: back up the new key file"
    );
    Ok(())
}

/// Fills an empty data directory with demo data (see [`crate::seed`]).
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let core = Core::open(&args.data, CoreOptions::defaults()).await?;
    let plan = crate::seed::SeedPlan {
        users: args.users,
        cvs_per_user: args.cvs_per_user,
        days: args.days,
        logins_per_user: args.logins_per_user,
        seed: args.seed,
    };
    let report = crate::seed::seed(&core, plan).await?;
    let seconds = report.write_seconds + report.project_seconds;
    tracing::info!(
        users = report.users,
        cvs = report.cvs,
        events = report.events,
        write_seconds = format!("{:.1}", report.write_seconds),
        project_seconds = format!("{:.1}", report.project_seconds),
        events_per_second = format!("{:.0}", report.events as f64 / seconds.max(1e-9)),
        "seeded: log in as admin@example.com / {} or user000001@example.com / {}",
        crate::seed::ADMIN_PASSWORD,
        crate::seed::USER_PASSWORD,
    );
    Ok(())
}
