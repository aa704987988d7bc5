//! Throttling per account, per client IP and per purpose, kept in the database so that it holds
//! across replicas and under parallel requests.
//!
//! An attempt is *reserved before the work* (the argon2 hash, the TOTP check): one atomic
//! statement counts it and, when the count passes the bucket's allowance, starts the waiting
//! period in the same statement. A bucket in its waiting period takes no reservation, so of a
//! burst of parallel requests only the allowance (plus the one that starts the wait) is ever
//! evaluated. A success gives the reservation back ([`Reservation::succeeded`]), and with it the
//! wait the attempt started; a failure keeps it, so it counts as the failure. When the work itself
//! could not be done (a database error) the attempt is given back too ([`Reservation::check`]).
//! A request dropped half-way (its client went away) keeps its attempt: the work may have been
//! done, and an attacker must not get the hash for free by hanging up.
//!
//! A login reserves in the client's bucket before the account's, so a client in its waiting
//! period touches no account, and a request refused by one bucket leaves no trace in the other.
//!
//! It delays, it never locks anyone out for good: every attempt past the allowance doubles the
//! wait (from `throttle.base_delay` up to `throttle.max_delay`), and counts older than
//! `throttle.reset_after` are forgotten.
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::clock::span;
use crate::config::ThrottleConfig;
use crate::domain::Email;
use crate::entity::login_throttle::{self, Column};
use crate::error::{Error, Result};

/// A throttle bucket and the number of attempts it allows before delaying.
#[derive(Debug, Clone)]
pub struct Bucket {
    key: String,
    free: u32,
    /// A success gives the attempt back (failure counters); hourly limits keep every attempt.
    refundable: bool,
}

impl Bucket {
    /// A failure-counting bucket of its own, e.g. second-factor failures of one account.
    pub fn new(key: String, free: u32) -> Self {
        Self {
            key,
            free,
            refundable: true,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The bucket of an account. Keys hold hashes, never addresses or IPs, so the table names nobody.
pub fn account_key(email: &Email) -> String {
    format!("account:{}", crate::tokens::hash(email.as_str()))
}

/// The bucket of a client IP for one purpose (`ip`, `reset-ip`, ...). An IPv6 client is keyed on
/// its /64: one allocation is one client, however many addresses it rotates through.
pub fn ip_key(purpose: &str, ip: IpAddr) -> String {
    format!("{purpose}:{}", crate::tokens::hash(&client_prefix(ip)))
}

/// The part of an address that names one client: the whole IPv4 address, an IPv6 /64.
pub fn client_prefix(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// The buckets a login attempt (or a re-authentication) counts against.
pub fn buckets(config: &ThrottleConfig, email: Option<&Email>, ip: Option<IpAddr>) -> Vec<Bucket> {
    // The client's bucket first: see the module's documentation.
    let mut out = Vec::with_capacity(2);
    if let Some(ip) = ip {
        out.push(Bucket::new(ip_key("ip", ip), config.ip_free_failures));
    }
    if let Some(email) = email {
        out.push(Bucket::new(
            account_key(email),
            config.account_free_failures,
        ));
    }
    out
}

/// The bucket of second-factor codes (authenticator codes and recovery codes) of one account,
/// at login and at re-authentication alike. Only a correct code empties it; a correct password
/// does not.
pub fn second_factor_bucket(config: &ThrottleConfig, user_id: &str) -> Bucket {
    Bucket::new(format!("2fa:{user_id}"), config.account_free_failures)
}

/// Attempts held in their buckets until the outcome is known.
#[must_use = "a reservation is kept as a failure unless `succeeded` gives it back"]
#[derive(Debug)]
pub struct Reservation {
    buckets: Vec<Bucket>,
    /// When the attempts were counted: a bucket whose last attempt is still this one had no
    /// wait before it (a waiting bucket takes no reservation), so giving it back ends any wait.
    at: DateTime<Utc>,
}

impl Reservation {
    /// The attempt succeeded: failure-counting buckets give it back. The bucket whose key is
    /// `clear` (the account after a correct password) is emptied instead.
    pub async fn succeeded(self, db: &impl ConnectionTrait, clear: Option<&str>) -> Result<()> {
        for bucket in self.buckets.iter().filter(|b| b.refundable) {
            if clear == Some(bucket.key.as_str()) {
                clear_key(db, &bucket.key).await?;
            } else {
                refund(db, bucket, self.at).await?;
            }
        }
        Ok(())
    }

    /// The attempt failed: it stays counted. (Dropping the reservation does the same; this
    /// says so where it matters.)
    pub fn failed(self) {}

    /// Runs the check the attempt is for (the hash, the code). When the check itself cannot be
    /// done (an internal error), the attempt is given back, so a fault of the service costs the
    /// user nothing; errors of that refund are logged.
    pub async fn check<T>(
        self,
        db: &impl ConnectionTrait,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<(T, Self)> {
        match work.await {
            Ok(verdict) => Ok((verdict, self)),
            Err(e) => {
                if let Err(refund) = self.succeeded(db, None).await {
                    tracing::warn!(error = %refund, "a throttle reservation could not be given back");
                }
                Err(e)
            }
        }
    }
}

/// Reserves one attempt in every bucket, or refuses with `Throttled` when any of them is in its
/// waiting period (giving back what it had already reserved in the others).
pub async fn reserve(
    db: &impl ConnectionTrait,
    config: &ThrottleConfig,
    buckets: Vec<Bucket>,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    let mut held: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        if let Err(e) = reserve_one(db, config, &bucket, now).await {
            for done in &held {
                refund(db, done, now).await?;
            }
            return Err(e);
        }
        held.push(bucket);
    }
    Ok(Reservation {
        buckets: held,
        at: now,
    })
}

/// The end of the wait that the `count`-th attempt in `bucket` starts, if it starts one.
fn wait_after(
    config: &ThrottleConfig,
    bucket: &Bucket,
    count: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let over = count.checked_sub(bucket.free).filter(|o| *o > 0)?;
    Some(now + span(delay(config, over)))
}

/// `CASE` over the new count (`count` is an SQL expression): the wait it starts, or NULL.
fn wait_expr(config: &ThrottleConfig, bucket: &Bucket, count: Expr, now: DateTime<Utc>) -> Expr {
    let none: Option<DateTime<Utc>> = None;
    let free = i64::from(bucket.free);
    let mut case = Expr::case(count.clone().lte(free), Expr::value(none));
    // One branch per doubling until the cap; the cap is the ELSE.
    let mut over: u32 = 1;
    while delay(config, over) < config.max_delay && over <= 31 {
        case = case.case(
            count.clone().eq(free + i64::from(over)),
            Expr::value(now + span(delay(config, over))),
        );
        over += 1;
    }
    case.finally(Expr::value(now + span(config.max_delay)))
        .into()
}

async fn reserve_one(
    db: &impl ConnectionTrait,
    config: &ThrottleConfig,
    bucket: &Bucket,
    now: DateTime<Utc>,
) -> Result<()> {
    let cutoff = now - span(config.reset_after);
    for _ in 0..3 {
        // A bucket nobody has touched: the insert is the reservation.
        let inserted = login_throttle::Entity::insert(login_throttle::ActiveModel {
            key: Set(bucket.key.clone()),
            failures: Set(1),
            last_failure_at: Set(now),
            blocked_until: Set(wait_after(config, bucket, 1, now)),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
        if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            return Ok(());
        }
        // Otherwise count this attempt in one statement, unless the bucket is waiting. The
        // database serialises concurrent updates of one row, so every attempt gets its own count.
        let stale = Expr::col(Column::LastFailureAt).lt(cutoff);
        let count: Expr = Expr::case(stale, 1)
            .finally(Expr::col(Column::Failures).add(1))
            .into();
        let updated = login_throttle::Entity::update_many()
            .col_expr(Column::Failures, count.clone())
            .col_expr(Column::LastFailureAt, Expr::value(now))
            .col_expr(Column::BlockedUntil, wait_expr(config, bucket, count, now))
            .filter(Column::Key.eq(bucket.key.as_str()))
            .filter(
                Column::BlockedUntil
                    .is_null()
                    .or(Column::BlockedUntil.lte(now)),
            )
            .exec(db)
            .await?;
        if updated.rows_affected > 0 {
            return Ok(());
        }
        // Waiting: say for how long. (A row pruned in between is simply tried again.)
        let row = login_throttle::Entity::find_by_id(bucket.key.clone())
            .one(db)
            .await?;
        if let Some(until) = row.and_then(|r| r.blocked_until).filter(|u| *u > now) {
            return Err(Error::Throttled {
                retry_after: round_up((until - now).to_std().unwrap_or_default()),
            });
        }
    }
    Err(Error::Throttled {
        retry_after: Duration::from_secs(1),
    })
}

/// Gives back one attempt reserved at `at`. The wait it may have started goes too: when the count
/// falls back within the allowance, and when no attempt was counted after it (before it the
/// bucket was not waiting, or it would not have taken the reservation). The millisecond of slack
/// covers databases that keep timestamps less precisely than the clock gives them.
async fn refund(db: &impl ConnectionTrait, bucket: &Bucket, at: DateTime<Utc>) -> Result<()> {
    if !bucket.refundable {
        return Ok(());
    }
    let none: Option<DateTime<Utc>> = None;
    let back = Expr::col(Column::Failures).sub(1);
    let ends_wait = back
        .clone()
        .lte(i64::from(bucket.free))
        .or(Expr::col(Column::LastFailureAt).lte(at + chrono::TimeDelta::milliseconds(1)));
    login_throttle::Entity::update_many()
        .col_expr(Column::Failures, back)
        .col_expr(
            Column::BlockedUntil,
            Expr::case(ends_wait, Expr::value(none))
                .finally(Expr::col(Column::BlockedUntil))
                .into(),
        )
        .filter(Column::Key.eq(bucket.key.as_str()))
        .filter(Column::Failures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// A plain hourly limit per client IP (`purpose` names the bucket): up to `limit` requests an
/// hour are let through, and the one that reaches `limit` starts a one-hour wait. Every request
/// counts, whatever its outcome. `limit = 0` disables it.
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
    let bucket = Bucket {
        key: ip_key(purpose, ip),
        free: limit - 1,
        refundable: false,
    };
    reserve(db, &spaced(Duration::from_secs(3600)), vec![bucket], now)
        .await?
        .failed();
    Ok(())
}

/// Whether the thing named by `key` may happen now, at most once per `interval` (e.g. one reset
/// mail per address and `password_reset.resend_interval`). One atomic statement decides, so of
/// parallel requests exactly one is told yes, on every replica.
pub async fn once_per(
    db: &impl ConnectionTrait,
    key: String,
    interval: Duration,
    now: DateTime<Utc>,
) -> Result<bool> {
    if interval.is_zero() {
        return Ok(true);
    }
    let bucket = Bucket {
        key,
        free: 0,
        refundable: false,
    };
    match reserve(db, &spaced(interval), vec![bucket], now).await {
        Ok(reservation) => {
            reservation.failed();
            Ok(true)
        }
        Err(Error::Throttled { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether one more of the thing named by `key` fits in `limit` per hour (e.g. sign-in mails
/// to one account). One atomic statement decides, as for [`once_per`]. `0`: no limit.
pub async fn within_hourly(
    db: &impl ConnectionTrait,
    key: String,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<bool> {
    if limit == 0 {
        return Ok(true);
    }
    let bucket = Bucket {
        key,
        free: limit - 1,
        refundable: false,
    };
    match reserve(db, &spaced(Duration::from_secs(3600)), vec![bucket], now).await {
        Ok(reservation) => {
            reservation.failed();
            Ok(true)
        }
        Err(Error::Throttled { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Up to `limit` requests per minute under `key` (e.g. one SCIM token); the one past it is
/// `Throttled` with the wait. One atomic statement decides, on every replica. `0`: no limit.
pub async fn per_minute(
    db: &impl ConnectionTrait,
    key: String,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    let bucket = Bucket {
        key,
        free: limit - 1,
        refundable: false,
    };
    reserve(db, &spaced(Duration::from_secs(60)), vec![bucket], now)
        .await?
        .failed();
    Ok(())
}

/// Buckets whose every wait is `interval`, and whose count is forgotten after it.
fn spaced(interval: Duration) -> ThrottleConfig {
    ThrottleConfig {
        base_delay: interval,
        max_delay: interval,
        reset_after: interval,
        ..ThrottleConfig::default()
    }
}

/// The key under which reset mails of one account are spaced.
pub fn reset_mail_key(user_id: &str) -> String {
    format!("reset-mail:{user_id}")
}

/// Clears one bucket (e.g. second-factor failures after a correct code).
pub async fn clear_key(db: &impl ConnectionTrait, key: &str) -> Result<()> {
    login_throttle::Entity::delete_by_id(key.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Clears an account's failures (after a password reset).
pub async fn clear_account(db: &impl ConnectionTrait, email: &Email) -> Result<()> {
    clear_key(db, &account_key(email)).await
}

/// The wait after the `over`-th attempt beyond the allowance: base × 2^(over−1), capped.
pub fn delay(config: &ThrottleConfig, over: u32) -> Duration {
    let factor = 2u32.saturating_pow(Ord::min(over.saturating_sub(1), 30));
    config
        .base_delay
        .saturating_mul(factor)
        .min(config.max_delay)
}

fn round_up(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(Ord::max(secs, 1))
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

    #[test]
    fn ipv6_clients_are_keyed_on_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key("ip", a), ip_key("ip", b));
        assert_ne!(ip_key("ip", a), ip_key("ip", other));
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key("ip", v4), ip_key("ip", mapped));
        assert_ne!(
            ip_key("ip", v4),
            ip_key("ip", "192.0.2.8".parse().expect("ip"))
        );
    }
}
