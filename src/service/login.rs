//! Flow: signing in. Every method proves who the user is in its own way (a password here, SSO in
//! `saml` (its ACS); magic links and passkeys next) and then hands over to [`establish`], the one
//! place where a proof becomes a session: a login still waiting for its second factor when the
//! account has one, else a full session recorded in the login history and the audit log, with the
//! new-IP notice. [`second_factor`] finishes a waiting login.
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::context::AppContext;
use crate::domain::{self, Email};
use crate::entity::{session, user};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::password::Verified;

use super::history::{self, Attempt, Kind};
use super::sessions::{self, AuthMethod, Authenticated, NewSession};
use super::{Actor, ClientInfo, audit, identities, outbox, throttle, two_factor, users};

/// A first factor that was just proven.
pub struct Proven<'a> {
    pub user: &'a user::Model,
    pub method: AuthMethod,
    /// The method itself stands for the second factor (an IdP trusted for MFA).
    pub second_factor_trusted: bool,
    /// Audit detail of the waiting login, when the second factor is still due.
    pub pending_detail: Value,
    /// Audit detail of the login.
    pub detail: Value,
}

/// Turns a proven first factor into a session. Returns it and whether it still waits for the
/// second factor.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %proven.user.id, method = proven.method.as_str()))]
pub async fn establish(
    ctx: &AppContext,
    proven: Proven<'_>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(NewSession, bool)> {
    let user = proven.user;
    if user.totp_enabled_at.is_some() && !proven.second_factor_trusted {
        let pending = second_factor_due(
            ctx,
            &user.id,
            proven.method,
            client,
            now,
            proven.pending_detail,
        )
        .await?;
        return Ok((pending, true));
    }
    let new_ip = history::is_new_ip(&ctx.db, &user.id, client).await?;
    let new = sessions::create(&ctx.db, &ctx.config, &user.id, proven.method, client, now).await?;
    record_login(ctx, user, &new.session, client, now, new_ip, proven.detail).await?;
    Ok((new, false))
}

/// What a correct password led to: a full session, or (with two-factor authentication on) a
/// pending one that [`second_factor`] finishes.
pub struct LoginOutcome {
    pub user: user::Model,
    pub session: NewSession,
    pub two_factor_required: bool,
}

/// Signs in with e-mail and password.
///
/// An unknown address, an account without a password and a wrong password all cost one argon2
/// verification and end in the same `InvalidCredentials`.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn password(
    ctx: &AppContext,
    raw_email: &str,
    password: &SecretString,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<LoginOutcome> {
    domain::check_length(password.expose_secret(), &ctx.config.password)?;
    let email = Email::parse(raw_email).ok();
    // A domain that signs in through SSO has no password logins at all: the IdP decides who
    // may enter. The answer says no more than `GET /sso/lookup` does.
    if let Some(email) = &email {
        identities::refuse_password_for(&ctx.db, email).await?;
    }
    // The attempt is counted before the hash, so a burst cannot outrun the throttle.
    let buckets = throttle::buckets(&ctx.config.throttle, email.as_ref(), client.ip);
    let reservation = throttle::reserve(&ctx.db, &ctx.config.throttle, buckets, now).await?;
    let checked = async {
        let found = match &email {
            Some(email) => users::find_by_email(&ctx.db, email).await?,
            None => None,
        };
        let stored = found.as_ref().and_then(|u| u.password_hash.as_deref());
        let verdict = ctx.hasher.verify(stored, password).await?;
        Ok::<_, Error>((found, verdict))
    };
    let ((found, verdict), reservation) = reservation.check(&ctx.db, checked).await?;

    let method = AuthMethod::Password.as_str();
    let user = match found {
        Some(user) if verdict != Verified::No => user,
        other => {
            reservation.failed();
            let reason = if other.is_some() {
                "wrong_password"
            } else {
                "unknown_account"
            };
            // The attempted address is kept only when it is a well-formed address (never free
            // text, which may be a password typed into the wrong field).
            let detail = json!({ "method": method, "reason": reason, "email": email.as_ref().map(Email::as_str) });
            let user_id = other.as_ref().map(|u| u.id.as_str());
            record_failure(ctx, user_id, method, reason, detail, client, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    let account = email.as_ref().map(throttle::account_key);
    reservation.succeeded(&ctx.db, account.as_deref()).await?;
    if user.disabled_at.is_some() {
        let reason = "account_disabled";
        let detail = json!({ "method": method, "reason": reason });
        record_failure(ctx, Some(&user.id), method, reason, detail, client, now).await?;
        return Err(Error::forbidden(
            "account_disabled",
            "this account has been disabled; contact an administrator",
        ));
    }
    if verdict == Verified::YesRehash {
        // The configured argon2 parameters changed since this hash was made: upgrade it now.
        let fresh = ctx.hasher.hash(password).await?;
        users::upgrade_password_hash(&ctx.db, &user.id, fresh).await?;
    }
    let (session, two_factor_required) = establish(
        ctx,
        Proven {
            user: &user,
            method: AuthMethod::Password,
            second_factor_trusted: false,
            pending_detail: json!({}),
            detail: json!({ "method": method }),
        },
        client,
        now,
    )
    .await?;
    Ok(LoginOutcome {
        user,
        session,
        two_factor_required,
    })
}

/// The first step of a login succeeded and the account has a second factor: creates the session
/// that can only finish the login ([`second_factor`]) and audits it with `detail`.
async fn second_factor_due(
    ctx: &AppContext,
    user_id: &str,
    method: AuthMethod,
    client: &ClientInfo,
    now: DateTime<Utc>,
    mut detail: serde_json::Value,
) -> Result<NewSession> {
    let new =
        sessions::create_in_state(&ctx.db, &ctx.config, user_id, method, client, now, true).await?;
    detail["sessionId"] = json!(new.session.id);
    detail["method"] = json!(method.as_str());
    audit::Event::new(&Actor::User(user_id.to_owned()), "login_second_factor_due")
        .user(user_id)
        .client(client)
        .detail(detail)
        .record(&ctx.db, now)
        .await?;
    Ok(new)
}

/// Records a failed sign-in: in the login history of the account when it is known, and in the
/// audit log with `detail`.
pub(crate) async fn record_failure(
    ctx: &AppContext,
    user_id: Option<&str>,
    method: &str,
    reason: &str,
    detail: Value,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(user_id) = user_id {
        let attempt = Attempt {
            user_id,
            kind: Kind::Login,
            method,
            success: false,
            reason: Some(reason),
        };
        history::record(&ctx.db, attempt, client, now).await?;
    }
    audit::Event::new(&Actor::Anonymous, "login_failed")
        .maybe_user(user_id)
        .client(client)
        .detail(detail)
        .record(&ctx.db, now)
        .await
}

/// Records a completed login: history, audit, and the new-IP alert when `new_ip`.
async fn record_login(
    ctx: &AppContext,
    user: &user::Model,
    session: &session::Model,
    client: &ClientInfo,
    now: DateTime<Utc>,
    new_ip: bool,
    mut detail: serde_json::Value,
) -> Result<()> {
    let attempt = Attempt {
        user_id: &user.id,
        kind: Kind::Login,
        method: &session.auth_method,
        success: true,
        reason: None,
    };
    history::record(&ctx.db, attempt, client, now).await?;
    detail["sessionId"] = json!(session.id);
    audit::Event::new(&Actor::User(user.id.clone()), "login")
        .user(&user.id)
        .client(client)
        .detail(detail)
        .record(&ctx.db, now)
        .await?;
    if new_ip {
        audit::Event::new(&Actor::System, "new_ip_sign_in")
            .user(&user.id)
            .client(client)
            .detail(json!({ "sessionId": session.id, "device": session.device_name }))
            .record(&ctx.db, now)
            .await?;
        let mail = Mail::new_sign_in(&ctx.config, user, session);
        outbox::queue(ctx, &ctx.db, Some(&user.id), &mail, now).await?;
    }
    Ok(())
}

/// The second step of a login with two-factor authentication.
pub enum SecondFactor {
    Code(String),
    RecoveryCode(String),
}

/// Finishes a pending login: on a correct code the session becomes a full one with a new token.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn second_factor(
    ctx: &AppContext,
    auth: &Authenticated,
    factor: SecondFactor,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<SecretString> {
    let user = &auth.user;
    if auth.session.state != sessions::PENDING_2FA {
        return Err(Error::conflict(
            "login_complete",
            "this session is already signed in",
        ));
    }
    let bucket = throttle::second_factor_bucket(&ctx.config.throttle, &user.id);
    let key = bucket.key().to_owned();
    // Counted before the code is checked, so parallel guesses cannot outrun the limit.
    let reservation = throttle::reserve(&ctx.db, &ctx.config.throttle, vec![bucket], now).await?;
    let checked = async {
        Ok::<_, Error>(match &factor {
            SecondFactor::Code(code) => {
                (two_factor::verify_totp(ctx, user, code, now).await?, "totp")
            }
            SecondFactor::RecoveryCode(code) => (
                two_factor::use_recovery_code(ctx, user, code, now).await?,
                "recovery_code",
            ),
        })
    };
    let ((ok, kind), reservation) = reservation.check(&ctx.db, checked).await?;
    if !ok {
        reservation.failed();
        let reason = "wrong_second_factor";
        let detail = json!({ "reason": reason, "factor": kind });
        let method = &auth.session.auth_method;
        record_failure(ctx, Some(&user.id), method, reason, detail, client, now).await?;
        return Err(Error::InvalidCode);
    }
    reservation.succeeded(&ctx.db, Some(&key)).await?;
    let new_ip = history::is_new_ip(&ctx.db, &user.id, client).await?;
    if !sessions::finish_second_factor(&ctx.db, &ctx.config, &auth.session.id, now).await? {
        return Err(Error::conflict(
            "login_complete",
            "this session is already signed in",
        ));
    }
    // Now a real session: it counts toward `session.max_per_user`.
    sessions::enforce_cap(
        &ctx.db,
        &ctx.config,
        &user.id,
        &auth.session.id,
        false,
        client,
        now,
    )
    .await?;
    let mut session = auth.session.clone();
    session.state = sessions::ACTIVE.to_owned();
    let token = sessions::rotate_or_fail(ctx, auth, now).await?;
    record_login(
        ctx,
        user,
        &session,
        client,
        now,
        new_ip,
        json!({ "method": session.auth_method, "secondFactor": kind }),
    )
    .await?;
    if kind == "recovery_code" {
        outbox::queue(
            ctx,
            &ctx.db,
            Some(&user.id),
            &Mail::recovery_code_used(user),
            now,
        )
        .await?;
    }
    Ok(token)
}
