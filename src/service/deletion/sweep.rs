//! The sweep: accounts past their grace period are deleted for good, each in its own claimed
//! transaction, along the deletion plan.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;

use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{audit_log, deletion_event, login_throttle, user};
use crate::error::{Error, Result};

use super::*;
use crate::service::{Actor, audit};

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
    let due: Vec<(String, String)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Email)
        .filter(user::Column::DeletionDueAt.lte(now))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    let mut throttles = 0;
    for (id, email) in due {
        throttles += login_throttle::Entity::find()
            .filter(login_throttle::Column::Key.is_in(throttle_keys(ctx, &id, &email)))
            .count(&ctx.db)
            .await?;
    }
    report.deleted.insert("login_throttles".into(), throttles);
    report.deleted.insert("users".into(), report.accounts);
    Ok(report)
}

/// The throttle rows that belong to an account (keyed by its address or id, not a column).
fn throttle_keys(ctx: &AppContext, user_id: &str, email: &str) -> Vec<String> {
    vec![
        Email::parse(email)
            .map(|e| crate::service::throttle::account_key(&e))
            .unwrap_or_default(),
        crate::service::throttle::second_factor_bucket(&ctx.config.throttle, user_id)
            .key()
            .to_owned(),
        crate::service::throttle::reset_mail_key(user_id),
    ]
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
    let keys = throttle_keys(ctx, &user.id, &user.email);
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
