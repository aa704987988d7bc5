//! The `authctl` binary: parse arguments, start logging, run, turn an error into an exit code.
use clap::Parser;
use tracing_subscriber::EnvFilter;

use authctl::cli::output::StdoutClosed;
use authctl::cli::{Cli, Command, exit_code};

/// See Cargo.toml: large freed blocks go back to the system, small ones are cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("AUTHCTL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| {
            EnvFilter::new(format!("{default_level},sqlx=warn,sea_orm_migration=warn"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal only; not into journald, files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `authctl users list | head -1`: the reader has what it wanted.
        Err(err) if err.downcast_ref::<StdoutClosed>().is_some() => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(exit_code(&err))
        }
    }
}
