//! Login throttling per account and per client IP, kept in the database so that it holds across
//! replicas. It delays, it never locks anyone out for good: after the free failures every further
//! one doubles the wait (from `throttle.base_delay` up to `throttle.max_delay`), and a success
//! clears the account's count.
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::config::ThrottleConfig;
use crate::domain::Email;
use crate::entity::login_throttle;
use crate::error::{Error, Result};

/// A throttle bucket and the number of failures it allows before delaying.
#[derive(Debug, Clone)]
pub struct Bucket {
    key: String,
    free: u32,
}

impl Bucket {
    /// A bucket of its own, e.g. second-factor failures of one account.
    pub fn new(key: String, free: u32) -> Self {
        Self { key, free }
    }
}

/// The bucket of an account. Keys hold hashes, never addresses or IPs, so the table names nobody.
pub fn account_key(email: &Email) -> String {
    format!("account:{}", crate::tokens::hash(email.as_str()))
}

/// The bucket of a client IP for one purpose (`ip`, `reset-ip`, ...).
pub fn ip_key(purpose: &str, ip: IpAddr) -> String {
    format!("{purpose}:{}", crate::tokens::hash(&ip.to_string()))
}

/// The buckets a login attempt counts against.
pub fn buckets(config: &ThrottleConfig, email: Option<&Email>, ip: Option<IpAddr>) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(2);
    if let Some(email) = email {
        out.push(Bucket {
            key: account_key(email),
            free: config.account_free_failures,
        });
    }
    if let Some(ip) = ip {
        out.push(Bucket {
            key: ip_key("ip", ip),
            free: config.ip_free_failures,
        });
    }
    out
}

/// Refuses the attempt with `Throttled` while any of the buckets is in its waiting period.
pub async fn check(
    db: &impl ConnectionTrait,
    buckets: &[Bucket],
    now: DateTime<Utc>,
) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    let rows = login_throttle::Entity::find()
        .filter(login_throttle::Column::Key.is_in(buckets.iter().map(|b| b.key.clone())))
        .filter(login_throttle::Column::BlockedUntil.gt(now))
        .all(db)
        .await?;
    let wait = rows
        .iter()
        .filter_map(|r| r.blocked_until)
        .map(|until| (until - now).to_std().unwrap_or_default())
        .max();
    match wait {
        Some(wait) => Err(Error::Throttled {
            retry_after: round_up(wait),
        }),
        None => Ok(()),
    }
}

/// Counts a failure against every bucket and starts a waiting period for those past their allowance.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    config: &ThrottleConfig,
    buckets: &[Bucket],
    now: DateTime<Utc>,
) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = buckets.iter().map(|b| b.key.clone()).collect();
    // Failures older than `reset_after` are forgotten before counting this one.
    let cutoff = now - crate::clock::span(config.reset_after);
    login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::Key.is_in(keys.clone()))
        .filter(login_throttle::Column::LastFailureAt.lt(cutoff))
        .exec(db)
        .await?;
    for bucket in buckets {
        // One atomic statement, so concurrent failures on several replicas all count.
        login_throttle::Entity::insert(login_throttle::ActiveModel {
            key: Set(bucket.key.clone()),
            failures: Set(1),
            last_failure_at: Set(now),
            blocked_until: Set(None),
        })
        .on_conflict(
            OnConflict::column(login_throttle::Column::Key)
                .value(
                    login_throttle::Column::Failures,
                    sea_orm::sea_query::ExprTrait::add(
                        Expr::col((login_throttle::Entity, login_throttle::Column::Failures)),
                        1,
                    ),
                )
                .value(login_throttle::Column::LastFailureAt, Expr::value(now))
                .to_owned(),
        )
        .exec(db)
        .await?;
    }
    let rows = login_throttle::Entity::find()
        .filter(login_throttle::Column::Key.is_in(keys))
        .all(db)
        .await?;
    for row in rows {
        let Some(bucket) = buckets.iter().find(|b| b.key == row.key) else {
            continue;
        };
        let over = u32::try_from(row.failures)
            .unwrap_or(0)
            .saturating_sub(bucket.free);
        if over == 0 {
            continue;
        }
        let until = now + crate::clock::span(delay(config, over));
        login_throttle::Entity::update_many()
            .col_expr(login_throttle::Column::BlockedUntil, Expr::value(until))
            .filter(login_throttle::Column::Key.eq(row.key))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// A plain hourly limit per client IP (`purpose` names the bucket): the request that reaches
/// `limit` starts a one-hour wait, so the next one is `Throttled`. `limit = 0` disables it.
pub async fn per_ip_per_hour(
    db: &impl ConnectionTrait,
    purpose: &str,
    ip: Option<IpAddr>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    let (Some(ip), true) = (ip, limit > 0) else {
        return Ok(());
    };
    let hour = Duration::from_secs(3600);
    let hourly = ThrottleConfig {
        base_delay: hour,
        max_delay: hour,
        reset_after: hour,
        ..ThrottleConfig::default()
    };
    let bucket = [Bucket::new(ip_key(purpose, ip), limit - 1)];
    check(db, &bucket, now).await?;
    record_failure(db, &hourly, &bucket, now).await
}

/// Clears one bucket (e.g. second-factor failures after a correct code).
pub async fn clear_key(db: &impl ConnectionTrait, key: &str) -> Result<()> {
    login_throttle::Entity::delete_by_id(key.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Clears an account's failures after a successful login.
pub async fn clear_account(db: &impl ConnectionTrait, email: &Email) -> Result<()> {
    login_throttle::Entity::delete_by_id(account_key(email))
        .exec(db)
        .await?;
    Ok(())
}

/// The wait after the `over`-th failure beyond the allowance: base × 2^(over−1), capped.
pub fn delay(config: &ThrottleConfig, over: u32) -> Duration {
    let factor = 2u32.saturating_pow(over.saturating_sub(1).min(30));
    config
        .base_delay
        .saturating_mul(factor)
        .min(config.max_delay)
}

fn round_up(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_cap() {
        let config = ThrottleConfig::default();
        assert_eq!(delay(&config, 1), Duration::from_secs(1));
        assert_eq!(delay(&config, 2), Duration::from_secs(2));
        assert_eq!(delay(&config, 5), Duration::from_secs(16));
        assert_eq!(delay(&config, 40), Duration::from_secs(3600));
    }
}
