//! `authctl users …`
use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use secrecy::SecretString;

use crate::context::AppContext;
use crate::entity::user;
use crate::service::users::{self, NewUser, UserView};
use crate::service::{Actor, history, identities, signup};

use super::output::{self, Output};
use super::{GlobalArgs, explain, find_user};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List accounts.
    List {
        /// Only accounts whose address is not verified.
        #[arg(long)]
        unverified: bool,
    },
    /// Show one account, by address or by id.
    Show {
        #[arg(value_name = "EMAIL|ID")]
        user: String,
    },
    /// Create an account. Prompts for a password on a terminal.
    Create {
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Mark the address as verified. Without it, the address is mailed a verification link.
        #[arg(long)]
        verified: bool,
        /// Read the password from the first line of stdin (for scripts).
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// Create the account without a password (it cannot sign in with one until it gets one).
        #[arg(long)]
        no_password: bool,
    },
    /// Mark an address as verified without a link.
    Verify { email: String },
    /// Disable an account; its sessions end at once. Asks first (or pass --yes).
    Disable { email: String },
    /// Enable a disabled account.
    Enable { email: String },
    /// Show an account's login history, newest first.
    History {
        email: String,
        /// How many attempts to show.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

fn rows(u: &user::Model) -> Vec<(&'static str, String)> {
    vec![
        ("id", u.id.clone()),
        ("email", u.email.clone()),
        ("name", u.name.clone()),
        ("verified", output::opt_time(u.email_verified_at)),
        ("disabled", output::opt_time(u.disabled_at)),
        (
            "password",
            if u.password_hash.is_some() {
                "set"
            } else {
                "none"
            }
            .into(),
        ),
        ("created", output::time(u.created_at)),
    ]
}

async fn show(ctx: &AppContext, output: Output, u: &user::Model) -> anyhow::Result<()> {
    let view = UserView::with_roles(u, &ctx.db).await?;
    let mut rows = rows(u);
    let roles = view.roles.clone().unwrap_or_default();
    rows.push((
        "roles",
        if roles.is_empty() {
            "-".into()
        } else {
            roles.join(", ")
        },
    ));
    let identities = identities::identities_of(&ctx.db, &u.id).await?;
    if !identities.is_empty() {
        rows.push(("sso", identities.join("; ")));
    }
    output::record(output, &view, rows)
}

fn read_password(password_stdin: bool, no_password: bool) -> anyhow::Result<Option<SecretString>> {
    if no_password {
        return Ok(None);
    }
    if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            anyhow::bail!("--password-stdin was given but stdin held no password");
        }
        return Ok(Some(SecretString::from(pw)));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password given: pass --password-stdin (and pipe it in) or --no-password");
    }
    let pw = dialoguer::Password::new()
        .with_prompt("Password")
        .with_confirmation("Repeat password", "the passwords do not match")
        .interact()?;
    Ok(Some(SecretString::from(pw)))
}

impl UsersCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let actor = Actor::cli();
        let now = ctx.now();
        match self {
            Self::List { unverified } => {
                let list = users::list(ctx, unverified).await?;
                match global.output {
                    Output::Json => {
                        output::json(&list.iter().map(UserView::from).collect::<Vec<_>>())
                    }
                    Output::Table => output::table(
                        &["email", "name", "verified", "disabled", "created", "id"],
                        list.iter()
                            .map(|u| {
                                vec![
                                    u.email.clone(),
                                    u.name.clone(),
                                    if u.email_verified_at.is_some() {
                                        "yes"
                                    } else {
                                        "no"
                                    }
                                    .into(),
                                    if u.disabled_at.is_some() { "yes" } else { "no" }.into(),
                                    output::time(u.created_at),
                                    u.id.clone(),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
            Self::Show { user } => show(ctx, global.output, &find_user(ctx, &user).await?).await,
            Self::Create {
                email,
                name,
                verified,
                password_stdin,
                no_password,
            } => {
                let password = read_password(password_stdin, no_password)?;
                let new = NewUser {
                    email: email.clone(),
                    name,
                    password,
                    verified,
                };
                let user = signup::by_operator(ctx, &actor, new, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                show(ctx, global.output, &user).await
            }
            Self::Verify { email } => {
                let user = users::mark_verified(ctx, &actor, &email, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                show(ctx, global.output, &user).await
            }
            Self::Disable { email } => {
                let user = find_user(ctx, &email).await?;
                if user.disabled_at.is_none() {
                    output::confirm(
                        &format!("Disable {} and end all of its sessions?", user.email),
                        global.yes,
                    )?;
                }
                let (user, ended) = users::disable(ctx, &actor, &user.email, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                match ended {
                    Some(ended) => {
                        eprintln!("{} is disabled; {ended} session(s) ended.", user.email)
                    }
                    None => eprintln!("{} was already disabled; nothing changed.", user.email),
                }
                show(ctx, global.output, &user).await
            }
            Self::History { email, limit } => {
                let user = find_user(ctx, &email).await?;
                let events = history::list(&ctx.db, &user.id, limit).await?;
                match global.output {
                    Output::Json => output::json(&events),
                    Output::Table => output::table(
                        &["time", "result", "method", "ip", "device", "reason"],
                        events
                            .iter()
                            .map(|e| {
                                vec![
                                    output::time(e.at),
                                    if e.success { "success" } else { "failure" }.into(),
                                    e.method.clone(),
                                    e.ip.clone().unwrap_or_else(|| "-".into()),
                                    e.device_name.clone(),
                                    e.reason.clone().unwrap_or_else(|| "-".into()),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
            Self::Enable { email } => {
                let (user, changed) = users::enable(ctx, &actor, &email, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                if !changed {
                    eprintln!("{} was not disabled; nothing changed.", user.email);
                }
                show(ctx, global.output, &user).await
            }
        }
    }
}
