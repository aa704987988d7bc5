//! The sweep: accounts past their grace period are deleted for good along the deletion plan, a
//! batch at a time, each batch one claimed transaction of set-based statements.
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
use crate::error::Result;

use super::{PLAN, Policy};
use crate::service::{Actor, audit};

/// Rows deleted and anonymized per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub accounts: u64,
    /// The accounts' ids (what the sweep deleted, or would delete).
    #[serde(skip)]
    pub ids: Vec<String>,
    /// Due accounts that could not be deleted (each logged with its error).
    #[serde(skip)]
    pub failed: Vec<String>,
    pub deleted: BTreeMap<String, u64>,
    pub anonymized: BTreeMap<String, u64>,
}

impl SweepReport {
    fn absorb(&mut self, other: SweepReport) {
        self.accounts += other.accounts;
        self.ids.extend(other.ids);
        self.failed.extend(other.failed);
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
        report.ids.push(id);
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

/// The most accounts one batch (one transaction, which holds SQLite's write lock) may take.
pub const MAX_BATCH: u64 = 1000;

/// Hard-deletes up to `batch` (at most `MAX_BATCH`) due accounts in one transaction, leaving
/// out the ids in `skip`. When the batch fails, its accounts are retried one by one, so one
/// account that cannot be deleted does not hold back the others: it is logged and listed in
/// `failed`. When every one of them fails and the database does not answer, the error is returned.
pub async fn sweep_batch(
    ctx: &AppContext,
    now: DateTime<Utc>,
    batch: u64,
    skip: &[String],
) -> Result<SweepReport> {
    let ids: Vec<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::DeletionDueAt.lte(now))
        .filter(user::Column::Id.is_not_in(skip.iter().map(String::as_str)))
        .order_by_asc(user::Column::DeletionDueAt)
        .limit(batch.clamp(1, MAX_BATCH))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    if ids.is_empty() {
        return Ok(SweepReport::default());
    }
    let first = match delete_accounts(ctx, &ids, now).await {
        Ok(report) => return Ok(report),
        Err(e) => e,
    };
    tracing::warn!(error = %first, accounts = ids.len(), "a sweep batch failed; deleting its accounts one by one");
    let mut report = SweepReport::default();
    for id in &ids {
        match delete_accounts(ctx, std::slice::from_ref(id), now).await {
            Ok(one) => report.absorb(one),
            Err(e) => {
                tracing::error!(user_id = %id, error = %e, "this account could not be deleted; the sweep goes on without it");
                report.failed.push(id.clone());
            }
        }
    }
    // None went: the database may be gone rather than the accounts stuck.
    if report.failed.len() == ids.len() && ctx.db.ping().await.is_err() {
        return Err(first);
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
        let round = sweep_batch(ctx, now, batch, &total.failed).await?;
        if round.accounts == 0 && round.failed.is_empty() {
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

/// Deletes the accounts of `ids` that are still due, in one transaction of set-based
/// statements (one per table, not one per account). Accounts a cancel or another sweep got to
/// first are left out.
async fn delete_accounts(
    ctx: &AppContext,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<SweepReport> {
    let txn = ctx.db.begin().await?;
    // The claim: a write that re-checks each account is due, and locks it (SQLite's write lock,
    // PostgreSQL's row locks: a racing cancel or sweep waits, then finds nothing).
    let mut claimed: Vec<user::Model> = Vec::with_capacity(ids.len());
    let postgres = txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    for chunk in ids.chunks(CHUNK) {
        let mut claim = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .filter(user::Column::DeletionDueAt.lte(now));
        if postgres {
            // Rows another sweep or a cancel holds are skipped, not waited for: sweeps on
            // several replicas then never lock rows in conflicting orders (a deadlock), and a
            // skipped account that is still due is taken by a later batch.
            claim = claim.filter(
                user::Column::Id.in_subquery(
                    Query::select()
                        .column(user::Column::Id)
                        .from(user::Entity)
                        .and_where(
                            Expr::col(user::Column::Id).is_in(chunk.iter().map(String::as_str)),
                        )
                        .lock_with_behavior(
                            sea_orm::sea_query::LockType::Update,
                            sea_orm::sea_query::LockBehavior::SkipLocked,
                        )
                        .to_owned(),
                ),
            );
        }
        claimed.extend(claim.exec_with_returning(&txn).await?);
    }
    // Oldest first (the ids are time-ordered), whatever order RETURNING gave.
    claimed.sort_by(|a, b| a.id.cmp(&b.id));
    if claimed.is_empty() {
        txn.rollback().await?;
        return Ok(SweepReport::default());
    }
    let claimed_ids: Vec<String> = claimed.iter().map(|u| u.id.clone()).collect();
    let mut report = SweepReport {
        accounts: claimed.len() as u64,
        ids: claimed_ids.clone(),
        ..SweepReport::default()
    };
    let backend = txn.get_database_backend();
    for rule in PLAN {
        let n = match rule.policy {
            Policy::Cascade => {
                let mut n = 0;
                for chunk in claimed_ids.chunks(CHUNK) {
                    let delete = Query::delete()
                        .from_table(Alias::new(rule.table))
                        .and_where(
                            Expr::col(Alias::new(rule.column))
                                .is_in(chunk.iter().map(String::as_str)),
                        )
                        .to_owned();
                    n += txn
                        .execute_raw(backend.build(&delete))
                        .await?
                        .rows_affected();
                }
                n
            }
            Policy::Anonymize => anonymize_audit(&txn, &claimed).await?,
        };
        let target = if rule.policy == Policy::Cascade {
            &mut report.deleted
        } else {
            &mut report.anonymized
        };
        target.insert(rule.table.to_owned(), n);
    }
    let keys: Vec<String> = claimed
        .iter()
        .flat_map(|u| throttle_keys(ctx, &u.id, &u.email))
        .collect();
    let mut throttles = 0;
    for chunk in keys.chunks(CHUNK) {
        throttles += login_throttle::Entity::delete_many()
            .filter(login_throttle::Column::Key.is_in(chunk.iter().map(String::as_str)))
            .exec(&txn)
            .await?
            .rows_affected;
    }
    report.deleted.insert("login_throttles".into(), throttles);
    for chunk in claimed_ids.chunks(CHUNK) {
        user::Entity::delete_many()
            .filter(user::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
    }
    report.deleted.insert("users".into(), report.accounts);
    for chunk in claimed_ids.chunks(CHUNK) {
        deletion_event::Entity::insert_many(chunk.iter().map(|id| deletion_event::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            event: Set("user.deleted".into()),
            user_id: Set(id.clone()),
            occurred_at: Set(now),
            attempts: Set(0),
            next_attempt_at: Set(None),
            delivered_at: Set(None),
        }))
        .exec(&txn)
        .await?;
        audit_log::Entity::insert_many(chunk.iter().map(|id| {
            audit::Event::new(&Actor::System, "account_deleted")
                .user(&pseudonym(id))
                .row(now)
        }))
        .exec(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(report)
}

/// Rows per statement: the audit update binds about 7 values a row, inside the bound-parameter
/// limits of PostgreSQL (65,535) and of the bundled SQLite (32,766).
const CHUNK: usize = 200;

/// Keeps the users' audit entries with each user replaced by a pseudonym, and addresses, names
/// and IPs removed from them: one read, then one statement per chunk of rows.
async fn anonymize_audit(txn: &DatabaseTransaction, users: &[user::Model]) -> Result<u64> {
    let mut count = 0;
    for chunk in users.chunks(CHUNK) {
        let by_id: BTreeMap<&str, &user::Model> =
            chunk.iter().map(|u| (u.id.as_str(), u)).collect();
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::UserId.is_in(chunk.iter().map(|u| u.id.as_str())))
            .all(txn)
            .await?;
        count += rows.len() as u64;
        for rows in rows.chunks(CHUNK) {
            let mut user_ids = Expr::case(Expr::val(false), Expr::val(""));
            let mut details = Expr::case(Expr::val(false), Expr::val(""));
            for row in rows {
                let Some(user) = row.user_id.as_deref().and_then(|id| by_id.get(id)) else {
                    continue;
                };
                let pseudonym = pseudonym(&user.id);
                let personal: Vec<&str> = [user.email.as_str(), user.name.as_str()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                let detail = row
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .map(|v| scrub(v, &personal))
                    .filter(|v| !v.as_object().is_some_and(|o| o.is_empty()))
                    .map(|v| v.to_string());
                let this = || Expr::col(audit_log::Column::Id).eq(row.id);
                user_ids = user_ids.case(this(), Expr::val(pseudonym));
                details = details.case(this(), Expr::val(detail));
            }
            let update = Query::update()
                .table(audit_log::Entity)
                .value(
                    audit_log::Column::UserId,
                    user_ids.finally(Expr::col(audit_log::Column::UserId)),
                )
                .value(
                    audit_log::Column::Detail,
                    details.finally(Expr::col(audit_log::Column::Detail)),
                )
                .value(audit_log::Column::Ip, Expr::val(Option::<String>::None))
                .and_where(Expr::col(audit_log::Column::Id).is_in(rows.iter().map(|r| r.id)))
                .to_owned();
            txn.execute_raw(txn.get_database_backend().build(&update))
                .await?;
        }
        // Every entry that names the user as its actor (their own, and those about other
        // accounts, an admin's say): the pseudonym replaces that too.
        let mut actors = Expr::case(Expr::val(false), Expr::val(""));
        for user in chunk {
            actors = actors.case(
                Expr::col(audit_log::Column::Actor).eq(format!("user:{}", user.id)),
                Expr::val(format!("user:{}", pseudonym(&user.id))),
            );
        }
        let update = Query::update()
            .table(audit_log::Entity)
            .value(
                audit_log::Column::Actor,
                actors.finally(Expr::col(audit_log::Column::Actor)),
            )
            .and_where(
                Expr::col(audit_log::Column::Actor)
                    .is_in(chunk.iter().map(|u| format!("user:{}", u.id))),
            )
            .to_owned();
        txn.execute_raw(txn.get_database_backend().build(&update))
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
