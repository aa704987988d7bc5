//! Store: single-use tokens sent by mail (`verification_token`), one table for every purpose
//! (verifying an address, changing it, cancelling the change, resetting a password). Only the
//! SHA-256 of a token is kept; a token is valid once, until it expires.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::clock::span;
use crate::context::AppContext;
use crate::entity::verification_token;
use crate::error::{Error, Result};
use crate::tokens;

/// Looks a mailed token up without using it: `Gone` (410) when it is unknown, used or expired.
pub async fn peek(
    ctx: &AppContext,
    purpose: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<verification_token::Model> {
    if !tokens::looks_valid(token) {
        return Err(Error::invalid(
            "invalid_token",
            "the link is malformed; copy the whole link from the mail",
        ));
    }
    let found = verification_token::Entity::find_by_id(tokens::hash(token))
        .filter(verification_token::Column::Purpose.eq(purpose))
        .one(&ctx.db)
        .await?;
    let Some(row) = found else {
        return Err(Error::gone(
            "token_invalid",
            "this link is not valid any more; ask for a new one",
        ));
    };
    if row.used_at.is_some() {
        return Err(Error::gone("token_used", "this link has already been used"));
    }
    if row.expires_at <= now {
        return Err(Error::gone(
            "token_expired",
            "this link has expired; ask for a new one",
        ));
    }
    Ok(row)
}

/// Uses a mailed token: of two concurrent uses exactly one succeeds, the other is `Gone`.
pub async fn consume(
    ctx: &AppContext,
    purpose: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<verification_token::Model> {
    let row = peek(ctx, purpose, token, now).await?;
    let consumed = verification_token::Entity::update_many()
        .col_expr(verification_token::Column::UsedAt, Expr::value(now))
        .filter(verification_token::Column::TokenHash.eq(row.token_hash.as_str()))
        .filter(verification_token::Column::UsedAt.is_null())
        .exec(&ctx.db)
        .await?;
    if consumed.rows_affected == 0 {
        return Err(Error::gone("token_used", "this link has already been used"));
    }
    Ok(row)
}

/// Stores a new single-use token for `user_id` and returns it (to be mailed, never logged).
pub async fn store(
    db: &impl ConnectionTrait,
    purpose: &str,
    user_id: &str,
    email: &str,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<String> {
    store_bound(db, purpose, user_id, email, ttl, None, now).await
}

/// [`store`] for a token that works only with the browser binding whose hash is `binding_hash`.
pub async fn store_bound(
    db: &impl ConnectionTrait,
    purpose: &str,
    user_id: &str,
    email: &str,
    ttl: std::time::Duration,
    binding_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<String> {
    let token = tokens::generate();
    verification_token::Entity::insert(verification_token::ActiveModel {
        token_hash: Set(tokens::hash(&token)),
        user_id: Set(user_id.to_owned()),
        purpose: Set(purpose.into()),
        email: Set(email.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + span(ttl)),
        used_at: Set(None),
        binding_hash: Set(binding_hash),
    })
    .exec(db)
    .await?;
    Ok(token)
}

/// Deletes every unused token of one purpose for a user (only the newest link may work).
pub async fn discard(db: &impl ConnectionTrait, purpose: &str, user_id: &str) -> Result<()> {
    verification_token::Entity::delete_many()
        .filter(verification_token::Column::UserId.eq(user_id))
        .filter(verification_token::Column::Purpose.eq(purpose))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the unused tokens of one purpose for a user that were bound to `binding_hash` (a
/// browser's newest link replaces its own earlier ones, not another browser's).
pub async fn discard_bound(
    db: &impl ConnectionTrait,
    purpose: &str,
    user_id: &str,
    binding_hash: &str,
) -> Result<()> {
    verification_token::Entity::delete_many()
        .filter(verification_token::Column::UserId.eq(user_id))
        .filter(verification_token::Column::Purpose.eq(purpose))
        .filter(verification_token::Column::BindingHash.eq(binding_hash))
        .filter(verification_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
