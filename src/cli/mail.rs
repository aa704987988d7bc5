//! `authctl mail …`: the mail outbox on demand (`serve` delivers it by itself).
use clap::Subcommand;

use crate::config::MailTransportKind;
use crate::context::AppContext;
use crate::service::outbox;

use super::GlobalArgs;
use super::shapes::Change;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Deliver every queued mail that is due now, over the configured transport.
    ///
    /// `serve` delivers by itself; this is for a CLI-only host or to flush a backlog now.
    ///
    /// Example: authctl mail deliver -o json
    Deliver,
    /// How many mails wait in the outbox, and how many were given up.
    ///
    /// Example: authctl mail status
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
                let change = Change::counted("mail.deliver", "mail", report.sent)
                    .detail("sent", report.sent)
                    .detail("retrying", report.retrying)
                    .detail("givenUp", report.given_up)
                    .detail("pending", backlog.pending)
                    .detail("failed", backlog.failed);
                global.printer().changed(
                    &change,
                    &format!(
                        "Delivered {} mail(s); {} failed and will be retried, {} were given up. {} still queued.",
                        report.sent, report.retrying, report.given_up, backlog.pending
                    ),
                )
            }
            Self::Status => {
                let backlog = outbox::backlog(ctx).await?;
                global.printer().show(
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

/// How many mails wait in the outbox (with the `log` transport only: the others deliver at once).
pub async fn queued(ctx: &AppContext) -> Option<u64> {
    if ctx.config.mail.transport != MailTransportKind::Log {
        return None;
    }
    outbox::backlog(ctx).await.ok().map(|b| b.pending)
}

/// After a command that may have queued mail: deliver what is due now, so an operator's
/// `verification resend` does not wait for `serve`. What cannot go out now stays queued, and
/// stderr says so; stdout stays the command's answer. With the `log` transport nothing is
/// delivered here: that transport prints the mail, live links included, and the CLI never
/// prints a mail; it stays queued for `serve`, which prints it to its own log.
pub async fn flush(ctx: &AppContext, queued_before: Option<u64>) {
    if ctx.config.mail.transport == MailTransportKind::Log {
        let now = queued(ctx).await;
        if let (Some(before), Some(now)) = (queued_before, now)
            && now > before
        {
            eprintln!(
                "note: {} mail(s) queued; with mail.transport = \"log\", `authctl serve` prints them to its log",
                now - before
            );
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
