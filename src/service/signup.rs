//! Flow: signing up. A new account gets its first session at once and a verification mail; the
//! address stays unverified until the link is opened ([`verification`]).
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::user;
use crate::error::Result;

use super::sessions::{self, AuthMethod, NewSession};
use super::{Actor, ClientInfo, audit, history, identities, throttle, users, verification};

/// `POST /signup`: creates the account, signs it in and mails a verification link.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn signup(
    ctx: &AppContext,
    new: users::NewUser,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(user::Model, NewSession)> {
    throttle::per_ip_per_hour(
        &ctx.db,
        "signup-ip",
        client.ip,
        ctx.config.throttle.signups_per_ip_per_hour,
        now,
    )
    .await?;
    if let Ok(email) = Email::parse(&new.email) {
        identities::refuse_password_for(&ctx.db, &email).await?;
    }
    let prepared = users::prepare(
        ctx,
        users::NewUser {
            verified: false,
            ..new
        },
    )
    .await?;
    let txn = ctx.db.begin().await?;
    let user = users::insert(&txn, prepared, now).await?;
    audit::Event::new(&Actor::User(user.id.clone()), "signup")
        .user(&user.id)
        .client(client)
        .record(&txn, now)
        .await?;
    let session = sessions::create(
        &txn,
        &ctx.config,
        &user.id,
        AuthMethod::Password,
        client,
        now,
    )
    .await?;
    let attempt = history::Attempt {
        user_id: &user.id,
        kind: history::Kind::Signup,
        method: AuthMethod::Password.as_str(),
        success: true,
        reason: None,
    };
    history::record(&txn, attempt, client, now).await?;
    verification::issue(ctx, &txn, &user, now).await?;
    txn.commit().await?;
    Ok((user, session))
}

/// `authctl users create`: an operator adds an account. Unless it is created verified, its
/// address gets a verification link, queued in the same transaction as the account.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn by_operator(
    ctx: &AppContext,
    actor: &Actor,
    new: users::NewUser,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let prepared = users::prepare(ctx, new).await?;
    let verified = prepared.verified;
    let txn = ctx.db.begin().await?;
    let user = users::insert_audited(&txn, actor, prepared, now).await?;
    if !verified {
        verification::issue(ctx, &txn, &user, now).await?;
    }
    txn.commit().await?;
    Ok(user)
}
