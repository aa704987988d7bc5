//! Credential changes: the email address (confirmed from the new address), the
//! password (with the current one) and a forgotten password (a mailed single-use link).
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::context::AppContext;
use crate::domain::{self, Email, NewPassword};
use crate::entity::{user, verification_token};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::password::Verified;

use super::sessions::{self, Authenticated};
use super::throttle;
use super::{Actor, ClientInfo, api_keys, audit, mailed_tokens, outbox, users};

const CHANGE_EMAIL: &str = "change_email";
const PASSWORD_RESET: &str = "password_reset";
/// The link in the notice to the old address, which cancels a pending change.
const CANCEL_EMAIL_CHANGE: &str = "cancel_email_change";

/// `PUT /me/email`: keeps the current address, mails a confirmation link to the new one and a
/// notice to the old one. Returns the pending address.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn request_email_change(
    ctx: &AppContext,
    auth: &Authenticated,
    raw_email: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Email> {
    let user = &auth.user;
    let new = Email::parse(raw_email)?;
    if new.as_str() == user.email {
        return Err(Error::invalid(
            "email_unchanged",
            "that is already your address",
        ));
    }
    if users::find_by_email(&ctx.db, &new).await?.is_some() {
        return Err(Error::conflict(
            "email_taken",
            format!("an account with the address {new} already exists"),
        ));
    }
    let txn = ctx.db.begin().await?;
    discard_email_change(&txn, &user.id).await?;
    let token = mailed_tokens::store(
        &txn,
        CHANGE_EMAIL,
        &user.id,
        new.as_str(),
        ctx.config.email_change.token_ttl,
        now,
    )
    .await?;
    // The old address gets a link of its own that cancels the change.
    let cancel = mailed_tokens::store(
        &txn,
        CANCEL_EMAIL_CHANGE,
        &user.id,
        &user.email,
        ctx.config.email_change.token_ttl,
        now,
    )
    .await?;
    let base = ctx.config.public_base();
    let link = format!("{base}/confirm-email-change?token={token}");
    let cancel_link = format!("{base}/cancel-email-change?token={cancel}");
    audit::Event::new(&Actor::User(user.id.clone()), "email_change_requested")
        .user(&user.id)
        .client(client)
        .detail(json!({ "from": user.email, "to": new.as_str() }))
        .record(&txn, now)
        .await?;
    let confirm = Mail::email_change_confirm(&ctx.config, user, new.as_str(), &link);
    outbox::queue(ctx, &txn, Some(&user.id), &confirm, now).await?;
    let notice = Mail::email_change_notice(user, new.as_str(), &cancel_link);
    outbox::queue(ctx, &txn, Some(&user.id), &notice, now).await?;
    txn.commit().await?;
    Ok(new)
}

/// Ends a pending email change: its confirmation link answers 410 from now on. Returns whether
/// one was pending.
async fn discard_email_change(db: &impl ConnectionTrait, user_id: &str) -> Result<bool> {
    let pending = verification_token::Entity::delete_many()
        .filter(verification_token::Column::UserId.eq(user_id))
        .filter(verification_token::Column::Purpose.eq(CHANGE_EMAIL))
        .filter(verification_token::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    mailed_tokens::discard(db, CHANGE_EMAIL, user_id).await?;
    mailed_tokens::discard(db, CANCEL_EMAIL_CHANGE, user_id).await?;
    Ok(pending > 0)
}

/// Cancels the user's pending email change, if any, and audits why. Returns whether there was one.
async fn cancel_pending_change(
    db: &impl ConnectionTrait,
    actor: &Actor,
    user_id: &str,
    reason: &str,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let cancelled = discard_email_change(db, user_id).await?;
    if cancelled {
        audit::Event::new(actor, "email_change_cancelled")
            .user(user_id)
            .maybe_client(client)
            .detail(json!({ "reason": reason }))
            .record(db, now)
            .await?;
    }
    Ok(cancelled)
}

/// `DELETE /me/email/pending`: the signed-in user withdraws a pending email change.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn cancel_email_change(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let actor = Actor::User(auth.user.id.clone());
    if !cancel_pending_change(&ctx.db, &actor, &auth.user.id, "by_user", Some(client), now).await? {
        return Err(Error::NotFound("pending email change"));
    }
    Ok(())
}

/// `GET /cancel-email-change`: is the link still good? (Opening it changes nothing.)
pub async fn check_cancel_link(ctx: &AppContext, token: &str, now: DateTime<Utc>) -> Result<()> {
    mailed_tokens::peek(ctx, CANCEL_EMAIL_CHANGE, token, now).await?;
    Ok(())
}

/// `POST /cancel-email-change`: the link mailed to the old address cancels the change.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn cancel_email_change_by_link(
    ctx: &AppContext,
    token: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = mailed_tokens::consume(ctx, CANCEL_EMAIL_CHANGE, token, now).await?;
    let txn = ctx.db.begin().await?;
    let cancelled = cancel_pending_change(
        &txn,
        &Actor::Anonymous,
        &row.user_id,
        "by_link_to_old_address",
        Some(client),
        now,
    )
    .await?;
    txn.commit().await?;
    if !cancelled {
        return Err(Error::gone(
            "token_invalid",
            "there is no pending email change to cancel any more",
        ));
    }
    Ok(())
}

/// `GET /confirm-email-change`: switches the address. Uniqueness is checked again, atomically,
/// by the database at this moment.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn confirm_email_change(
    ctx: &AppContext,
    token: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let row = mailed_tokens::consume(ctx, CHANGE_EMAIL, token, now).await?;
    let user = user::Entity::find_by_id(row.user_id.clone())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let changed = user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(row.email.as_str()))
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(&ctx.db)
        .await;
    match changed {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(Error::conflict(
                "email_taken",
                format!("another account took {} in the meantime", row.email),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::Event::new(&Actor::User(user.id.clone()), "email_changed")
        .user(&user.id)
        .client(client)
        .detail(json!({ "from": user.email, "to": row.email }))
        .record(&ctx.db, now)
        .await?;
    mailed_tokens::discard(&ctx.db, CANCEL_EMAIL_CHANGE, &user.id).await?;
    // To the old address: `user` was read before the change.
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::email_changed(&user, &row.email),
        now,
    )
    .await?;
    user::Entity::find_by_id(user.id)
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// `PUT /me/password`: needs the current password; ends every other session and rotates this
/// one's token. Returns the new token.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn change_password(
    ctx: &AppContext,
    auth: &Authenticated,
    current: &SecretString,
    new: &SecretString,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<SecretString> {
    let user = &auth.user;
    domain::check_length(current.expose_secret(), &ctx.config.password)?;
    if ctx
        .hasher
        .verify(user.password_hash.as_deref(), current)
        .await?
        == Verified::No
    {
        audit::Event::new(&Actor::User(user.id.clone()), "password_change_failed")
            .user(&user.id)
            .client(client)
            .detail(json!({ "reason": "wrong_current_password" }))
            .record(&ctx.db, now)
            .await?;
        return Err(Error::forbidden(
            "invalid_current_password",
            "the current password is not correct",
        ));
    }
    let email = Email::parse(&user.email)?;
    let password = NewPassword::parse(new, &ctx.config.password, &email)?;
    let hash = ctx.hasher.hash(password.secret()).await?;
    set_password(ctx, &user.id, hash, now).await?;
    let ended = sessions::revoke_others(
        ctx,
        &Actor::User(user.id.clone()),
        &user.id,
        &auth.session.id,
        Some(client),
        now,
    )
    .await?;
    let actor = Actor::User(user.id.clone());
    cancel_pending_change(
        &ctx.db,
        &actor,
        &user.id,
        "password_changed",
        Some(client),
        now,
    )
    .await?;
    let token = sessions::rotate_or_fail(ctx, auth, now).await?;
    audit::Event::new(&actor, "password_changed")
        .user(&user.id)
        .client(client)
        .detail(json!({ "sessionsEnded": ended }))
        .record(&ctx.db, now)
        .await?;
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::password_changed(user),
        now,
    )
    .await?;
    Ok(token)
}

async fn set_password(
    ctx: &AppContext,
    user_id: &str,
    hash: String,
    now: DateTime<Utc>,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(&ctx.db)
        .await?;
    mailed_tokens::discard(&ctx.db, PASSWORD_RESET, user_id).await
}

/// `POST /me/sessions/revoke-others`: signs out everywhere else and, since that is what someone
/// does who fears their account is in other hands, cancels a pending email change too.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn sign_out_everywhere_else(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<u64> {
    let actor = Actor::User(auth.user.id.clone());
    let ended = sessions::revoke_others(
        ctx,
        &actor,
        &auth.user.id,
        &auth.session.id,
        Some(client),
        now,
    )
    .await?;
    cancel_pending_change(
        &ctx.db,
        &actor,
        &auth.user.id,
        "signed_out_everywhere_else",
        Some(client),
        now,
    )
    .await?;
    Ok(ended)
}

/// `POST /password-reset`: mails a reset link when the address has an account with a password.
/// The answer never depends on that. At most one mail per `password_reset.resend_interval` per
/// address; a client IP past `password_reset.ip_limit_per_hour` gets `Throttled`.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn request_reset(
    ctx: &AppContext,
    raw_email: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    throttle::per_ip_per_hour(
        &ctx.db,
        "reset-ip",
        client.ip,
        ctx.config.password_reset.ip_limit_per_hour,
        now,
    )
    .await?;
    let Ok(email) = Email::parse(raw_email) else {
        return Ok(());
    };
    super::identities::refuse_password_for(&ctx.db, &email).await?;
    let Some(user) = users::find_by_email(&ctx.db, &email).await? else {
        return Ok(());
    };
    if user.password_hash.is_none() || user.disabled_at.is_some() {
        return Ok(());
    }
    // One statement claims the mail, so parallel requests for one address send one.
    let interval = ctx.config.password_reset.resend_interval;
    if !throttle::once_per(&ctx.db, throttle::reset_mail_key(&user.id), interval, now).await? {
        return Ok(());
    }
    // Only the newest link works.
    let txn = ctx.db.begin().await?;
    mailed_tokens::discard(&txn, PASSWORD_RESET, &user.id).await?;
    let token = mailed_tokens::store(
        &txn,
        PASSWORD_RESET,
        &user.id,
        &user.email,
        ctx.config.password_reset.token_ttl,
        now,
    )
    .await?;
    let link = format!("{}/reset-password?token={token}", ctx.config.public_base());
    audit::Event::new(&Actor::Anonymous, "password_reset_requested")
        .user(&user.id)
        .client(client)
        .record(&txn, now)
        .await?;
    let mail = Mail::password_reset(&ctx.config, &user, &link);
    outbox::queue(ctx, &txn, Some(&user.id), &mail, now).await?;
    txn.commit().await?;
    Ok(())
}

/// `POST /password-reset/confirm`: sets the new password and ends every session. It does not
/// sign the user in, so a second factor is still asked at the next login.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn confirm_reset(
    ctx: &AppContext,
    token: &str,
    new: &SecretString,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    // Check the password before using the token up, so a rejected password costs nothing.
    let row = mailed_tokens::peek(ctx, PASSWORD_RESET, token, now).await?;
    let email = Email::parse(&row.email)?;
    let password = NewPassword::parse(new, &ctx.config.password, &email)?;
    let hash = ctx.hasher.hash(password.secret()).await?;
    let row = mailed_tokens::consume(ctx, PASSWORD_RESET, token, now).await?;
    let user = user::Entity::find_by_id(row.user_id.clone())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    set_password(ctx, &user.id, hash, now).await?;
    // Whoever had the account keeps nothing: no session, no API key, no pending address change.
    let ended = sessions::revoke_all_for_user(&ctx.db, &user.id).await?;
    let keys = api_keys::revoke_all_for_user(&ctx.db, &user.id).await?;
    cancel_pending_change(
        &ctx.db,
        &Actor::Anonymous,
        &user.id,
        "password_reset",
        Some(client),
        now,
    )
    .await?;
    throttle::clear_account(&ctx.db, &email).await?;
    audit::Event::new(&Actor::Anonymous, "password_reset")
        .user(&user.id)
        .client(client)
        .detail(json!({ "sessionsEnded": ended, "apiKeysRevoked": keys }))
        .record(&ctx.db, now)
        .await?;
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::password_reset_done(&user, keys),
        now,
    )
    .await?;
    Ok(())
}

/// The address a pending email change waits to be confirmed from, if one is pending now.
pub async fn pending_email(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    Ok(verification_token::Entity::find()
        .filter(verification_token::Column::UserId.eq(user_id))
        .filter(verification_token::Column::Purpose.eq(CHANGE_EMAIL))
        .filter(verification_token::Column::UsedAt.is_null())
        .filter(verification_token::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .map(|t| t.email))
}

/// Looks at a reset link without using it (the page that asks for the new password).
pub async fn check_reset_link(ctx: &AppContext, token: &str, now: DateTime<Utc>) -> Result<()> {
    mailed_tokens::peek(ctx, PASSWORD_RESET, token, now)
        .await
        .map(|_| ())
}

/// Looks at an address-change link without using it (the page with the confirm button).
pub async fn check_email_change_link(
    ctx: &AppContext,
    token: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    mailed_tokens::peek(ctx, CHANGE_EMAIL, token, now)
        .await
        .map(|t| t.email)
}
