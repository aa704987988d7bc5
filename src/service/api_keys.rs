//! API keys: `authctl_<id>_<secret>` with 256 random bits, shown once, stored as SHA-256. A key
//! acts for its user on ordinary API calls (`Authorization: Bearer`), never on credential
//! changes, step-up or deletion.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::{api_key, user};
use crate::error::{Error, Result};
use crate::tokens;

use super::{Actor, ClientInfo, audit};

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The visible start of the key, `authctl_<id>`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKeyView {
    fn from(k: api_key::Model) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
        }
    }
}

/// Creates a key; the returned string is the only time the secret exists outside the client.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %user_id))]
pub async fn create(
    ctx: &AppContext,
    user_id: &str,
    name: &str,
    expires_in: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(ApiKeyView, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_name",
            "give the key a name of 1 to 100 characters",
        ));
    }
    let ttl = match expires_in {
        None => ctx.config.api_keys.default_ttl,
        Some(raw) => humantime::parse_duration(raw.trim()).map_err(|_| {
            Error::invalid(
                "invalid_expiry",
                format!("expiresIn `{raw}` is not a duration like 30d or 12h"),
            )
        })?,
    };
    if ttl.is_zero() || ttl > ctx.config.api_keys.max_ttl {
        return Err(Error::invalid(
            "invalid_expiry",
            format!(
                "expiresIn must be more than 0 and at most {}",
                humantime::format_duration(ctx.config.api_keys.max_ttl)
            ),
        ));
    }
    let id_part: String = tokens::generate()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let prefix = format!("authctl_{id_part}");
    let key = format!("{prefix}_{}", tokens::generate());
    let model = api_key::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        name: Set(name.to_owned()),
        prefix: Set(prefix),
        key_hash: Set(tokens::hash(&key)),
        created_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(Some(now + span(ttl))),
    };
    let row = api_key::Entity::insert(model)
        .exec_with_returning(&ctx.db)
        .await?;
    audit::Event::new(&Actor::User(user_id.to_owned()), "api_key_created")
        .user(user_id)
        .client(client)
        .detail(json!({ "keyId": row.id, "name": row.name }))
        .record(&ctx.db, now)
        .await?;
    Ok((row.into(), key))
}

/// A user's keys, newest first.
pub async fn list(ctx: &AppContext, user_id: &str) -> Result<Vec<ApiKeyView>> {
    let rows = api_key::Entity::find()
        .filter(api_key::Column::UserId.eq(user_id))
        .order_by_desc(api_key::Column::CreatedAt)
        .all(&ctx.db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a key. With `owner`, another user's key is `NotFound`.
#[tracing::instrument(skip_all, err(level = "debug"), fields(key_id = %id))]
pub async fn revoke(
    ctx: &AppContext,
    actor: &Actor,
    owner: Option<&str>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<ApiKeyView> {
    let key = api_key::Entity::find_by_id(id.to_owned())
        .one(&ctx.db)
        .await?
        .filter(|k| owner.is_none_or(|o| o == k.user_id))
        .ok_or(Error::NotFound("api key"))?;
    api_key::Entity::delete_by_id(key.id.clone())
        .exec(&ctx.db)
        .await?;
    audit::Event::new(actor, "api_key_revoked")
        .user(&key.user_id)
        .detail(json!({ "keyId": key.id, "name": key.name }))
        .record(&ctx.db, now)
        .await?;
    Ok(key.into())
}

/// Ends every key of a user (after a password reset); returns how many there were.
pub async fn revoke_all_for_user(db: &impl ConnectionTrait, user_id: &str) -> Result<u64> {
    Ok(api_key::Entity::delete_many()
        .filter(api_key::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// The user a key acts for: one indexed read; `last_used_at` is written at most once a minute.
pub async fn authenticate(ctx: &AppContext, key: &str, now: DateTime<Utc>) -> Result<user::Model> {
    if !key.starts_with("authctl_") || key.len() > 100 {
        return Err(Error::Unauthenticated);
    }
    let found = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(tokens::hash(key)))
        .find_also_related(user::Entity)
        // `all`, not `one`: no re-prepare on SQLite for a bound LIMIT (see sessions::authenticate).
        .all(&ctx.read)
        .await?
        .into_iter()
        .next();
    let Some((row, Some(user))) = found else {
        return Err(Error::Unauthenticated);
    };
    if row.expires_at.is_some_and(|t| t <= now) || user.disabled_at.is_some() {
        return Err(Error::Unauthenticated);
    }
    if row
        .last_used_at
        .is_none_or(|t| now - t >= span(ctx.config.session.touch_interval))
    {
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(row.id.as_str()))
            .exec(&ctx.db)
            .await?;
    }
    Ok(user)
}
