//! `authctl sessions …`
use clap::Subcommand;
use serde_json::json;

use crate::context::AppContext;
use crate::service::sessions::{self, SessionView};
use crate::service::{Actor, janitor};

use super::output::{self, Output};
use super::{GlobalArgs, find_user};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions.
    List {
        /// The account's email address.
        #[arg(long, value_name = "EMAIL")]
        user: String,
    },
    /// Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first).
    Revoke {
        /// The session id (from `authctl sessions list`).
        #[arg(required_unless_present = "user", conflicts_with_all = ["user", "all"])]
        session_id: Option<String>,
        /// The account whose sessions end (with --all).
        #[arg(long, value_name = "EMAIL", requires = "all")]
        user: Option<String>,
        /// End every session of --user.
        #[arg(long, requires = "user")]
        all: bool,
    },
    /// Delete ended sessions, spent verification tokens and stale throttle rows now.
    Prune,
}

fn table(list: &[SessionView]) -> anyhow::Result<()> {
    output::table(
        &[
            "id",
            "device",
            "ip",
            "created",
            "last active",
            "method",
            "flags",
        ],
        list.iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.device_name.clone(),
                    s.ip.clone().unwrap_or_else(|| "-".into()),
                    output::time(s.created_at),
                    output::time(s.last_active_at),
                    s.auth_method.clone(),
                    if s.flags.is_empty() {
                        "-".into()
                    } else {
                        s.flags.join(",")
                    },
                ]
            })
            .collect(),
    )
}

impl SessionsCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let now = ctx.now();
        match self {
            Self::List { user } => {
                let user = find_user(ctx, &user).await?;
                let list = sessions::list_for_user(ctx, &user.id, None, now).await?;
                match global.output {
                    Output::Json => output::json(&list),
                    Output::Table => {
                        table(&list)?;
                        Ok(())
                    }
                }
            }
            Self::Revoke {
                session_id: Some(id),
                ..
            } => {
                let revoked = sessions::revoke(ctx, &Actor::cli(), None, &id, None, now).await.map_err(|e| match e {
                    crate::error::Error::NotFound(_) => {
                        super::not_found(format!("no session has the id {id}; `authctl sessions list --user EMAIL` shows them"))
                    }
                    other => other.into(),
                })?;
                match global.output {
                    Output::Json => output::json(&json!({ "revoked": 1, "sessionId": revoked.id })),
                    Output::Table => {
                        output::say(&format!(
                            "Session {} ({}) is revoked.",
                            revoked.id, revoked.device_name
                        ))?;
                        Ok(())
                    }
                }
            }
            Self::Revoke {
                user: Some(email),
                all: true,
                ..
            } => {
                let user = find_user(ctx, &email).await?;
                output::confirm(&format!("End every session of {}?", user.email), global.yes)?;
                let ended = sessions::revoke_all(ctx, &Actor::cli(), &user.id, now).await?;
                match global.output {
                    Output::Json => output::json(&json!({ "revoked": ended, "email": user.email })),
                    Output::Table => {
                        output::say(&format!("{ended} session(s) of {} ended.", user.email))?;
                        Ok(())
                    }
                }
            }
            Self::Revoke { .. } => anyhow::bail!("give a SESSION_ID, or --user EMAIL --all"),
            Self::Prune => {
                let report = janitor::prune(ctx, now, None).await?;
                match global.output {
                    Output::Json => output::json(&report),
                    Output::Table => output::table(
                        &["removed", "count"],
                        vec![
                            vec!["ended sessions".into(), report.sessions.to_string()],
                            vec![
                                "spent verification tokens".into(),
                                report.verification_tokens.to_string(),
                            ],
                            vec!["stale throttle rows".into(), report.throttles.to_string()],
                            vec![
                                "expired deletion events".into(),
                                report.deletion_events.to_string(),
                            ],
                            vec![
                                "expired SAML requests and replay entries".into(),
                                report.saml.to_string(),
                            ],
                        ],
                    ),
                }
            }
        }
    }
}
