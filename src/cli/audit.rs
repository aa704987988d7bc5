//! `authctl audit …`
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::context::AppContext;
use crate::service::{audit, users};

use super::shapes::AuditEvent;
use super::{GlobalArgs, PageArgs, find_user, hint_next, usage};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first, with the account's address while it exists.
    ///
    /// Example: authctl audit list --user alice@example.com --since 7d
    List {
        /// Only events about this account, by address or id.
        #[arg(long, value_name = "EMAIL|ID")]
        user: Option<String>,
        /// Only events since this long ago (`2h`, `7d`) or since an RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<Since>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `--since`: how long ago (`2h`, `7d`) or when (RFC 3339).
#[derive(Debug, Clone, Copy)]
pub enum Since {
    Ago(std::time::Duration),
    At(DateTime<Utc>),
}

fn parse_since(raw: &str) -> Result<Since, String> {
    if let Ok(d) = humantime::parse_duration(raw) {
        return Ok(Since::Ago(d));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| Since::At(t.with_timezone(&Utc)))
        .map_err(|_| format!("`{raw}` is neither a duration like 2h or 7d nor an RFC 3339 time"))
}

impl Since {
    fn resolve(self, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
        match self {
            Self::At(t) => Ok(t),
            Self::Ago(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| {
                    usage(format!(
                        "--since {} reaches back further than a calendar can; give a shorter duration or a time",
                        super::output::duration(d)
                    ))
                }),
        }
    }
}

impl AuditCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::List { user, since, page } => {
                let since = since.map(|s| s.resolve(ctx.now())).transpose()?;
                let user_id = match &user {
                    Some(email) => Some(find_user(ctx, email).await?.id),
                    None => None,
                };
                let before = page
                    .after
                    .as_deref()
                    .map(|a| {
                        a.parse::<i64>().map_err(|_| {
                            usage(format!(
                                "--after takes an audit event id (a number), not `{a}`"
                            ))
                        })
                    })
                    .transpose()?;
                let page = page.page_after(page.after.clone());
                let listed =
                    audit::list_page(ctx, user_id.as_deref(), since, before, &page).await?;
                let mut ids: Vec<String> = listed
                    .items
                    .iter()
                    .filter_map(|e| e.user_id.clone())
                    .collect();
                ids.sort();
                ids.dedup();
                let emails: HashMap<String, String> = users::emails_of(ctx, &ids).await?;
                let events: Vec<AuditEvent> = listed
                    .items
                    .into_iter()
                    .map(|e| {
                        let email = e.user_id.as_ref().and_then(|id| emails.get(id).cloned());
                        AuditEvent::new(e, email)
                    })
                    .collect();
                global.printer().list(&events)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
        }
    }
}
