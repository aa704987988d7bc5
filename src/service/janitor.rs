//! Flow: the janitor. Removes ended sessions, spent mailed tokens, stale throttle rows and
//! given-up mails in batches. `serve` runs it on `session.prune_cron`; `authctl sessions prune` runs it on demand.
//! Running it on several replicas at once is harmless: it only deletes what is already dead.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::{login_throttle, session, verification_token};
use crate::error::Result;

use super::sessions;

/// How many rows each kind of pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub sessions: u64,
    pub verification_tokens: u64,
    pub throttles: u64,
    /// `user.deleted` events past `deletion.events_retention`.
    pub deletion_events: u64,
    /// Expired SAML requests and replay-cache entries.
    pub saml: u64,
    /// Mails given up longer than `mail.failed_retention` ago (delivered ones leave at once).
    pub mails: u64,
    /// Expired passkey ceremonies (started, never finished).
    pub passkey_ceremonies: u64,
}

/// Rows deleted per statement when the caller names no batch size: short transactions, never a
/// long lock.
pub const PRUNE_BATCH: u64 = 500;

/// Deletes, `batch` rows at a time ([`PRUNE_BATCH`] by default), everything that can no longer be
/// used at `now`.
pub async fn prune(
    ctx: &AppContext,
    now: DateTime<Utc>,
    batch: Option<u64>,
) -> Result<PruneReport> {
    let batch = batch.unwrap_or(PRUNE_BATCH).max(1);
    let mut report = PruneReport::default();
    loop {
        let ids: Vec<String> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(sessions::ended_rows(&ctx.config.session, now))
            .limit(batch)
            .into_tuple()
            .all(&ctx.db)
            .await?;
        if ids.is_empty() {
            break;
        }
        report.sessions += session::Entity::delete_many()
            .filter(session::Column::Id.is_in(ids))
            .exec(&ctx.db)
            .await?
            .rows_affected;
    }
    loop {
        let hashes: Vec<String> = verification_token::Entity::find()
            .select_only()
            .column(verification_token::Column::TokenHash)
            .filter(
                Condition::any()
                    .add(verification_token::Column::UsedAt.is_not_null())
                    .add(verification_token::Column::ExpiresAt.lte(now)),
            )
            .limit(batch)
            .into_tuple()
            .all(&ctx.db)
            .await?;
        if hashes.is_empty() {
            break;
        }
        report.verification_tokens += verification_token::Entity::delete_many()
            .filter(verification_token::Column::TokenHash.is_in(hashes))
            .exec(&ctx.db)
            .await?
            .rows_affected;
    }
    let stale = now - span(ctx.config.throttle.reset_after);
    report.throttles = login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::LastFailureAt.lt(stale))
        .filter(
            Condition::any()
                .add(login_throttle::Column::BlockedUntil.is_null())
                .add(login_throttle::Column::BlockedUntil.lte(now)),
        )
        .exec(&ctx.db)
        .await?
        .rows_affected;
    report.deletion_events = super::deletion::prune_events(ctx, now).await?;
    report.saml = super::saml::prune(&ctx.db, now).await?;
    report.mails = super::outbox::prune(ctx, now).await?;
    report.passkey_ceremonies = super::ceremonies::prune(&ctx.db, now).await?;
    Ok(report)
}
