//! Account deletion: a cancellable grace period, then a hard delete that follows a declarative
//! plan through every table that references users.
//!
//! The sweep deletes each due account in its own transaction whose first statement claims the
//! account with a write that re-checks it is still due. That statement takes SQLite's write lock
//! (waiting out the busy timeout) or PostgreSQL's row lock, so a cancel racing the sweep either
//! wins (the claim finds nothing) or loses (the cancel finds nothing), and concurrent sweeps on
//! several replicas delete each account exactly once without errors.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::span;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{api_key, audit_log, deletion_event, login_throttle, user};
use crate::error::{Error, Result};
use crate::mail::Mail;

use super::{Actor, ClientInfo, audit, outbox, sessions};

/// What happens to a table's rows about a deleted user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The rows are the user's own: deleted.
    Cascade,
    /// The rows belong to the record: kept, with the user replaced by a stable pseudonym and
    /// addresses and IPs scrubbed.
    Anonymize,
}

/// One table that references users.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub table: &'static str,
    /// The column holding the user's id.
    pub column: &'static str,
    pub policy: Policy,
}

/// Every table that references a user, and what the sweep does to it. A test reads the schema and
/// fails when a table with a `user_id` column or a foreign key to `users` is missing here.
pub const PLAN: &[Rule] = &[
    Rule {
        table: "sessions",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "verification_tokens",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "login_events",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "recovery_codes",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "api_keys",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "sso_identities",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "user_roles",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "mail_outbox",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "audit_log",
        column: "user_id",
        policy: Policy::Anonymize,
    },
];

/// Tables that name users but are handled outside the plan: `users` itself (deleted last),
/// `login_throttles` (keyed by address or id: deleted by key) and the outbox (ids only, by design).
pub const HANDLED_ELSEWHERE: &[&str] = &["users", "login_throttles", "deletion_events"];

/// `GET /me/delete/status` and the answer to scheduling.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionStatus {
    pub scheduled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_remaining: Option<i64>,
}

/// Whole days left until `due`, rounded up (30 right after scheduling with the default grace).
pub fn days_remaining(due: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let secs = Ord::max((due - now).num_seconds(), 0);
    (secs + 86_399) / 86_400
}

pub fn status(user: &user::Model, now: DateTime<Utc>) -> DeletionStatus {
    match user.deletion_due_at {
        Some(due) => DeletionStatus {
            scheduled: true,
            scheduled_for: Some(due),
            days_remaining: Some(days_remaining(due, now)),
        },
        None => DeletionStatus {
            scheduled: false,
            scheduled_for: None,
            days_remaining: None,
        },
    }
}

/// The grace period a scheduling uses: the one asked for, else `deletion.grace_period`.
pub fn grace_period(
    config: &crate::config::Config,
    requested: Option<std::time::Duration>,
) -> std::time::Duration {
    requested.unwrap_or(config.deletion.grace_period)
}

/// Schedules the account for deletion after `grace` (default: `deletion.grace_period`). Every
/// session but `keep` and every API key ends at once; the user is mailed how to cancel.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %user.id))]
pub async fn schedule(
    ctx: &AppContext,
    actor: &Actor,
    user: &user::Model,
    keep: Option<&str>,
    grace: Option<std::time::Duration>,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<DeletionStatus> {
    let due = now + span(grace_period(&ctx.config, grace));
    let txn = ctx.db.begin().await?;
    let updated = user::Entity::update_many()
        .col_expr(user::Column::DeletionRequestedAt, Expr::value(now))
        .col_expr(user::Column::DeletionDueAt, Expr::value(due))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(user::Column::DeletionDueAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Error::conflict(
            "deletion_already_scheduled",
            "this account is already scheduled for deletion",
        ));
    }
    let mut ended = sessions::revoke_all_for_user_except(&txn, &user.id, keep).await?;
    ended += api_key::Entity::delete_many()
        .filter(api_key::Column::UserId.eq(user.id.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    audit::Event::new(actor, "deletion_scheduled")
        .user(&user.id)
        .maybe_client(client)
        .detail(json!({ "scheduledFor": due, "credentialsEnded": ended }))
        .record(&txn, now)
        .await?;
    let days = days_remaining(due, now);
    outbox::queue(
        ctx,
        &txn,
        Some(&user.id),
        &Mail::deletion_scheduled(user, due, days),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(DeletionStatus {
        scheduled: true,
        scheduled_for: Some(due),
        days_remaining: Some(days),
    })
}

/// Cancels a scheduled deletion during the grace period and restores the account fully.
pub async fn cancel(
    ctx: &AppContext,
    actor: &Actor,
    user_id: &str,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<()> {
    let updated = user::Entity::update_many()
        .col_expr(
            user::Column::DeletionRequestedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            user::Column::DeletionDueAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DeletionDueAt.is_not_null())
        .exec(&ctx.db)
        .await?;
    if updated.rows_affected == 0 {
        return match user::Entity::find_by_id(user_id.to_owned())
            .one(&ctx.db)
            .await?
        {
            Some(_) => Err(Error::conflict(
                "deletion_not_scheduled",
                "this account is not scheduled for deletion",
            )),
            None => Err(Error::gone(
                "account_deleted",
                "the account has already been deleted",
            )),
        };
    }
    audit::Event::new(actor, "deletion_cancelled")
        .user(user_id)
        .maybe_client(client)
        .record(&ctx.db, now)
        .await?;
    if let Some(user) = user::Entity::find_by_id(user_id.to_owned())
        .one(&ctx.db)
        .await?
    {
        outbox::queue(
            ctx,
            &ctx.db,
            Some(&user.id),
            &Mail::deletion_cancelled(&user),
            now,
        )
        .await?;
    }
    Ok(())
}

/// One account waiting for deletion, for `authctl deletion list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub email: String,
    pub requested_at: Option<DateTime<Utc>>,
    pub scheduled_for: DateTime<Utc>,
    pub days_remaining: i64,
}

pub async fn list_pending(ctx: &AppContext, now: DateTime<Utc>) -> Result<Vec<Pending>> {
    let rows = user::Entity::find()
        .filter(user::Column::DeletionDueAt.is_not_null())
        .order_by_asc(user::Column::DeletionDueAt)
        .all(&ctx.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|u| {
            let due = u.deletion_due_at?;
            Some(Pending {
                email: u.email,
                requested_at: u.deletion_requested_at,
                scheduled_for: due,
                days_remaining: days_remaining(due, now),
            })
        })
        .collect())
}

/// Rows deleted and anonymized per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub accounts: u64,
    pub deleted: BTreeMap<String, u64>,
    pub anonymized: BTreeMap<String, u64>,
}

impl SweepReport {
    fn absorb(&mut self, other: SweepReport) {
        self.accounts += other.accounts;
        for (table, n) in other.deleted {
            *self.deleted.entry(table).or_default() += n;
        }
        for (table, n) in other.anonymized {
            *self.anonymized.entry(table).or_default() += n;
        }
    }
}

/// How many accounts are due at `now`.
pub async fn due_count(ctx: &AppContext, now: DateTime<Utc>) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(user::Entity::find()
        .filter(user::Column::DeletionDueAt.lte(now))
        .count(&ctx.db)
        .await?)
}

/// What a sweep would do now, per table, without changing anything.
pub async fn dry_run(ctx: &AppContext, now: DateTime<Utc>) -> Result<SweepReport> {
    let backend = ctx.db.get_database_backend();
    let due_ids = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("deletion_due_at")).lte(now))
        .to_owned();
    let mut report = SweepReport {
        accounts: due_count(ctx, now).await?,
        ..SweepReport::default()
    };
    for rule in PLAN {
        let count = Query::select()
            .expr(Expr::col(Alias::new(rule.column)).count())
            .from(Alias::new(rule.table))
            .and_where(Expr::col(Alias::new(rule.column)).in_subquery(due_ids.clone()))
            .to_owned();
        let n: i64 = ctx
            .db
            .query_one_raw(backend.build(&count))
            .await?
            .and_then(|row| row.try_get_by_index(0).ok())
            .unwrap_or_default();
        let target = if rule.policy == Policy::Cascade {
            &mut report.deleted
        } else {
            &mut report.anonymized
        };
        target.insert(rule.table.to_owned(), u64::try_from(n).unwrap_or_default());
    }
    report.deleted.insert("users".into(), report.accounts);
    Ok(report)
}

/// Hard-deletes up to `batch` due accounts, each in its own transaction.
pub async fn sweep_batch(ctx: &AppContext, now: DateTime<Utc>, batch: u64) -> Result<SweepReport> {
    let ids: Vec<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::DeletionDueAt.lte(now))
        .order_by_asc(user::Column::DeletionDueAt)
        .limit(Ord::max(batch, 1))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    let mut report = SweepReport::default();
    for id in ids {
        if let Some(one) = delete_account(ctx, &id, now).await? {
            report.absorb(one);
        }
    }
    Ok(report)
}

/// Sweeps until nothing is due; `progress` hears after every batch.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn sweep(
    ctx: &AppContext,
    now: DateTime<Utc>,
    batch: Option<u64>,
    mut progress: impl FnMut(&SweepReport),
) -> Result<SweepReport> {
    let batch = batch.unwrap_or(ctx.config.deletion.batch_size);
    let mut total = SweepReport::default();
    loop {
        let round = sweep_batch(ctx, now, batch).await?;
        if round.accounts == 0 {
            // Nothing this sweep could claim (none due, or other sweeps hold the rest).
            break;
        }
        total.absorb(round);
        progress(&total);
    }
    Ok(total)
}

/// The stable pseudonym that replaces a deleted user's id in kept rows.
pub fn pseudonym(user_id: &str) -> String {
    format!(
        "deleted-{}",
        &crate::tokens::hash(&format!("authctl-deleted-user:{user_id}"))[..20]
    )
}

/// Deletes one account if it is still due; `None` when a cancel or another sweep got there first.
async fn delete_account(
    ctx: &AppContext,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<SweepReport>> {
    let txn = ctx.db.begin().await?;
    // The claim: a write that re-checks the account is due, and locks it.
    let claimed = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DeletionDueAt.lte(now))
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let user = user::Entity::find_by_id(user_id.to_owned())
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let mut report = SweepReport {
        accounts: 1,
        ..SweepReport::default()
    };
    let backend = txn.get_database_backend();
    for rule in PLAN {
        let n = match rule.policy {
            Policy::Cascade => {
                let delete = Query::delete()
                    .from_table(Alias::new(rule.table))
                    .and_where(Expr::col(Alias::new(rule.column)).eq(user_id))
                    .to_owned();
                txn.execute_raw(backend.build(&delete))
                    .await?
                    .rows_affected()
            }
            Policy::Anonymize => anonymize_audit(&txn, &user).await?,
        };
        let target = if rule.policy == Policy::Cascade {
            &mut report.deleted
        } else {
            &mut report.anonymized
        };
        target.insert(rule.table.to_owned(), n);
    }
    let keys = vec![
        Email::parse(&user.email)
            .map(|e| super::throttle::account_key(&e))
            .unwrap_or_default(),
        super::throttle::second_factor_bucket(&ctx.config.throttle, &user.id)
            .key()
            .to_owned(),
        super::throttle::reset_mail_key(&user.id),
    ];
    let throttles = login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::Key.is_in(keys))
        .exec(&txn)
        .await?;
    report
        .deleted
        .insert("login_throttles".into(), throttles.rows_affected);
    user::Entity::delete_by_id(user.id.clone())
        .exec(&txn)
        .await?;
    report.deleted.insert("users".into(), 1);
    deletion_event::Entity::insert(deletion_event::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        event: Set("user.deleted".into()),
        user_id: Set(user.id.clone()),
        occurred_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(None),
        delivered_at: Set(None),
    })
    .exec(&txn)
    .await?;
    let pseudonym = pseudonym(&user.id);
    audit::Event::new(&Actor::System, "account_deleted")
        .user(&pseudonym)
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(Some(report))
}

/// Keeps the user's audit entries with the user replaced by a pseudonym, and addresses, names and
/// IPs removed from them.
async fn anonymize_audit(txn: &DatabaseTransaction, user: &user::Model) -> Result<u64> {
    let pseudonym = pseudonym(&user.id);
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::UserId.eq(user.id.as_str()))
        .all(txn)
        .await?;
    let personal: Vec<&str> = [user.email.as_str(), user.name.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let count = rows.len() as u64;
    for row in rows {
        let detail = row
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .map(|v| scrub(v, &personal))
            .filter(|v| !v.as_object().is_some_and(|o| o.is_empty()))
            .map(|v| v.to_string());
        let actor = if row.actor == format!("user:{}", user.id) {
            format!("user:{pseudonym}")
        } else {
            row.actor.clone()
        };
        audit_log::Entity::update_many()
            .col_expr(audit_log::Column::UserId, Expr::value(pseudonym.as_str()))
            .col_expr(audit_log::Column::Actor, Expr::value(actor))
            .col_expr(audit_log::Column::Ip, Expr::value(Option::<String>::None))
            .col_expr(audit_log::Column::Detail, Expr::value(detail))
            .filter(audit_log::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
    }
    Ok(count)
}

/// Drops personal fields (addresses, devices, IPs) and any value naming the user from an audit detail.
fn scrub(value: Value, personal: &[&str]) -> Value {
    const PERSONAL_KEYS: &[&str] = &["email", "from", "to", "device", "ip"];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !PERSONAL_KEYS.contains(&k.as_str()))
                .filter(|(_, v)| {
                    !v.as_str()
                        .is_some_and(|s| personal.iter().any(|p| s.contains(p)))
                })
                .map(|(k, v)| (k, scrub(v, personal)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| scrub(v, personal)).collect())
        }
        other => other,
    }
}

/// `authctl deletion events`: the outbox, newest first.
pub async fn events(ctx: &AppContext, limit: u64) -> Result<Vec<deletion_event::Model>> {
    Ok(deletion_event::Entity::find()
        .order_by_desc(deletion_event::Column::OccurredAt)
        .limit(limit)
        .all(&ctx.db)
        .await?)
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
