//! The audit log: written by the service layer for every security-relevant event and CLI action.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::Value;

use crate::context::AppContext;
use crate::entity::audit_log;
use crate::error::Result;

use super::ClientInfo;

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The signed-in user (by id).
    User(String),
    /// An operator at the CLI (by operating-system user name).
    Cli(String),
    /// Someone who is not signed in (signup, a failed login, a verification link).
    Anonymous,
    /// `authctl serve`'s own schedule.
    System,
}

impl Actor {
    /// The operator running this CLI process.
    pub fn cli() -> Self {
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self::Cli(name)
    }

    pub fn label(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Cli(name) => format!("cli:{name}"),
            Self::Anonymous => "anonymous".into(),
            Self::System => "system".into(),
        }
    }
}

/// Writes one audit row. `detail` must never hold a secret.
pub async fn record(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    actor: &Actor,
    action: &str,
    user_id: Option<&str>,
    client: Option<&ClientInfo>,
    detail: Value,
) -> Result<()> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        at: Set(now),
        actor: Set(actor.label()),
        action: Set(action.to_owned()),
        user_id: Set(user_id.map(str::to_owned)),
        ip: Set(client.and_then(ClientInfo::ip_string)),
        detail: Set((!detail.is_null()).then(|| detail.to_string())),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// One audit entry as shown to operators.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<Value>,
}

/// The newest entries first, optionally for one account and from a point in time.
pub async fn list(
    ctx: &AppContext,
    user_id: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<AuditEntry>> {
    let mut query = audit_log::Entity::find();
    if let Some(id) = user_id {
        query = query.filter(audit_log::Column::UserId.eq(id));
    }
    if let Some(since) = since {
        query = query.filter(audit_log::Column::At.gte(since));
    }
    let rows = query
        .order_by_desc(audit_log::Column::At)
        .order_by_desc(audit_log::Column::Id)
        .limit(limit)
        .all(&ctx.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            user_id: r.user_id,
            ip: r.ip,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect())
}
