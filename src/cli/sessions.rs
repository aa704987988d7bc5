//! `authctl sessions …`
use crate::context::AppContext;
use crate::service::sessions;
use crate::service::{Actor, janitor};
use clap::Subcommand;

use super::output;
use super::shapes::{Change, Session};
use super::{GlobalArgs, PageArgs, find_user, hint_next};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List an account's live sessions, newest first.
    ///
    /// Example: authctl sessions list --user alice@example.com
    List {
        /// The account, by address or id.
        #[arg(long, value_name = "EMAIL|ID")]
        user: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first).
    ///
    /// The session fails on its very next request, on every instance of the service.
    ///
    /// Example: authctl sessions revoke --user alice@example.com --all --yes
    Revoke {
        /// The session id (from `authctl sessions list`).
        #[arg(required_unless_present = "user", conflicts_with_all = ["user", "all"])]
        session_id: Option<String>,
        /// The account whose sessions end (with --all), by address or id.
        #[arg(long, value_name = "EMAIL|ID", requires = "all")]
        user: Option<String>,
        /// End every session of --user.
        #[arg(long, requires = "user")]
        all: bool,
    },
    /// Delete ended sessions, spent verification tokens and stale throttle rows now.
    ///
    /// `serve` does this by itself every janitor.interval; this is for a maintenance window.
    ///
    /// Example: authctl sessions prune -o json
    Prune,
}

impl SessionsCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let now = ctx.now();
        match self {
            Self::List { user, page } => {
                let user = find_user(ctx, &user).await?;
                let page = page.page()?;
                let list = sessions::list_for_user(ctx, &user.id, None, now).await?;
                let listed = page.of_newest(list, |s| &s.id);
                let shown: Vec<Session> = listed
                    .items
                    .into_iter()
                    .map(|s| Session::new(&user.id, s))
                    .collect();
                global.printer().list(&shown)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
            Self::Revoke {
                session_id: Some(id),
                ..
            } => {
                let revoked = sessions::revoke(ctx, &Actor::cli(), None, &super::normal_id(&id), None, now).await.map_err(|e| match e {
                    crate::error::Error::NotFound(_) => {
                        super::not_found(format!("no session has the id {id}; `authctl sessions list --user EMAIL` shows them"))
                    }
                    other => other.into(),
                })?;
                let change = Change::new("sessions.revoke", "session", vec![revoked.id.clone()])
                    .detail("userId", &revoked.user_id);
                global.printer().changed(
                    &change,
                    &format!(
                        "Session {} ({}) is revoked.",
                        revoked.id, revoked.device_name
                    ),
                )
            }
            Self::Revoke {
                user: Some(email),
                all: true,
                ..
            } => {
                let user = find_user(ctx, &email).await?;
                output::confirm(&format!("End every session of {}?", user.email), global.yes)?;
                let ended = sessions::revoke_all(ctx, &Actor::cli(), &user.id, now).await?;
                let change = Change::new("sessions.revoke", "session", ended.clone())
                    .detail("userId", &user.id);
                global.printer().changed(
                    &change,
                    &format!("{} session(s) of {} ended.", ended.len(), user.email),
                )
            }
            Self::Revoke { .. } => anyhow::bail!("give a SESSION_ID, or --user EMAIL --all"),
            Self::Prune => {
                let r = janitor::prune(ctx, now, None).await?;
                let total = r.sessions
                    + r.verification_tokens
                    + r.throttles
                    + r.deletion_events
                    + r.saml
                    + r.mails;
                let change = Change::counted("sessions.prune", "row", total)
                    .detail("sessions", r.sessions)
                    .detail("verificationTokens", r.verification_tokens)
                    .detail("throttles", r.throttles)
                    .detail("deletionEvents", r.deletion_events)
                    .detail("saml", r.saml)
                    .detail("mails", r.mails)
                    .detail("passkeyCeremonies", r.passkey_ceremonies);
                global.printer().changed(
                    &change,
                    &format!(
                        "Removed {} ended session(s), {} spent verification token(s), {} stale throttle row(s), {} expired deletion event(s), {} expired SAML request(s) and replay entries, {} old mail(s), {} expired passkey ceremonies.",
                        r.sessions, r.verification_tokens, r.throttles, r.deletion_events, r.saml, r.mails, r.passkey_ceremonies
                    ),
                )
            }
        }
    }
}
