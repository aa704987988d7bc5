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
    /// An operator at the CLI (`user@host`, from the process's operating-system account).
    Cli(String),
    /// Someone who is not signed in (signup, a failed login, a verification link).
    Anonymous,
    /// `authctl serve`'s own schedule.
    System,
    /// The SCIM client of a SAML provider (by the provider's name).
    Scim(String),
}

impl Actor {
    /// The operator running this CLI process: the operating-system account of the process
    /// (its user id looked up in the user database, not `$USER`, which any caller can set) and
    /// the host, as `alice@host`.
    pub fn cli() -> Self {
        let user = whoami::username()
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let host = whoami::hostname()
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        Self::Cli(format!("{user}@{host}"))
    }

    pub fn label(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Cli(name) => format!("cli:{name}"),
            Self::Anonymous => "anonymous".into(),
            Self::System => "system".into(),
            Self::Scim(provider) => format!("scim:{provider}"),
        }
    }
}

/// One audit row to write:
/// `audit::Event::new(&actor, "login").user(&id).client(client).detail(json!({..})).record(db, now)`.
/// `detail` must never hold a secret.
#[must_use = "an audit event is written by `record`"]
#[derive(Debug)]
pub struct Event<'a> {
    actor: &'a Actor,
    action: &'a str,
    user_id: Option<&'a str>,
    client: Option<&'a ClientInfo>,
    detail: Value,
}

impl<'a> Event<'a> {
    pub fn new(actor: &'a Actor, action: &'a str) -> Self {
        Self {
            actor,
            action,
            user_id: None,
            client: None,
            detail: Value::Object(serde_json::Map::new()),
        }
    }

    /// The account the event is about.
    pub fn user(self, id: &'a str) -> Self {
        self.maybe_user(Some(id))
    }

    pub fn maybe_user(mut self, id: Option<&'a str>) -> Self {
        self.user_id = id;
        self
    }

    /// The request the event came from (its IP is kept).
    pub fn client(self, client: &'a ClientInfo) -> Self {
        self.maybe_client(Some(client))
    }

    pub fn maybe_client(mut self, client: Option<&'a ClientInfo>) -> Self {
        self.client = client;
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub async fn record(self, db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<()> {
        audit_log::Entity::insert(self.row(now)).exec(db).await?;
        Ok(())
    }

    /// The row `record` writes, for a store that writes many at once.
    pub fn row(self, now: DateTime<Utc>) -> audit_log::ActiveModel {
        audit_log::ActiveModel {
            at: Set(now),
            actor: Set(self.actor.label()),
            action: Set(self.action.to_owned()),
            user_id: Set(self.user_id.map(str::to_owned)),
            ip: Set(self.client.and_then(ClientInfo::ip_string)),
            detail: Set((!self.detail.is_null()).then(|| self.detail.to_string())),
            ..Default::default()
        }
    }
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
    let page = super::Page {
        limit: Some(limit),
        after: None,
    };
    Ok(list_page(ctx, user_id, since, None, &page).await?.items)
}

/// One page of audit events, newest first; `before_id` continues an earlier page (ids grow).
pub async fn list_page(
    ctx: &AppContext,
    user_id: Option<&str>,
    since: Option<DateTime<Utc>>,
    before_id: Option<i64>,
    page: &super::Page,
) -> Result<super::Paged<AuditEntry>> {
    let mut query = audit_log::Entity::find();
    if let Some(id) = before_id {
        query = query.filter(audit_log::Column::Id.lt(id));
    }
    if let Some(id) = user_id {
        query = query.filter(audit_log::Column::UserId.eq(id));
    }
    if let Some(since) = since {
        query = query.filter(audit_log::Column::At.gte(since));
    }
    let rows = query
        .order_by_desc(audit_log::Column::Id)
        .limit(page.fetch())
        .all(&ctx.db)
        .await?;
    let rows = rows
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
        .collect();
    Ok(page.cut(rows, |e: &AuditEntry| e.id.to_string()))
}
