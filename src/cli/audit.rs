//! `authctl audit …`
use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::context::AppContext;
use crate::service::audit;

use super::output::{self, Output};
use super::{GlobalArgs, find_user};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only events about this account.
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Only events since this long ago (`2h`, `7d`) or since an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

fn parse_since(raw: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(d) = humantime::parse_duration(raw) {
        return Ok(now - chrono::Duration::from_std(d)?);
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            anyhow::anyhow!(
                "--since `{raw}` is neither a duration like 2h or 7d nor an RFC 3339 time"
            )
        })
}

impl AuditCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::List { user, since, limit } => {
                let since = since.map(|s| parse_since(&s, ctx.now())).transpose()?;
                let user_id = match &user {
                    Some(email) => Some(find_user(ctx, email).await?.id),
                    None => None,
                };
                let entries = audit::list(ctx, user_id.as_deref(), since, limit).await?;
                match global.output {
                    Output::Json => output::json(&entries),
                    Output::Table => output::table(
                        &["time", "action", "actor", "user", "ip", "detail"],
                        entries
                            .iter()
                            .map(|e| {
                                vec![
                                    output::time(e.at),
                                    e.action.clone(),
                                    e.actor.clone(),
                                    e.user_id.clone().unwrap_or_else(|| "-".into()),
                                    e.ip.clone().unwrap_or_else(|| "-".into()),
                                    e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
        }
    }
}
