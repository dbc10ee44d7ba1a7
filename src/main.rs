//! `cvm`: parses the command line and runs the chosen subcommand.

use clap::Parser;

/// mimalloc instead of the system allocator: replaying the log allocates and frees millions of
/// small JSON values, and glibc's malloc spent a fifth of a rebuild consolidating free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use cvm::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A rebuild and a seed run statements that take seconds by design (emptying the read
    // models, making the indexes a rebuild deferred): sqlx's slow-statement warnings about
    // them would only alarm. RUST_LOG, when set, decides as usual.
    let default_filter = match cli.command {
        Some(Command::RebuildProjections(_) | Command::Seed(_)) => "info,sqlx::query=error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(Command::CreateSuperuser(args)) => cvm::cli::create_superuser(args).await,
        Some(Command::RebuildProjections(args)) => cvm::cli::rebuild_projections(args).await,
        Some(Command::ExportUser(args)) => cvm::cli::export_user(args).await,
        Some(Command::EraseUser(args)) => cvm::cli::erase_user(args).await,
        Some(Command::RotateMasterKey(args)) => cvm::cli::rotate_master_key(args).await,
        Some(Command::Seed(args)) => cvm::cli::seed(args).await,
    }
}

async fn serve(config: cvm::config::ServeConfig) -> anyhow::Result<()> {
    let public_url = config.public_url.clone();
    let app = cvm::app::Application::build(config).await?;
    tracing::info!(
        "CV Manager listening on http://{} (public URL {public_url})",
        app.local_addr()?
    );
    app.run_until_stopped().await
}
