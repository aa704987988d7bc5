//! `authctl deletion …`
use std::io::IsTerminal;

use clap::Subcommand;
use serde_json::json;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::deletion::{self, SweepReport};

use super::output::{self, Output};
use super::{GlobalArgs, explain, find_user};

#[derive(Debug, Subcommand)]
pub enum DeletionCommand {
    /// Accounts waiting for deletion, with their dates.
    List,
    /// Schedule an account for deletion (its sessions and API keys end at once). Asks first.
    Schedule {
        email: String,
        /// The grace period before the hard delete (default: deletion.grace_period).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        grace: Option<std::time::Duration>,
    },
    /// Cancel a scheduled deletion.
    Cancel { email: String },
    /// Hard-delete every account whose grace period has passed. Safe to run from cron and on
    /// several machines at once.
    Sweep {
        /// Only print, per table, what would be deleted or anonymized.
        #[arg(long)]
        dry_run: bool,
        /// Accounts per batch (default: deletion.batch_size).
        #[arg(long, value_name = "N")]
        batch_size: Option<u64>,
    },
    /// The outbox of `user.deleted` events for downstream systems.
    Events {
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

fn report_table(report: &SweepReport) -> anyhow::Result<()> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (table, n) in &report.deleted {
        rows.push(vec![table.clone(), "delete".into(), n.to_string()]);
    }
    for (table, n) in &report.anonymized {
        rows.push(vec![table.clone(), "anonymize".into(), n.to_string()]);
    }
    output::table(&["table", "policy", "rows"], rows)
}

impl DeletionCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let now = ctx.now();
        let actor = Actor::cli();
        match self {
            Self::List => {
                let pending = deletion::list_pending(ctx, now).await?;
                match global.output {
                    Output::Json => output::json(&pending),
                    Output::Table => output::table(
                        &["email", "requested", "scheduled for", "days left"],
                        pending
                            .iter()
                            .map(|p| {
                                vec![
                                    p.email.clone(),
                                    output::opt_time(p.requested_at),
                                    output::time(p.scheduled_for),
                                    p.days_remaining.to_string(),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
            Self::Schedule { email, grace } => {
                let user = find_user(ctx, &email).await?;
                let grace = deletion::grace_period(&ctx.config, grace);
                output::confirm(
                    &format!(
                        "Delete {} for good after {}?",
                        user.email,
                        humantime::format_duration(grace)
                    ),
                    global.yes,
                )?;
                let status = deletion::schedule(ctx, &actor, &user, None, Some(grace), None, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                match global.output {
                    Output::Json => output::json(&json!({ "email": user.email, "status": status })),
                    Output::Table => {
                        output::say(&format!(
                            "{} is scheduled for deletion on {} ({} days); its sessions and API keys have ended.",
                            user.email,
                            status.scheduled_for.map(output::time).unwrap_or_default(),
                            status.days_remaining.unwrap_or_default()
                        ))?;
                        Ok(())
                    }
                }
            }
            Self::Cancel { email } => {
                let user = find_user(ctx, &email).await?;
                deletion::cancel(ctx, &actor, &user.id, None, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                match global.output {
                    Output::Json => {
                        output::json(&json!({ "email": user.email, "scheduled": false }))
                    }
                    Output::Table => {
                        output::say(&format!("The deletion of {} is cancelled.", user.email))?;
                        Ok(())
                    }
                }
            }
            Self::Sweep { dry_run: true, .. } => {
                let report = deletion::dry_run(ctx, now).await?;
                match global.output {
                    Output::Json => output::json(&json!({ "dryRun": true, "report": report })),
                    Output::Table if report.accounts == 0 => {
                        output::say("No account is due for deletion; nothing would change.")?;
                        Ok(())
                    }
                    Output::Table => {
                        output::say(&format!(
                            "A sweep now would delete {} account(s):",
                            report.accounts
                        ))?;
                        report_table(&report)?;
                        Ok(())
                    }
                }
            }
            Self::Sweep {
                dry_run: false,
                batch_size,
            } => {
                let due = deletion::due_count(ctx, now).await?;
                let bar =
                    (global.output == Output::Table && due > 0 && std::io::stderr().is_terminal())
                        .then(|| {
                            let bar = indicatif::ProgressBar::new(due);
                            bar.set_style(
                                indicatif::ProgressStyle::with_template(
                                    "{bar:40} {pos}/{len} accounts deleted ({eta} left)",
                                )
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                            );
                            bar
                        });
                let report = deletion::sweep(ctx, now, batch_size, |so_far| {
                    if let Some(bar) = &bar {
                        bar.set_position(so_far.accounts);
                    }
                })
                .await?;
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let delivery = deletion::deliver_events(ctx, ctx.now()).await?;
                if delivery.failed > 0 {
                    eprintln!(
                        "{} user.deleted event(s) could not be delivered to deletion.webhook_url; `serve` retries them, or run the sweep again.",
                        delivery.failed
                    );
                }
                match global.output {
                    Output::Json => output::json(&report),
                    Output::Table if report.accounts == 0 => {
                        output::say("No account was due for deletion; nothing changed.")?;
                        Ok(())
                    }
                    Output::Table => {
                        output::say(&format!("{} account(s) deleted.", report.accounts))?;
                        report_table(&report)?;
                        Ok(())
                    }
                }
            }
            Self::Events { limit } => {
                let events = deletion::events(ctx, limit).await?;
                let rows: Vec<serde_json::Value> = events
                    .iter()
                    .map(|e| json!({ "id": e.id, "event": e.event, "userId": e.user_id, "occurredAt": e.occurred_at, "attempts": e.attempts, "nextAttemptAt": e.next_attempt_at, "deliveredAt": e.delivered_at }))
                    .collect();
                match global.output {
                    Output::Json => output::json(&rows),
                    Output::Table => output::table(
                        &["time", "event", "user id", "attempts", "delivered"],
                        events
                            .iter()
                            .map(|e| {
                                vec![
                                    output::time(e.occurred_at),
                                    e.event.clone(),
                                    e.user_id.clone(),
                                    e.attempts.to_string(),
                                    output::opt_time(e.delivered_at),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
        }
    }
}
