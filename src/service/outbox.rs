//! The mail outbox. Every mail the service sends is queued here, in the transaction of the change
//! that caused it, and delivered by a worker: inside `serve` (woken at once by a queue in the same
//! process, and every `mail.poll_interval` for the rest) and by `authctl mail deliver`. So no
//! answer waits for SMTP or depends on it, and a mail survives an SMTP outage: a failed delivery
//! is retried with a doubling wait (`mail.retry_base` up to `mail.retry_max`) until
//! `mail.max_attempts`, then kept as failed for `mail.failed_retention`.
//!
//! Replicas share the outbox: a worker claims a mail (one conditional update) before it sends it,
//! so two workers never send one mail at once. Delivery is at least once: a worker that dies
//! between sending and recording it leaves the claim to expire and the mail is sent again.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::mail_outbox;
use crate::error::{Error, Result};
use crate::mail::Mail;

/// How long a claimed mail is left to the worker that claimed it.
const CLAIM: std::time::Duration = std::time::Duration::from_secs(120);

/// Queues `mail` (about `user_id`, if any) on `db`: pass the transaction of the change that
/// caused the mail, so both happen or neither does.
pub async fn queue(
    ctx: &AppContext,
    db: &impl ConnectionTrait,
    user_id: Option<&str>,
    mail: &Mail,
    now: DateTime<Utc>,
) -> Result<()> {
    let plain =
        serde_json::to_vec(mail).map_err(|e| Error::Internal(anyhow::anyhow!("mail: {e}")))?;
    let sealed = ctx.key.seal(&ctx.config, &plain).await?;
    mail_outbox::Entity::insert(mail_outbox::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.map(str::to_owned)),
        kind: Set(mail.kind.clone()),
        sealed: Set(sealed),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        failed_at: Set(None),
    })
    .exec(db)
    .await?;
    ctx.mail_wake.notify_one();
    Ok(())
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub sent: u64,
    /// Failed this time; tried again later.
    pub retrying: u64,
    /// Failed for the last time (`mail.max_attempts`).
    pub given_up: u64,
}

/// Delivers up to `limit` mails that are due. The time is read from the context's clock for every
/// mail, so a claim made late in a long round still holds for its full [`CLAIM`], and a second
/// worker never takes a mail the first is still sending.
pub async fn deliver_due(ctx: &AppContext, limit: u64) -> Result<Delivery> {
    let now = ctx.now();
    let due = mail_outbox::Entity::find()
        .filter(mail_outbox::Column::FailedAt.is_null())
        .filter(mail_outbox::Column::NextAttemptAt.lte(now))
        .order_by_asc(mail_outbox::Column::NextAttemptAt)
        .order_by_asc(mail_outbox::Column::Id)
        .limit(limit)
        .all(&ctx.db)
        .await?;
    let mut report = Delivery::default();
    for row in due {
        let now = ctx.now();
        // The claim: only the worker whose update matched the row as it read it sends the mail.
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(
                mail_outbox::Column::NextAttemptAt,
                Expr::value(now + span(CLAIM)),
            )
            .col_expr(mail_outbox::Column::Attempts, Expr::value(row.attempts + 1))
            .filter(mail_outbox::Column::Id.eq(row.id.as_str()))
            .filter(mail_outbox::Column::Attempts.eq(row.attempts))
            .filter(mail_outbox::Column::FailedAt.is_null())
            .filter(mail_outbox::Column::NextAttemptAt.lte(now))
            .exec(&ctx.db)
            .await?;
        if claimed.rows_affected == 0 {
            continue;
        }
        let attempts = row.attempts + 1;
        let result = match open(ctx, &row).await {
            Ok(mail) => ctx.mailer.deliver(&mail).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                // Delivered: the message (with its links) leaves the database at once.
                mail_outbox::Entity::delete_by_id(row.id.clone())
                    .exec(&ctx.db)
                    .await?;
                report.sent += 1;
            }
            Err(e) => {
                let now = ctx.now();
                let why = reason(&e);
                let update = mail_outbox::Entity::update_many()
                    .col_expr(mail_outbox::Column::LastError, Expr::value(why.as_str()))
                    .filter(mail_outbox::Column::Id.eq(row.id.as_str()));
                if u32::try_from(attempts).unwrap_or(u32::MAX) >= ctx.config.mail.max_attempts {
                    update
                        .col_expr(mail_outbox::Column::FailedAt, Expr::value(now))
                        .exec(&ctx.db)
                        .await?;
                    tracing::error!(mail_id = %row.id, kind = %row.kind, attempts, error = %why, "a mail could not be delivered; giving up");
                    report.given_up += 1;
                } else {
                    let wait = backoff(ctx, attempts);
                    update
                        .col_expr(
                            mail_outbox::Column::NextAttemptAt,
                            Expr::value(now + span(wait)),
                        )
                        .exec(&ctx.db)
                        .await?;
                    tracing::warn!(mail_id = %row.id, kind = %row.kind, attempts, error = %why, retry_in = %humantime::format_duration(wait), "a mail could not be delivered; it will be retried");
                    report.retrying += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Delivers until nothing is due (or `rounds` rounds of 100 have run).
pub async fn drain(ctx: &AppContext, rounds: usize) -> Result<Delivery> {
    let mut total = Delivery::default();
    for _ in 0..rounds {
        let round = deliver_due(ctx, 100).await?;
        total.sent += round.sent;
        total.retrying += round.retrying;
        total.given_up += round.given_up;
        if round == Delivery::default() {
            break;
        }
    }
    Ok(total)
}

/// The wait before the next try after `attempts` failures: base × 2^(attempts−1), capped.
fn backoff(ctx: &AppContext, attempts: i32) -> std::time::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    ctx.config
        .mail
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(ctx.config.mail.retry_max)
}

async fn open(ctx: &AppContext, row: &mail_outbox::Model) -> Result<Mail> {
    let plain = ctx.key.open(&ctx.config, &row.sealed).await?;
    serde_json::from_slice(&plain)
        .map_err(|e| Error::Internal(anyhow::anyhow!("a queued mail is not readable: {e}")))
}

/// A delivery error as it is stored and logged: one line, at most 400 characters.
fn reason(e: &Error) -> String {
    let text = match e {
        Error::Mail(m) => m.clone(),
        other => other.to_string(),
    };
    text.replace(['\r', '\n'], " ").chars().take(400).collect()
}

/// What is in the outbox now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backlog {
    /// Waiting for delivery (due now or retrying later).
    pub pending: u64,
    /// Given up after `mail.max_attempts`.
    pub failed: u64,
}

pub async fn backlog(ctx: &AppContext) -> Result<Backlog> {
    use sea_orm::PaginatorTrait;
    let pending = mail_outbox::Entity::find()
        .filter(mail_outbox::Column::FailedAt.is_null())
        .count(&ctx.db)
        .await?;
    let failed = mail_outbox::Entity::find()
        .filter(mail_outbox::Column::FailedAt.is_not_null())
        .count(&ctx.db)
        .await?;
    Ok(Backlog { pending, failed })
}

/// Removes mails given up longer than `mail.failed_retention` ago (the janitor calls this).
pub async fn prune(ctx: &AppContext, now: DateTime<Utc>) -> Result<u64> {
    let cutoff = now - span(ctx.config.mail.failed_retention);
    Ok(mail_outbox::Entity::delete_many()
        .filter(mail_outbox::Column::FailedAt.lt(cutoff))
        .exec(&ctx.db)
        .await?
        .rows_affected)
}

/// The worker inside `serve`: delivers whatever is due, then waits for a queue in this process
/// or `mail.poll_interval`, whichever comes first. A queue inside a transaction wakes it before
/// the commit, so after a wake it looks once at once and once more a moment later. It runs until
/// the task is dropped.
pub async fn run_worker(ctx: AppContext) {
    let settle = std::time::Duration::from_millis(100);
    // What was queued while no worker ran goes out first.
    deliver_logged(&ctx).await;
    loop {
        let woken = tokio::select! {
            () = ctx.mail_wake.notified() => true,
            () = tokio::time::sleep(ctx.config.mail.poll_interval) => false,
        };
        deliver_logged(&ctx).await;
        if woken {
            tokio::time::sleep(settle).await;
            deliver_logged(&ctx).await;
        }
    }
}

async fn deliver_logged(ctx: &AppContext) {
    match drain(ctx, 10).await {
        Ok(d) if d != Delivery::default() => tracing::debug!(?d, "mail outbox delivered"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the mail outbox could not be read; trying again"),
    }
}
