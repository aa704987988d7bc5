//! The CLI front door: clap definitions next to thin `run` functions over `service`.
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::context::AppContext;
use crate::error::Error;

pub mod api_keys;
pub mod audit;
pub mod completions;
pub mod deletion;
pub mod mail;
pub mod migrate;
pub mod output;
pub mod passkeys;
pub mod saml;
pub mod scim;
pub mod serve;
pub mod sessions;
pub mod shapes;
pub mod status;
pub mod users;
pub mod verification;

pub use output::Output;

/// authctl: an authentication service and the operator's tool for its database.
#[derive(Debug, Parser)]
#[command(
    name = "authctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db.
    #[arg(
        long,
        global = true,
        env = "AUTHCTL_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// A TOML configuration file (default: ~/.config/authctl/authctl.toml, then
    /// /etc/authctl/authctl.toml, the first that exists).
    #[arg(long, global = true, env = "AUTHCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format: a table, the table with extra columns, or JSON (docs/cli-json.md).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table, value_name = "FORMAT")]
    pub output: Output,
    /// Print tables without their header line.
    #[arg(long, global = true)]
    pub no_headers: bool,
    /// Do not ask before destructive actions (required when stdin is not a terminal).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (applies pending migrations first).
    ///
    /// Creates the database and the server key file when they are missing, records its
    /// public URL for the CLI, and drains open requests on SIGTERM or Ctrl-C.
    ///
    /// Example: authctl serve --bind 0.0.0.0:3000 --public-url https://login.example.com
    Serve(serve::ServeArgs),
    /// Show or apply database migrations.
    ///
    /// `migrate up` (like `serve`) creates a missing database and server key file; `migrate`
    /// alone shows which migrations are applied.
    ///
    /// Example: authctl migrate up
    Migrate(migrate::MigrateArgs),
    /// List, inspect, create, verify, disable and enable accounts.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// List and revoke users' sessions; prune ended ones.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Email verification.
    #[command(subcommand)]
    Verification(verification::VerificationCommand),
    /// List and revoke users' API keys.
    #[command(subcommand)]
    Apikeys(api_keys::ApiKeysCommand),
    /// List and remove users' passkeys.
    #[command(subcommand)]
    Passkeys(passkeys::PasskeysCommand),
    /// The bearer tokens of SAML providers' SCIM clients.
    #[command(subcommand)]
    Scim(scim::ScimCommand),
    /// The mail outbox: deliver queued mail now, or see how much waits.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Scheduled account deletions and the hard-delete sweep.
    #[command(subcommand)]
    Deletion(deletion::DeletionCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// SAML single sign-on: register identity providers for e-mail domains.
    #[command(subcommand)]
    Saml(saml::SamlCommand),
    /// Print shell completions, or write every shell's file into a folder.
    Completions(completions::CompletionsArgs),
    /// Which configuration, database, server key and public URL commands here use, and
    /// whether the database is reachable and current (exit code 1 when not).
    ///
    /// Example: authctl status -o json | jq .database
    Status(status::StatusArgs),
}

/// `--limit` and `--after` of a listing command.
#[derive(Debug, Args, Clone)]
pub struct PageArgs {
    /// At most N rows (default: 100 when stdout is a terminal, every row otherwise).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Start after the row with this id: the last id of the previous page.
    #[arg(long, value_name = "ID", value_parser = parse_after)]
    pub after: Option<String>,
}

/// `--after`: a row id as the listings print them (a UUID, or an audit event's number);
/// anything else (`null` from a `jq` that found no row, say) is a usage error rather than a
/// listing that starts over.
fn parse_after(raw: &str) -> Result<String, String> {
    if let Ok(id) = uuid::Uuid::parse_str(raw) {
        return Ok(id.hyphenated().to_string());
    }
    if !raw.is_empty() && raw.len() <= 18 && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(raw.to_owned());
    }
    Err(format!(
        "`{raw}` is not a row id: pass the id of the last row the previous page showed"
    ))
}

/// Rows a listing shows on a terminal without `--limit`.
pub const TERMINAL_PAGE: u64 = 100;

impl PageArgs {
    /// The page of a listing whose ids are UUIDs.
    pub fn page(&self) -> anyhow::Result<crate::service::Page> {
        if let Some(after) = &self.after
            && uuid::Uuid::parse_str(after).is_err()
        {
            return Err(usage(format!(
                "--after takes the id of the last row the previous page showed (a UUID), not `{after}`"
            )));
        }
        Ok(self.page_after(self.after.clone()))
    }

    /// The page with `after` already checked by the listing.
    pub fn page_after(&self, after: Option<String>) -> crate::service::Page {
        crate::service::Page {
            limit: self
                .limit
                .or_else(|| std::io::stdout().is_terminal().then_some(TERMINAL_PAGE)),
            after,
        }
    }
}

/// After a page of a listing: says on stderr how to get the next one.
pub fn hint_next(next: Option<&str>, page: &crate::service::Page) {
    if let (Some(next), Some(limit)) = (next, page.limit) {
        eprintln!("note: showing {limit} rows; more follow: add --after {next}");
    }
}

impl GlobalArgs {
    pub fn printer(&self) -> output::Printer {
        output::Printer::new(self.output, !self.no_headers)
    }

    /// Loads the configuration from `--config` (or `AUTHCTL_CONFIG`), else from the first of
    /// the user's and the system's files that exists, else from defaults and the environment.
    pub fn load_config(&self, mut overrides: Overrides) -> anyhow::Result<Config> {
        overrides.database_url = overrides.database_url.or_else(|| self.database_url.clone());
        let file = self.config.clone().or_else(Config::discover);
        Config::load(file.as_deref(), &overrides)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// Loads the configuration, opens the existing database and checks its schema is current.
    /// The operator's commands create nothing: no database, no key file.
    pub async fn context(&self) -> anyhow::Result<AppContext> {
        let mut config = self.load_config(Overrides::default())?;
        config.create_state = false;
        let db = crate::db::connect_existing(&config.database_url).await?;
        crate::db::ensure_migrated(&db).await?;
        agree_on_public_url(&mut config, &db).await?;
        AppContext::new(config, db)
    }
}

/// The CLI builds mailed links, the ACS URL and SP metadata from the URL `serve` runs with (it
/// records it at start): adopted when this configuration does not set `public_url`, checked
/// (a warning on stderr) when it sets another.
async fn agree_on_public_url(
    config: &mut Config,
    db: &sea_orm::DatabaseConnection,
) -> anyhow::Result<()> {
    let Some((recorded, _at)) = crate::service::service_state::public_url(db).await? else {
        return Ok(());
    };
    let Ok(recorded) = url::Url::parse(&recorded) else {
        return Ok(());
    };
    if recorded == config.public_url {
        return Ok(());
    }
    if config.public_url_set {
        eprintln!(
            "warning: public_url here is {} but `authctl serve` runs with {recorded}; links this command mails use {}",
            config.public_url, config.public_url
        );
    } else {
        config.public_url = recorded;
    }
    Ok(())
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let global = self.global;
        let command = match self.command {
            Command::Completions(args) => return args.run(),
            Command::Serve(args) => return args.run(&global).await,
            Command::Migrate(args) => return args.run(&global).await,
            Command::Status(args) => return args.run(&global).await,
            other => other,
        };
        let ctx = global.context().await?;
        let queued_before = mail::queued(&ctx).await;
        let result = match command {
            Command::Users(cmd) => cmd.run(&ctx, &global).await,
            Command::Sessions(cmd) => cmd.run(&ctx, &global).await,
            Command::Verification(cmd) => cmd.run(&ctx, &global).await,
            Command::Apikeys(cmd) => cmd.run(&ctx, &global).await,
            Command::Passkeys(cmd) => cmd.run(&ctx, &global).await,
            Command::Scim(cmd) => cmd.run(&ctx, &global).await,
            Command::Mail(cmd) => return cmd.run(&ctx, &global).await,
            Command::Deletion(cmd) => cmd.run(&ctx, &global).await,
            Command::Audit(cmd) => cmd.run(&ctx, &global).await,
            Command::Saml(cmd) => cmd.run(&ctx, &global).await,
            Command::Completions(_)
            | Command::Serve(_)
            | Command::Migrate(_)
            | Command::Status(_) => Ok(()),
        };
        // Whatever the command queued goes out now (or waits for `serve`), never on stdout.
        mail::flush(&ctx, queued_before).await;
        result
    }
}

/// Exit codes, documented in docs/operations.md: 0 done, 1 failed, 2 usage (clap's own),
/// 3 not found.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_FOUND: u8 = 3;

/// What the operator named does not exist (exit code 3), with a sentence saying where to look.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// A `NotFound` error with its sentence.
pub fn not_found(sentence: impl Into<String>) -> anyhow::Error {
    NotFound(sentence.into()).into()
}

/// An argument clap accepted that the command cannot use (exit code 2, as clap's own).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A `Usage` error with its sentence.
pub fn usage(sentence: impl Into<String>) -> anyhow::Error {
    Usage(sentence.into()).into()
}

/// The exit code for an error a command returned.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<NotFound>().is_some() {
        EXIT_NOT_FOUND
    } else if err.downcast_ref::<Usage>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILED
    }
}

/// Turns a service error into a sentence an operator can act on.
pub fn explain(err: Error, who: &str) -> anyhow::Error {
    match err {
        Error::NotFound("user") if who.contains('@') => not_found(format!(
            "no account has the address {who}; `authctl users list` shows every account"
        )),
        Error::NotFound("user") => not_found(format!(
            "no account has the id {who}; `authctl users list` shows every account"
        )),
        other => anyhow::Error::from(other),
    }
}

/// Looks a user up for a CLI command by address or by id, with a helpful message when there
/// is none.
pub async fn find_user(
    ctx: &AppContext,
    email_or_id: &str,
) -> anyhow::Result<crate::entity::user::Model> {
    let found = if email_or_id.contains('@') {
        crate::service::users::get_by_email(ctx, email_or_id).await
    } else {
        crate::service::users::get(ctx, &normal_id(email_or_id)).await
    };
    found.map_err(|e| explain(e, email_or_id))
}

/// An id as the database holds it: a UUID in lower case with hyphens, whatever its spelling.
pub fn normal_id(raw: &str) -> String {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.hyphenated().to_string())
        .unwrap_or_else(|_| raw.to_owned())
}
