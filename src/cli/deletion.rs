//! `authctl deletion …`
use std::io::IsTerminal;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::deletion::{self, SweepReport};
use clap::Subcommand;

use super::output::{self, Output};
use super::shapes::{Change, Deletion, DeletionEvent};
use super::{GlobalArgs, PageArgs, explain, find_user, hint_next};

#[derive(Debug, Subcommand)]
pub enum DeletionCommand {
    /// Accounts waiting for deletion, soonest first, with their dates.
    ///
    /// Example: authctl deletion list -o json
    List,
    /// Schedule an account for deletion (its sessions and API keys end at once). Asks first.
    ///
    /// The account is deleted for good by the first sweep after the grace period; until then
    /// `deletion cancel` (or the user signing in and cancelling) keeps it.
    ///
    /// Example: authctl deletion schedule alice@example.com --grace 7d --yes
    Schedule {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
        /// The grace period before the hard delete (default: deletion.grace_period).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        grace: Option<std::time::Duration>,
    },
    /// Cancel a scheduled deletion.
    ///
    /// Example: authctl deletion cancel alice@example.com
    Cancel {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
    },
    /// Hard-delete every account whose grace period has passed. Safe to run from cron and on
    /// several machines at once.
    ///
    /// `--dry-run` answers in the same shape as a real sweep, with `dryRun: true`.
    ///
    /// Example: authctl deletion sweep --dry-run
    Sweep {
        /// Only print, per table, what would be deleted or anonymized.
        #[arg(long)]
        dry_run: bool,
        /// Accounts per batch, one transaction each, 1 to 1000 (default: deletion.batch_size).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
        batch_size: Option<u64>,
    },
    /// The outbox of `user.deleted` events for downstream systems, newest first, with their
    /// webhook delivery.
    ///
    /// Example: authctl deletion events --limit 10
    Events {
        #[command(flatten)]
        page: PageArgs,
    },
}

/// The answer of a sweep or a dry run: one shape for both.
fn sweep_change(report: &SweepReport, dry_run: bool) -> Change {
    Change::new("deletion.sweep", "user", report.ids.clone())
        .dry_run(dry_run)
        .detail("deleted", &report.deleted)
        .detail("anonymized", &report.anonymized)
}

/// Per table, what the sweep deletes or anonymizes.
fn report_table(global: &GlobalArgs, report: &SweepReport) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (table, n) in &report.deleted {
        rows.push(vec![table.clone(), "delete".into(), n.to_string()]);
    }
    for (table, n) in &report.anonymized {
        rows.push(vec![table.clone(), "anonymize".into(), n.to_string()]);
    }
    output::render(
        &[
            output::Column::fixed("table"),
            output::Column::fixed("policy"),
            output::Column::fixed("rows"),
        ],
        &rows,
        !global.no_headers,
        None,
    )
}

impl DeletionCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let now = ctx.now();
        let actor = Actor::cli();
        match self {
            Self::List => {
                let pending: Vec<Deletion> = deletion::list_pending(ctx, now)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect();
                global.printer().list(&pending)
            }
            Self::Schedule { email, grace } => {
                let user = find_user(ctx, &email).await?;
                let grace = deletion::grace_period(&ctx.config, grace);
                output::confirm(
                    &format!(
                        "Delete {} for good after {}?",
                        user.email,
                        output::duration(grace)
                    ),
                    global.yes,
                )?;
                let status = deletion::schedule(ctx, &actor, &user, None, Some(grace), None, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                let pending = Deletion {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    requested_at: Some(now),
                    scheduled_for: status.scheduled_for.unwrap_or(now),
                    days_remaining: status.days_remaining.unwrap_or_default(),
                };
                let fields = vec![
                    ("email", pending.email.clone()),
                    ("scheduled for", output::time(pending.scheduled_for)),
                    ("days left", pending.days_remaining.to_string()),
                    ("user id", pending.user_id.clone()),
                ];
                if !global.printer().is_json() {
                    eprintln!(
                        "{} is scheduled for deletion; its sessions and API keys have ended.",
                        user.email
                    );
                }
                global.printer().show(&pending, fields)
            }
            Self::Cancel { email } => {
                let user = find_user(ctx, &email).await?;
                deletion::cancel(ctx, &actor, &user.id, None, now)
                    .await
                    .map_err(|e| explain(e, &email))?;
                global.printer().changed(
                    &Change::new("deletion.cancel", "user", vec![user.id.clone()])
                        .detail("email", &user.email),
                    &format!("The deletion of {} is cancelled.", user.email),
                )
            }
            Self::Sweep { dry_run: true, .. } => {
                let report = deletion::dry_run(ctx, now).await?;
                let sentence = if report.accounts == 0 {
                    "No account is due for deletion; nothing would change.".to_owned()
                } else {
                    format!(
                        "A sweep now would delete {} account(s):\n{}",
                        report.accounts,
                        report_table(global, &report).trim_end()
                    )
                };
                global
                    .printer()
                    .changed(&sweep_change(&report, true), &sentence)
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
                let sentence = if report.accounts == 0 {
                    "No account was due for deletion; nothing changed.".to_owned()
                } else {
                    format!(
                        "{} account(s) deleted.\n{}",
                        report.accounts,
                        report_table(global, &report).trim_end()
                    )
                };
                global
                    .printer()
                    .changed(&sweep_change(&report, false), &sentence)?;
                if !report.failed.is_empty() {
                    anyhow::bail!(
                        "{} due account(s) could not be deleted ({}); the log above says why, and the next sweep tries again",
                        report.failed.len(),
                        report.failed.join(", ")
                    );
                }
                Ok(())
            }
            Self::Events { page } => {
                let page = page.page()?;
                let listed = deletion::events_page(ctx, &page).await?;
                let events: Vec<DeletionEvent> = listed.items.into_iter().map(Into::into).collect();
                global.printer().list(&events)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
        }
    }
}
