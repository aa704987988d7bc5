//! `authctl mail …`: the mail outbox on demand (`serve` delivers it by itself).
use clap::Subcommand;

use crate::config::MailTransportKind;
use crate::context::AppContext;
use crate::service::outbox;

use super::GlobalArgs;
use super::output::{self, Output};

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Deliver every queued mail that is due now, over the configured transport.
    Deliver,
    /// How many mails wait in the outbox, and how many were given up.
    Status,
}

impl MailCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::Deliver => {
                if ctx.config.mail.transport == MailTransportKind::Log {
                    anyhow::bail!(
                        "mail.transport is \"log\", so queued mail is printed by `authctl serve` to its log, not here; set mail.transport to smtp or file to deliver from the CLI"
                    );
                }
                let report = outbox::drain(ctx, 1000).await?;
                let backlog = outbox::backlog(ctx).await?;
                match global.output {
                    Output::Json => output::json(&serde_json::json!({
                        "sent": report.sent,
                        "retrying": report.retrying,
                        "givenUp": report.given_up,
                        "pending": backlog.pending,
                        "failed": backlog.failed,
                    })),
                    Output::Table => {
                        output::say(&format!(
                            "Delivered {} mail(s); {} failed and will be retried, {} were given up. {} still queued.",
                            report.sent, report.retrying, report.given_up, backlog.pending
                        ))?;
                        Ok(())
                    }
                }
            }
            Self::Status => {
                let backlog = outbox::backlog(ctx).await?;
                output::record(
                    global.output,
                    &backlog,
                    vec![
                        ("pending", backlog.pending.to_string()),
                        ("failed", backlog.failed.to_string()),
                    ],
                )
            }
        }
    }
}

/// After a command that may have queued mail: deliver what is due now, so an operator's
/// `verification resend` does not wait for `serve`. What cannot go out now stays queued, and
/// stderr says so; stdout stays the command's answer. With the `log` transport nothing is
/// delivered here: that transport prints the mail, live links included, and the CLI never
/// prints a mail; it stays queued for `serve`, which prints it to its own log.
pub async fn flush(ctx: &AppContext) {
    if ctx.config.mail.transport == MailTransportKind::Log {
        match outbox::backlog(ctx).await {
            Ok(backlog) if backlog.pending > 0 => eprintln!(
                "note: {} mail(s) queued; with mail.transport = \"log\", `authctl serve` prints them to its log",
                backlog.pending
            ),
            _ => {}
        }
        return;
    }
    match outbox::drain(ctx, 10).await {
        Ok(report) if report.retrying + report.given_up > 0 => eprintln!(
            "warning: {} mail(s) could not be delivered now; they stay queued, and `authctl serve` or `authctl mail deliver` sends them later",
            report.retrying + report.given_up
        ),
        Ok(report) if report.sent > 0 => {
            eprintln!("note: {} mail(s) sent", report.sent)
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: the mail outbox could not be delivered now ({e}); `authctl serve` or `authctl mail deliver` sends it later"
        ),
    }
}
