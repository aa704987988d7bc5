//! E-mail verification: a single-use, hashed, expiring token mailed as a link.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{user, verification_token};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::tokens;

use super::{Actor, ClientInfo, audit, outbox, users};

pub const PURPOSE: &str = "verify_email";

/// Stores a new token for the user's current address and queues the mail with the link, on `db`
/// (the caller's transaction, so the token and its mail exist together or not at all).
pub async fn issue(
    ctx: &AppContext,
    db: &impl ConnectionTrait,
    user: &user::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let token = store(
        db,
        PURPOSE,
        &user.id,
        &user.email,
        ctx.config.verification.token_ttl,
        now,
    )
    .await?;
    user::Entity::update_many()
        .col_expr(user::Column::VerificationSentAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(db)
        .await?;
    let link = format!("{}/verify-email?token={token}", ctx.config.public_base());
    let mail = Mail::verification(
        &user.email,
        &user.name,
        &link,
        ctx.config.verification.token_ttl,
    );
    outbox::queue(ctx, db, Some(&user.id), &mail, now).await
}

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
    let token = tokens::generate();
    verification_token::Entity::insert(verification_token::ActiveModel {
        token_hash: Set(tokens::hash(&token)),
        user_id: Set(user_id.to_owned()),
        purpose: Set(purpose.into()),
        email: Set(email.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + span(ttl)),
        used_at: Set(None),
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

/// `GET /verify-email`: consumes the token and marks the address verified.
/// A used, expired or unknown token is `Gone` (410): the link no longer works.
pub async fn confirm(
    ctx: &AppContext,
    token: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let row = consume(ctx, PURPOSE, token, now).await?;
    let user = user::Entity::find_by_id(row.user_id.clone())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if user.email != row.email {
        return Err(Error::gone(
            "token_invalid",
            "this link was sent to an address the account no longer uses",
        ));
    }
    if user.email_verified_at.is_none() {
        user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user.id.as_str()))
            .exec(&ctx.db)
            .await?;
        audit::Event::new(&Actor::User(user.id.clone()), "email_verified")
            .user(&user.id)
            .client(client)
            .detail(json!({ "email": user.email, "via": "link" }))
            .record(&ctx.db, now)
            .await?;
    }
    user::Entity::find_by_id(user.id)
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// What a resend did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    Sent,
    AlreadyVerified,
    /// A mail went out less than `verification.resend_interval` ago.
    TooSoon,
}

/// Sends a fresh link unless the address is verified or a mail went out too recently. The
/// "too recently" check is one conditional update, so it holds across replicas and races.
pub async fn resend(
    ctx: &AppContext,
    actor: &Actor,
    user: &user::Model,
    now: DateTime<Utc>,
) -> Result<Resent> {
    if user.email_verified_at.is_some() {
        return Ok(Resent::AlreadyVerified);
    }
    let cutoff = now - span(ctx.config.verification.resend_interval);
    let txn = ctx.db.begin().await?;
    let claimed = user::Entity::update_many()
        .col_expr(user::Column::VerificationSentAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(
            user::Column::VerificationSentAt
                .is_null()
                .or(user::Column::VerificationSentAt.lte(cutoff)),
        )
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(Resent::TooSoon);
    }
    issue(ctx, &txn, user, now).await?;
    audit::Event::new(actor, "verification_resent")
        .user(&user.id)
        .detail(json!({ "email": user.email }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(Resent::Sent)
}

/// `POST /verify-email/resend` counts against the client IP's hourly limit
/// (`verification.ip_limit_per_hour`), whatever the address and the outcome.
pub async fn limit_resend(ctx: &AppContext, client: &ClientInfo, now: DateTime<Utc>) -> Result<()> {
    super::throttle::per_ip_per_hour(
        &ctx.db,
        "resend-ip",
        client.ip,
        ctx.config.verification.ip_limit_per_hour,
        now,
    )
    .await
}

/// `POST /verify-email/resend` by address: does the work if there is any and reveals nothing.
pub async fn resend_for_address(
    ctx: &AppContext,
    raw_email: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let Ok(email) = Email::parse(raw_email) else {
        return Ok(());
    };
    if let Some(user) = users::find_by_email(&ctx.db, &email).await? {
        resend(ctx, &Actor::Anonymous, &user, now).await?;
    }
    Ok(())
}
