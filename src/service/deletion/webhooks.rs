//! The `user.deleted` outbox and its webhook: events signed with HMAC-SHA256, delivered with
//! backoff, pruned once delivered.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::deletion_event;
use crate::error::{Error, Result};

/// The outbox, newest first.
pub async fn events(ctx: &AppContext, limit: u64) -> Result<Vec<deletion_event::Model>> {
    let page = crate::service::Page {
        limit: Some(limit),
        after: None,
    };
    Ok(events_page(ctx, &page).await?.items)
}

/// `authctl deletion events`: one page of the outbox, newest first (ids are time-ordered).
pub async fn events_page(
    ctx: &AppContext,
    page: &crate::service::Page,
) -> Result<crate::service::Paged<deletion_event::Model>> {
    let mut query = deletion_event::Entity::find();
    if let Some(after) = &page.after {
        query = query.filter(deletion_event::Column::Id.lt(after.as_str()));
    }
    let rows = query
        .order_by_desc(deletion_event::Column::Id)
        .limit(page.fetch())
        .all(&ctx.db)
        .await?;
    Ok(page.cut(rows, |e| e.id.clone()))
}

/// Removes outbox events older than `deletion.events_retention`.
pub async fn prune_events(ctx: &AppContext, now: DateTime<Utc>) -> Result<u64> {
    let cutoff = now - span(ctx.config.deletion.events_retention);
    Ok(deletion_event::Entity::delete_many()
        .filter(deletion_event::Column::OccurredAt.lt(cutoff))
        .exec(&ctx.db)
        .await?
        .rows_affected)
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub delivered: u64,
    pub failed: u64,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature of a webhook body: `sha256=<hex HMAC-SHA256(deletion.webhook_secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// POSTs undelivered `user.deleted` events to `deletion.webhook_url`, signed with
/// `deletion.webhook_secret`. Each event is claimed first (so replicas do not send it twice at
/// once); a failure is retried later with a doubling wait (1 minute up to 6 hours).
pub async fn deliver_events(ctx: &AppContext, now: DateTime<Utc>) -> Result<Delivery> {
    use secrecy::ExposeSecret;
    let (Some(url), Some(secret)) = (
        &ctx.config.deletion.webhook_url,
        &ctx.config.deletion.webhook_secret,
    ) else {
        return Ok(Delivery::default());
    };
    let due = || {
        deletion_event::Column::NextAttemptAt
            .is_null()
            .or(deletion_event::Column::NextAttemptAt.lte(now))
    };
    let pending = deletion_event::Entity::find()
        .filter(deletion_event::Column::DeliveredAt.is_null())
        .filter(due())
        .order_by_asc(deletion_event::Column::OccurredAt)
        .limit(100)
        .all(&ctx.db)
        .await?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("webhook client: {e}")))?;
    let mut report = Delivery::default();
    for event in pending {
        let claimed = deletion_event::Entity::update_many()
            .col_expr(
                deletion_event::Column::NextAttemptAt,
                Expr::value(now + chrono::Duration::minutes(5)),
            )
            .filter(deletion_event::Column::Id.eq(event.id.as_str()))
            .filter(deletion_event::Column::DeliveredAt.is_null())
            .filter(due())
            .exec(&ctx.db)
            .await?;
        if claimed.rows_affected == 0 {
            continue;
        }
        let body = json!({ "id": event.id, "event": event.event, "userId": event.user_id, "occurredAt": event.occurred_at }).to_string();
        let sent = client
            .post(url.as_str())
            .header("content-type", "application/json")
            .header("x-authctl-event", event.event.as_str())
            .header(
                "x-authctl-signature",
                signature(secret.expose_secret(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        let ok = matches!(&sent, Ok(r) if r.status().is_success());
        let update = deletion_event::Entity::update_many()
            .filter(deletion_event::Column::Id.eq(event.id.as_str()));
        if ok {
            update
                .col_expr(deletion_event::Column::DeliveredAt, Expr::value(now))
                .exec(&ctx.db)
                .await?;
            report.delivered += 1;
        } else {
            let attempts = event.attempts + 1;
            let wait = chrono::Duration::minutes(1i64 << (attempts - 1).clamp(0, 9))
                .min(chrono::Duration::hours(6));
            update
                .col_expr(deletion_event::Column::Attempts, Expr::value(attempts))
                .col_expr(
                    deletion_event::Column::NextAttemptAt,
                    Expr::value(now + wait),
                )
                .exec(&ctx.db)
                .await?;
            let why = match sent {
                Ok(r) => format!("status {}", r.status()),
                Err(e) if e.is_timeout() => "timeout".to_owned(),
                Err(_) => "connection failed".to_owned(),
            };
            tracing::warn!(event_id = %event.id, attempts, %why, "the deletion webhook was not accepted; it will be retried");
            report.failed += 1;
        }
    }
    Ok(report)
}
