//! Account deletion: a cancellable grace period, then a hard delete that follows a declarative
//! plan through every table that references users.
//!
//! The sweep deletes due accounts a batch at a time, each batch in one transaction whose first
//! statement claims its accounts with a write that re-checks each is still due. That statement
//! takes SQLite's write lock (waiting out the busy timeout) or PostgreSQL's row locks, so a cancel
//! racing the sweep either wins (the claim leaves the account out) or loses (the cancel finds
//! nothing), and concurrent sweeps on several replicas delete each account exactly once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde::Serialize;
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::{api_key, user};
use crate::error::{Error, Result};
use crate::mail::Mail;

use crate::service::{Actor, ClientInfo, audit, outbox, sessions};

mod sweep;
mod webhooks;

pub use sweep::*;
pub use webhooks::*;

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
        table: "passkeys",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "webauthn_ceremonies",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "scim_users",
        column: "user_id",
        policy: Policy::Cascade,
    },
    Rule {
        table: "scim_group_members",
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
    pub user_id: String,
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
                user_id: u.id,
                email: u.email,
                requested_at: u.deletion_requested_at,
                scheduled_for: due,
                days_remaining: days_remaining(due, now),
            })
        })
        .collect())
}
