//! Flow: e-mail verification. A single-use link (a [`mailed_tokens`] row) is mailed at signup and
//! on request; opening it marks the address verified.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use crate::clock::span;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::user;
use crate::error::{Error, Result};
use crate::mail::Mail;

use super::{Actor, ClientInfo, audit, mailed_tokens, outbox, users};

pub const PURPOSE: &str = "verify_email";

/// Stores a new token for the user's current address and queues the mail with the link, on `db`
/// (the caller's transaction, so the token and its mail exist together or not at all).
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %user.id))]
pub async fn issue(
    ctx: &AppContext,
    db: &impl ConnectionTrait,
    user: &user::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let token = mailed_tokens::store(
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
    let mail = Mail::verification(&ctx.config, user, &link);
    outbox::queue(ctx, db, Some(&user.id), &mail, now).await
}

/// `GET /verify-email`: consumes the token and marks the address verified.
/// A used, expired or unknown token is `Gone` (410): the link no longer works.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn confirm(
    ctx: &AppContext,
    token: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let row = mailed_tokens::consume(ctx, PURPOSE, token, now).await?;
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
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %user.id))]
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
#[tracing::instrument(skip_all, err(level = "debug"))]
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

/// Looks at a verification link without using it (the page with the verify button).
pub async fn check_link(ctx: &AppContext, token: &str, now: DateTime<Utc>) -> Result<String> {
    super::mailed_tokens::peek(ctx, PURPOSE, token, now)
        .await
        .map(|t| t.email)
}
