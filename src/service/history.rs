//! Login history and the new-IP check built on it.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::entity::login_event;
use crate::error::Result;

use super::{ClientInfo, devices};

/// The kind of event: the first session at signup, or a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signup,
    Login,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
        }
    }
}

/// One attempt on a known account. `reason` says why a failure failed.
pub struct Attempt<'a> {
    pub user_id: &'a str,
    pub kind: Kind,
    pub method: &'a str,
    pub success: bool,
    pub reason: Option<&'a str>,
}

pub async fn record(
    db: &impl ConnectionTrait,
    attempt: Attempt<'_>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    login_event::Entity::insert(login_event::ActiveModel {
        user_id: Set(attempt.user_id.to_owned()),
        at: Set(now),
        kind: Set(attempt.kind.as_str().to_owned()),
        method: Set(attempt.method.to_owned()),
        success: Set(attempt.success),
        reason: Set(attempt.reason.map(str::to_owned)),
        ip: Set(client.ip_string()),
        user_agent: Set(client.user_agent.clone()),
        device_name: Set(devices::device_name(client.user_agent.as_deref())),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Whether a successful login from `client` deserves a "new sign-in" alert: the account has
/// logged in before (the first login after signup never alerts) and never successfully from
/// this IP (the signup's IP counts as known).
pub async fn is_new_ip(
    db: &impl ConnectionTrait,
    user_id: &str,
    client: &ClientInfo,
) -> Result<bool> {
    let Some(ip) = client.ip_string() else {
        return Ok(false);
    };
    let earlier_logins = login_event::Entity::find()
        .filter(login_event::Column::UserId.eq(user_id))
        .filter(login_event::Column::Kind.eq(Kind::Login.as_str()))
        .filter(login_event::Column::Success.eq(true))
        .count(db)
        .await?;
    if earlier_logins == 0 {
        return Ok(false);
    }
    let seen = login_event::Entity::find()
        .filter(login_event::Column::UserId.eq(user_id))
        .filter(login_event::Column::Success.eq(true))
        .filter(login_event::Column::Ip.eq(ip))
        .count(db)
        .await?;
    Ok(seen == 0)
}

/// One entry of `GET /me/login-history` and `authctl users history`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginEventView {
    pub at: DateTime<Utc>,
    pub success: bool,
    /// `password`, `magic_link`, `passkey` or `sso`.
    pub method: String,
    /// Why a failed attempt failed.
    pub reason: Option<String>,
    pub ip: Option<String>,
    pub device_name: String,
    pub user_agent: Option<String>,
}

/// The newest `limit` login attempts of a user, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: &str,
    limit: u64,
) -> Result<Vec<LoginEventView>> {
    let rows = login_event::Entity::find()
        .filter(login_event::Column::UserId.eq(user_id))
        .filter(login_event::Column::Kind.eq(Kind::Login.as_str()))
        .order_by_desc(login_event::Column::At)
        .order_by_desc(login_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| LoginEventView {
            at: r.at,
            success: r.success,
            method: r.method,
            reason: r.reason,
            ip: r.ip,
            device_name: r.device_name,
            user_agent: r.user_agent,
        })
        .collect())
}
