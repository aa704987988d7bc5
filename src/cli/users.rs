//! `authctl users …`
use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use secrecy::SecretString;

use crate::context::AppContext;
use crate::entity::user;
use crate::service::users::{self, NewUser};
use crate::service::{Actor, history, identities, passkeys, roles, signup};

use super::output;
use super::shapes::{LoginAttempt, User};
use super::{GlobalArgs, PageArgs, explain, find_user, hint_next};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List accounts, oldest first.
    ///
    /// On a terminal the first 100 are shown and stderr names the `--after` id of the next
    /// page; through a pipe every account is printed.
    ///
    /// Example: authctl users list --unverified -o json | jq -r '.[].email'
    List {
        /// Only accounts whose address is not verified.
        #[arg(long)]
        unverified: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one account, by address or by id.
    ///
    /// Example: authctl users show alice@example.com -o json
    Show {
        #[arg(value_name = "EMAIL|ID")]
        user: String,
    },
    /// Create an account. Prompts for a password on a terminal.
    ///
    /// Without --verified the address is mailed a verification link, as at signup.
    ///
    /// Example: printf '%s\n' "$PW" | authctl users create bob@example.com --name Bob --password-stdin
    Create {
        #[arg(value_name = "EMAIL")]
        email: String,
        /// Display name.
        #[arg(long, default_value = "", value_name = "TEXT")]
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
    ///
    /// Example: authctl users verify alice@example.com
    Verify {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
    },
    /// Disable an account; its sessions end at once. Asks first (or pass --yes).
    ///
    /// A disabled account cannot sign in by any method until `users enable`. Disabling an
    /// account that is already disabled changes and records nothing.
    ///
    /// Example: authctl users disable alice@example.com --yes
    Disable {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
    },
    /// Enable a disabled account.
    ///
    /// Example: authctl users enable alice@example.com
    Enable {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
    },
    /// Show an account's login history, newest first.
    ///
    /// Example: authctl users history alice@example.com --limit 5
    History {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
        /// How many attempts to show.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: u64,
    },
}

/// The account's JSON shape, roles and SSO identities included.
async fn shape(ctx: &AppContext, u: &user::Model) -> anyhow::Result<User> {
    let factors = users::factors(&ctx.db, u).await?;
    Ok(User::new(
        u,
        roles::roles_of(&ctx.db, &u.id).await?,
        identities::identities_of(&ctx.db, &u.id).await?,
        factors.into_iter().map(str::to_owned).collect(),
    ))
}

/// The shapes of a page of accounts, with two queries for all their roles and identities.
async fn shapes(ctx: &AppContext, list: &[user::Model]) -> anyhow::Result<Vec<User>> {
    let ids: Vec<String> = list.iter().map(|u| u.id.clone()).collect();
    let mut roles = roles::roles_of_many(&ctx.db, &ids).await?;
    let mut sso = identities::identities_of_many(&ctx.db, &ids).await?;
    let with_passkeys = passkeys::users_with_passkeys(&ctx.db, &ids).await?;
    Ok(list
        .iter()
        .map(|u| {
            let sso = sso.remove(&u.id).unwrap_or_default();
            let factors = [
                ("password", u.password_hash.is_some()),
                ("totp", u.totp_enabled_at.is_some()),
                ("passkey", with_passkeys.contains(&u.id)),
                ("sso", !sso.is_empty()),
            ]
            .into_iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| name.to_owned())
            .collect();
            User::new(u, roles.remove(&u.id).unwrap_or_default(), sso, factors)
        })
        .collect())
}

async fn show(ctx: &AppContext, global: &GlobalArgs, u: &user::Model) -> anyhow::Result<()> {
    let user = shape(ctx, u).await?;
    global.printer().show(&user, user.fields())
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
            Self::List { unverified, page } => {
                let page = page.page()?;
                let listed = users::list_page(ctx, unverified, &page).await?;
                global.printer().list(&shapes(ctx, &listed.items).await?)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
            Self::Show { user } => show(ctx, global, &find_user(ctx, &user).await?).await,
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
                show(ctx, global, &user).await
            }
            Self::Verify { email } => {
                let user = find_user(ctx, &email).await?;
                let user = users::mark_verified(ctx, &actor, &user.email, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                show(ctx, global, &user).await
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
                show(ctx, global, &user).await
            }
            Self::History { email, limit } => {
                let user = find_user(ctx, &email).await?;
                let events = history::list(&ctx.db, &user.id, limit).await?;
                let attempts: Vec<LoginAttempt> = events.into_iter().map(Into::into).collect();
                global.printer().list(&attempts)
            }
            Self::Enable { email } => {
                let user = find_user(ctx, &email).await?;
                let (user, changed) = users::enable(ctx, &actor, &user.email, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                if !changed {
                    eprintln!("{} was not disabled; nothing changed.", user.email);
                }
                show(ctx, global, &user).await
            }
        }
    }
}
