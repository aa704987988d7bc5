//! Bearer tokens of a provider's SCIM client: `authctl_scim_<id>_<secret>` with 256 random
//! bits, shown once, stored as SHA-256. A token acts only on its provider's users and groups.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::{saml_provider, scim_token};
use crate::error::{Error, Result};
use crate::service::{Actor, audit};
use crate::tokens;

const PREFIX: &str = "authctl_scim_";

/// A token as listed: never the secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub provider: String,
    pub name: String,
    /// The visible start of the token, `authctl_scim_<id>`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

fn view(t: scim_token::Model, provider: &str) -> TokenView {
    TokenView {
        id: t.id,
        provider: provider.to_owned(),
        name: t.name,
        prefix: t.prefix,
        created_at: t.created_at,
        last_used_at: t.last_used_at,
    }
}

async fn provider_named(ctx: &AppContext, name: &str) -> Result<saml_provider::Model> {
    saml_provider::Entity::find()
        .filter(saml_provider::Column::Name.eq(name))
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("SAML provider"))
}

/// `authctl scim tokens create`: a new token for the provider's SCIM client. The returned
/// string is the only time the secret exists outside the client.
pub async fn create(
    ctx: &AppContext,
    actor: &Actor,
    provider: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(TokenView, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_name",
            "give the token a name of 1 to 100 characters",
        ));
    }
    let provider = provider_named(ctx, provider).await?;
    let id_part: String = tokens::generate()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let prefix = format!("{PREFIX}{id_part}");
    let token = format!("{prefix}_{}", tokens::generate());
    let row = scim_token::Entity::insert(scim_token::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        provider_id: Set(provider.id.clone()),
        name: Set(name.to_owned()),
        prefix: Set(prefix),
        token_hash: Set(tokens::hash(&token)),
        created_at: Set(now),
        last_used_at: Set(None),
    })
    .exec_with_returning(&ctx.db)
    .await?;
    audit::Event::new(actor, "scim_token_created")
        .detail(json!({ "provider": provider.name, "tokenId": row.id, "name": row.name }))
        .record(&ctx.db, now)
        .await?;
    Ok((view(row, &provider.name), token))
}

/// The tokens of one provider (all providers when `None`), newest first.
pub async fn list(ctx: &AppContext, provider: Option<&str>) -> Result<Vec<TokenView>> {
    let providers: std::collections::HashMap<String, String> = saml_provider::Entity::find()
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let mut query = scim_token::Entity::find().order_by_desc(scim_token::Column::CreatedAt);
    if let Some(name) = provider {
        let p = provider_named(ctx, name).await?;
        query = query.filter(scim_token::Column::ProviderId.eq(p.id));
    }
    Ok(query
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|t| {
            let provider = providers.get(&t.provider_id).cloned().unwrap_or_default();
            view(t, &provider)
        })
        .collect())
}

/// `authctl scim tokens revoke`: the token stops working at once.
pub async fn revoke(
    ctx: &AppContext,
    actor: &Actor,
    id: &str,
    now: DateTime<Utc>,
) -> Result<TokenView> {
    let token = scim_token::Entity::find_by_id(id.to_owned())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("SCIM token"))?;
    let provider = saml_provider::Entity::find_by_id(token.provider_id.as_str())
        .one(&ctx.db)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    scim_token::Entity::delete_by_id(token.id.clone())
        .exec(&ctx.db)
        .await?;
    audit::Event::new(actor, "scim_token_revoked")
        .detail(json!({ "provider": provider, "tokenId": token.id, "name": token.name }))
        .record(&ctx.db, now)
        .await?;
    Ok(view(token, &provider))
}

/// The token's row and its provider: one indexed read; `last_used_at` written at most once a
/// minute.
pub async fn authenticate(
    ctx: &AppContext,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(scim_token::Model, saml_provider::Model)> {
    if !token.starts_with(PREFIX) || token.len() > 120 {
        return Err(Error::Unauthenticated);
    }
    let found = scim_token::Entity::find()
        .filter(scim_token::Column::TokenHash.eq(tokens::hash(token)))
        .find_also_related(saml_provider::Entity)
        .all(&ctx.read)
        .await?
        .into_iter()
        .next();
    let Some((row, Some(provider))) = found else {
        return Err(Error::Unauthenticated);
    };
    if row
        .last_used_at
        .is_none_or(|t| now - t >= span(ctx.config.session.touch_interval))
    {
        scim_token::Entity::update_many()
            .col_expr(scim_token::Column::LastUsedAt, Expr::value(now))
            .filter(scim_token::Column::Id.eq(row.id.as_str()))
            .exec(&ctx.db)
            .await?;
    }
    Ok((row, provider))
}
