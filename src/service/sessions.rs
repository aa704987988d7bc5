//! Sessions: password login, the per-request session check, logout and revocation.
//!
//! The cookie holds a 32-byte random token; the database holds only its SHA-256. Checking a
//! session is one indexed read (session joined with its user); the last-active time is written at
//! most once per `session.touch_interval`.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::config::Config;
use crate::context::AppContext;
use crate::domain::{self, Email};
use crate::entity::{session, user};
use crate::error::{Error, Result};
use crate::password::Verified;
use crate::tokens;

use super::{Actor, ClientInfo, audit, throttle};

/// How a session was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
        }
    }
}

/// A session that was just created: the token goes into the cookie and nowhere else.
pub struct NewSession {
    pub token: SecretString,
    pub session: session::Model,
}

/// A valid session with its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: session::Model,
    pub user: user::Model,
}

fn duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Creates a session row for `user_id` and returns the token.
pub async fn create(
    db: &impl ConnectionTrait,
    config: &Config,
    user_id: &str,
    method: AuthMethod,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    let token = tokens::generate();
    let model = session::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        token_hash: Set(tokens::hash(&token)),
        user_id: Set(user_id.to_owned()),
        auth_method: Set(method.as_str().to_owned()),
        ip: Set(client.ip_string()),
        user_agent: Set(client.user_agent.clone()),
        created_at: Set(now),
        authenticated_at: Set(now),
        last_active_at: Set(now),
        expires_at: Set(now + duration(config.session.absolute_timeout)),
    };
    let session = session::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    Ok(NewSession {
        token: SecretString::from(token),
        session,
    })
}

/// Signs in with e-mail and password.
///
/// An unknown address, an account without a password and a wrong password all cost one argon2
/// verification and end in the same `InvalidCredentials`.
pub async fn login(
    ctx: &AppContext,
    raw_email: &str,
    password: &SecretString,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(user::Model, NewSession)> {
    domain::check_length(password.expose_secret(), &ctx.config.password)?;
    let email = Email::parse(raw_email).ok();
    let buckets = throttle::buckets(&ctx.config.throttle, email.as_ref(), client.ip);
    throttle::check(&ctx.db, &buckets, now).await?;

    let found = match &email {
        Some(email) => {
            user::Entity::find()
                .filter(user::Column::Email.eq(email.as_str()))
                .one(&ctx.db)
                .await?
        }
        None => None,
    };
    let stored = found.as_ref().and_then(|u| u.password_hash.as_deref());
    let verdict = ctx.hasher.verify(stored, password).await?;

    let user = match found {
        Some(user) if verdict != Verified::No => user,
        other => {
            throttle::record_failure(&ctx.db, &ctx.config.throttle, &buckets, now).await?;
            // The attempted address is kept only when it is a well-formed address (never free
            // text, which may be a password typed into the wrong field).
            let user_id = other.map(|u| u.id);
            let reason = if user_id.is_some() {
                "wrong_password"
            } else {
                "unknown_account"
            };
            audit::record(
            &ctx.db,
            now,
            &Actor::Anonymous,
            "login_failed",
            user_id.as_deref(),
            Some(client),
            json!({ "method": "password", "reason": reason, "email": email.as_ref().map(Email::as_str) }),
        )
            .await?;
            return Err(Error::InvalidCredentials);
        }
    };
    if let Some(email) = &email {
        throttle::clear_account(&ctx.db, email).await?;
    }
    if user.disabled_at.is_some() {
        audit::record(
            &ctx.db,
            now,
            &Actor::Anonymous,
            "login_failed",
            Some(&user.id),
            Some(client),
            json!({ "method": "password", "reason": "account_disabled" }),
        )
        .await?;
        return Err(Error::forbidden(
            "account_disabled",
            "this account has been disabled; contact an administrator",
        ));
    }
    if verdict == Verified::YesRehash {
        // The configured argon2 parameters changed since this hash was made: upgrade it now.
        let fresh = ctx.hasher.hash(password).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(fresh))
            .filter(user::Column::Id.eq(user.id.as_str()))
            .exec(&ctx.db)
            .await?;
    }
    let new = create(
        &ctx.db,
        &ctx.config,
        &user.id,
        AuthMethod::Password,
        client,
        now,
    )
    .await?;
    audit::record(
        &ctx.db,
        now,
        &Actor::User(user.id.clone()),
        "login",
        Some(&user.id),
        Some(client),
        json!({ "method": "password", "sessionId": new.session.id }),
    )
    .await?;
    Ok((user, new))
}

/// The per-request check: one indexed read of the session joined with its user; a write only
/// when the last-active time is older than `session.touch_interval`.
pub async fn authenticate(
    ctx: &AppContext,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Authenticated> {
    if !tokens::looks_valid(token) {
        return Err(Error::Unauthenticated);
    }
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(tokens::hash(token)))
        .find_also_related(user::Entity)
        .one(&ctx.db)
        .await?;
    let Some((mut session, Some(user))) = found else {
        return Err(Error::Unauthenticated);
    };
    let idle_deadline = session.last_active_at + duration(ctx.config.session.idle_timeout);
    if session.expires_at <= now || idle_deadline <= now || user.disabled_at.is_some() {
        // Ended: clean it up now rather than waiting for the janitor.
        session::Entity::delete_by_id(session.id.clone())
            .exec(&ctx.db)
            .await?;
        return Err(Error::Unauthenticated);
    }
    if now - session.last_active_at >= duration(ctx.config.session.touch_interval) {
        session::Entity::update_many()
            .col_expr(session::Column::LastActiveAt, Expr::value(now))
            .filter(session::Column::Id.eq(session.id.as_str()))
            .exec(&ctx.db)
            .await?;
        session.last_active_at = now;
    }
    Ok(Authenticated { session, user })
}

/// Ends one session (logout).
pub async fn logout(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    session::Entity::delete_by_id(auth.session.id.clone())
        .exec(&ctx.db)
        .await?;
    audit::record(
        &ctx.db,
        now,
        &Actor::User(auth.user.id.clone()),
        "logout",
        Some(&auth.user.id),
        Some(client),
        json!({ "sessionId": auth.session.id }),
    )
    .await
}

/// Ends every session of a user; returns how many there were.
pub async fn revoke_all_for_user(db: &impl ConnectionTrait, user_id: &str) -> Result<u64> {
    let result = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
