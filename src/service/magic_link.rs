//! Flow: signing in with a mailed link. `request` mails a single-use link bound to the browser
//! that asked (its binding cookie); `check` looks at a link without using it (the page a mail
//! scanner may open); `confirm` uses it in that browser and hands over to [`login::establish`]
//! as one factor: an account with an authenticator app still gives its code. A link proves the
//! address, so an unverified account becomes verified. It never creates an account.
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{user, verification_token};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::tokens;

use super::ceremonies::well_formed;
use super::login::{self, Proven};
use super::sessions::{AuthMethod, NewSession};
use super::{Actor, ClientInfo, audit, identities, mailed_tokens, outbox, throttle, users};

/// `verification_tokens.purpose` of a sign-in link.
pub const PURPOSE: &str = "magic_link";

/// `POST /login/magic-link`: mails a link when the address has an account that may sign in.
/// Returns the browser binding to set as a cookie: the same answer whether or not a mail went
/// out. At most one mail per address per `magic_link.resend_interval`; a new link replaces the
/// one before (only the newest works).
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn request(
    ctx: &AppContext,
    raw_email: &str,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<String> {
    throttle::per_ip_per_hour(
        &ctx.db,
        "magic-ip",
        client.ip,
        ctx.config.magic_link.ip_limit_per_hour,
        now,
    )
    .await?;
    let binding = binding
        .filter(|b| well_formed(b))
        .map_or_else(tokens::generate, str::to_owned);
    let email = Email::parse(raw_email)?;
    identities::refuse_password_for(&ctx.db, &email).await?;
    let Some(user) = users::find_by_email(&ctx.db, &email).await? else {
        return Ok(binding);
    };
    if user.disabled_at.is_some() {
        return Ok(binding);
    }
    // Spaced per browser, so another browser asking for this address neither replaces nor
    // holds back this one's link; capped per account, so nobody floods the inbox.
    let binding_hash = tokens::hash(&binding);
    let interval = ctx.config.magic_link.resend_interval;
    let spaced_key = format!("magic-mail:{}:{}", user.id, &binding_hash[..16]);
    if !throttle::once_per(&ctx.db, spaced_key, interval, now).await? {
        return Ok(binding);
    }
    let hourly = ctx.config.magic_link.mails_per_account_per_hour;
    if !throttle::within_hourly(&ctx.db, format!("magic-hour:{}", user.id), hourly, now).await? {
        return Ok(binding);
    }
    let txn = ctx.db.begin().await?;
    mailed_tokens::discard_bound(&txn, PURPOSE, &user.id, &binding_hash).await?;
    let token = mailed_tokens::store_bound(
        &txn,
        PURPOSE,
        &user.id,
        &user.email,
        ctx.config.magic_link.ttl,
        Some(binding_hash),
        now,
    )
    .await?;
    let link = format!("{}/login/magic?token={token}", ctx.config.public_base());
    audit::Event::new(&Actor::Anonymous, "magic_link_requested")
        .user(&user.id)
        .client(client)
        .record(&txn, now)
        .await?;
    outbox::queue(
        ctx,
        &txn,
        Some(&user.id),
        &Mail::magic_link(&ctx.config, &user, &link),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(binding)
}

/// `GET /login/magic`: whether the link still works, without using it.
pub async fn check(
    ctx: &AppContext,
    token: &str,
    now: DateTime<Utc>,
) -> Result<verification_token::Model> {
    mailed_tokens::peek(ctx, PURPOSE, token, now)
        .await
        .map_err(superseded)
}

/// A link that is not in the table any more was replaced by a newer one, used and pruned, or
/// never existed: the answer says so in words a person can act on.
fn superseded(e: Error) -> Error {
    match e {
        Error::Gone {
            code: "token_invalid",
            ..
        } => Error::gone(
            "token_invalid",
            "this sign-in link is not valid any more (a newer one may have replaced it); ask for a new one",
        ),
        other => other,
    }
}

/// What a used link led to.
pub struct SignedIn {
    pub user: user::Model,
    pub session: NewSession,
    pub two_factor_required: bool,
}

/// `POST /login/magic` and `POST /login/magic-link/confirm`: uses the link in the browser that
/// asked for it and signs that browser in.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn confirm(
    ctx: &AppContext,
    token: &str,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<SignedIn> {
    let row = check(ctx, token, now).await?;
    // Another browser (a phone's mail app, a scanner that posts forms) gets no session and
    // leaves the link usable where it was asked for.
    let bound = row
        .binding_hash
        .as_deref()
        .is_none_or(|hash| binding.is_some_and(|b| tokens::hash(b) == hash));
    if !bound {
        return Err(Error::forbidden(
            "magic_link_other_browser",
            "this sign-in link was asked for in another browser: open it there, or ask for a new link here",
        ));
    }
    let user = users::get(ctx, &row.user_id).await?;
    if user.email != row.email {
        return Err(Error::gone(
            "token_invalid",
            "this link was sent to an address the account no longer uses; ask for a new one",
        ));
    }
    if let Ok(email) = Email::parse(&user.email) {
        identities::refuse_password_for(&ctx.db, &email).await?;
    }
    if user.disabled_at.is_some() {
        let reason = "account_disabled";
        let detail = json!({ "method": PURPOSE, "reason": reason });
        login::record_failure(ctx, Some(&user.id), PURPOSE, reason, detail, client, now).await?;
        return Err(Error::forbidden(
            "account_disabled",
            "this account has been disabled; contact an administrator",
        ));
    }
    // Of two concurrent uses exactly one gets here.
    mailed_tokens::consume(ctx, PURPOSE, token, now).await?;
    let user = if user.email_verified_at.is_none() {
        claim_unverified(ctx, &user, client, now).await?
    } else {
        user
    };
    let (session, two_factor_required) = login::establish(
        ctx,
        Proven {
            user: &user,
            method: AuthMethod::MagicLink,
            second_factor_trusted: false,
            pending_detail: json!({}),
            detail: json!({ "method": PURPOSE }),
        },
        client,
        now,
    )
    .await?;
    Ok(SignedIn {
        user,
        session,
        two_factor_required,
    })
}

/// The link proves the mailbox; an unverified account's password and sessions prove nothing
/// (anyone could have signed up with this address first, to be let in once its owner verifies
/// it: account pre-hijacking). So the address is verified, every session and API key of the
/// account ends, and a password set before it is dropped (the owner sets one with a reset).
async fn claim_unverified(
    ctx: &AppContext,
    user: &user::Model,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let txn = ctx.db.begin().await?;
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            user::Column::PasswordHash,
            Expr::value(Option::<String>::None),
        )
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(&txn)
        .await?;
    let sessions = super::sessions::revoke_all_for_user(&txn, &user.id).await?;
    let keys = super::api_keys::revoke_all_for_user(&txn, &user.id).await?;
    audit::Event::new(&Actor::User(user.id.clone()), "email_verified")
        .user(&user.id)
        .client(client)
        .detail(json!({
            "email": user.email,
            "via": PURPOSE,
            "passwordCleared": user.password_hash.is_some(),
            "sessionsEnded": sessions,
            "apiKeysRevoked": keys,
        }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    users::get(ctx, &user.id).await
}
