//! Step-up authentication: `POST /auth/confirm` proves the user is still there, opens the
//! `step_up.window` for sensitive actions and rotates the session token (a privilege change).
//! Signing in does not open the window.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::json;

use crate::clock::span;
use crate::config::Config;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::session;
use crate::error::{Error, Result};
use crate::password::Verified;

use super::sessions::{self, Authenticated};
use super::{Actor, ClientInfo, audit, throttle, two_factor};

/// What the user re-authenticates with.
pub enum Proof {
    Password(SecretString),
    /// A current TOTP code (required for accounts with two-factor authentication).
    Code(String),
}

/// When the step-up window of `session` closes, if it is open at `now`.
pub fn window_until(
    session: &session::Model,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    session
        .stepped_up_at
        .map(|t| t + span(config.step_up.window))
        .filter(|until| *until > now)
}

/// Checks the proof, opens the window and returns the session's new token and the window's end.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn confirm(
    ctx: &AppContext,
    auth: &Authenticated,
    proof: Proof,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(SecretString, DateTime<Utc>)> {
    let user = &auth.user;
    // Refusals that check nothing come first: they are not attempts.
    match &proof {
        Proof::Password(_) if user.totp_enabled_at.is_some() => {
            return Err(Error::forbidden(
                "second_factor_required",
                "this account uses two-factor authentication: confirm with {\"code\"} from your authenticator app",
            ));
        }
        Proof::Password(_)
            if user.password_hash.is_none()
                && !super::identities::identities_of(&ctx.db, &user.id)
                    .await?
                    .is_empty() =>
        {
            return Err(Error::forbidden(
                "sso_step_up_required",
                "this account signs in through single sign-on: confirm at your identity provider through GET /sso/login?stepUp=true",
            ));
        }
        Proof::Password(password) => crate::domain::check_length(
            secrecy::ExposeSecret::expose_secret(password),
            &ctx.config.password,
        )?,
        Proof::Code(_) if user.totp_enabled_at.is_none() => {
            return Err(Error::invalid(
                "two_factor_not_enabled",
                "this account has no authenticator app; confirm with {\"password\"}",
            ));
        }
        Proof::Code(_) => {}
    }
    // The attempt is counted before the check, so a burst cannot outrun the throttle. A
    // password counts against the account like a login; a code against the account's
    // second-factor bucket, which a correct password does not empty.
    let email = Email::parse(&user.email).ok();
    let (buckets, clear) = match &proof {
        Proof::Password(_) => (
            throttle::buckets(&ctx.config.throttle, email.as_ref(), client.ip),
            email.as_ref().map(throttle::account_key),
        ),
        Proof::Code(_) => {
            let mut buckets = throttle::buckets(&ctx.config.throttle, None, client.ip);
            let codes = throttle::second_factor_bucket(&ctx.config.throttle, &user.id);
            let key = codes.key().to_owned();
            buckets.push(codes);
            (buckets, Some(key))
        }
    };
    let reservation = throttle::reserve(&ctx.db, &ctx.config.throttle, buckets, now).await?;
    let checked = async {
        Ok::<_, Error>(match proof {
            Proof::Password(password) => {
                let verdict = ctx
                    .hasher
                    .verify(user.password_hash.as_deref(), &password)
                    .await?;
                (verdict != Verified::No, "password")
            }
            Proof::Code(code) => (
                two_factor::verify_totp(ctx, user, &code, now).await?,
                "totp",
            ),
        })
    };
    let ((ok, factor), reservation) = reservation.check(&ctx.db, checked).await?;
    if !ok {
        reservation.failed();
        audit::Event::new(&Actor::User(user.id.clone()), "step_up_failed")
            .user(&user.id)
            .client(client)
            .detail(json!({ "factor": factor }))
            .record(&ctx.db, now)
            .await?;
        return Err(if factor == "totp" {
            Error::InvalidCode
        } else {
            Error::InvalidCredentials
        });
    }
    reservation.succeeded(&ctx.db, clear.as_deref()).await?;
    open_window(ctx, auth, factor, client, now).await
}

/// After a successful re-authentication with `factor`: opens the window, resets the session's
/// timers, rotates its token and audits. Returns the new token and the window's end.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn open_window(
    ctx: &AppContext,
    auth: &Authenticated,
    factor: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(SecretString, DateTime<Utc>)> {
    let user = &auth.user;
    // A re-authentication resets both session timers (NIST 800-63B §5.2).
    session::Entity::update_many()
        .col_expr(session::Column::SteppedUpAt, Expr::value(now))
        .col_expr(session::Column::AuthenticatedAt, Expr::value(now))
        .col_expr(
            session::Column::ExpiresAt,
            Expr::value(now + span(ctx.config.session.absolute_timeout)),
        )
        .filter(session::Column::Id.eq(auth.session.id.as_str()))
        .exec(&ctx.db)
        .await?;
    let token = sessions::rotate_or_fail(ctx, auth, now).await?;
    let session = &auth.session;
    audit::Event::new(&Actor::User(user.id.clone()), "step_up")
        .user(&user.id)
        .client(client)
        .detail(json!({ "factor": factor, "sessionId": session.id }))
        .record(&ctx.db, now)
        .await?;
    Ok((token, now + span(ctx.config.step_up.window)))
}
