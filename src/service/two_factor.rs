//! TOTP two-factor authentication with recovery codes.
//!
//! Setup stores a fresh 160-bit secret (encrypted with the server key) as pending; the first
//! correct code enables it and returns ten recovery codes, shown once and stored as argon2id
//! hashes. Each TOTP time-step is accepted once per account. With two-factor authentication on, a
//! correct password gives a pending session that `complete_login` turns into a full one.
use argon2::password_hash::rand_core::{OsRng, RngCore};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use totp_rs::{Secret, Totp};

use crate::context::AppContext;
use crate::entity::{recovery_code, user};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::password::Verified;

use super::sessions::Authenticated;
use super::{Actor, ClientInfo, audit, outbox};

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

/// What `POST /me/2fa/totp/setup` returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The otpauth URI as a QR code (an SVG document).
    pub qr_svg: String,
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Totp> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', "")))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("TOTP parameters rejected: {e}")))
}

/// Starts enrolment: a new secret, kept as pending until `enable` sees a correct code.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn setup(
    ctx: &AppContext,
    auth: &Authenticated,
    now: DateTime<Utc>,
) -> Result<TotpSetup> {
    let user = &auth.user;
    if user.totp_enabled_at.is_some() {
        return Err(Error::conflict(
            "two_factor_already_enabled",
            "two-factor authentication is already on; turn it off first to enrol a new app",
        ));
    }
    let mut secret = vec![0u8; 20];
    OsRng.fill_bytes(&mut secret);
    let sealed = ctx.key.seal(&ctx.config, &secret).await?;
    user::Entity::update_many()
        .col_expr(user::Column::TotpPendingSecret, Expr::value(sealed))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(&ctx.db)
        .await?;
    let base32 = Secret::from(secret.clone()).to_base32();
    let uri = totp(secret, &ctx.config.two_factor.issuer, &user.email)?
        .to_url()
        .map_err(|e| Error::Internal(anyhow::anyhow!("otpauth URI: {e}")))?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| Error::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpSetup {
        secret: base32,
        otpauth_uri: uri,
        qr_svg: svg,
    })
}

/// Enables two-factor authentication with the first correct code; returns the recovery codes.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn enable(
    ctx: &AppContext,
    auth: &Authenticated,
    code: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let user = &auth.user;
    if user.totp_enabled_at.is_some() {
        return Err(Error::conflict(
            "two_factor_already_enabled",
            "two-factor authentication is already on",
        ));
    }
    let Some(pending) = &user.totp_pending_secret else {
        return Err(Error::conflict(
            "two_factor_not_set_up",
            "start with POST /me/2fa/totp/setup",
        ));
    };
    let secret = ctx.key.open(&ctx.config, pending).await?;
    let Some(step) =
        totp(secret, &ctx.config.two_factor.issuer, &user.email)?.check(code.trim(), unix(now))
    else {
        return Err(Error::InvalidCode);
    };
    let enabled = user::Entity::update_many()
        .col_expr(user::Column::TotpSecret, Expr::value(pending.as_str()))
        .col_expr(
            user::Column::TotpPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(user::Column::TotpEnabledAt, Expr::value(now))
        .col_expr(user::Column::TotpLastStep, Expr::value(step as i64))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(user::Column::TotpEnabledAt.is_null())
        .exec(&ctx.db)
        .await?;
    if enabled.rows_affected == 0 {
        return Err(Error::conflict(
            "two_factor_already_enabled",
            "two-factor authentication is already on",
        ));
    }
    let codes = replace_recovery_codes(ctx, &user.id, now).await?;
    audit::Event::new(&Actor::User(user.id.clone()), "two_factor_enabled")
        .user(&user.id)
        .client(client)
        .detail(json!({ "factor": "totp" }))
        .record(&ctx.db, now)
        .await?;
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::two_factor_enabled(user),
        now,
    )
    .await?;
    Ok(codes)
}

/// Turns two-factor authentication off and deletes the recovery codes.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn disable(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let user = &auth.user;
    if user.totp_enabled_at.is_none() {
        return Err(Error::conflict(
            "two_factor_not_enabled",
            "two-factor authentication is not on",
        ));
    }
    user::Entity::update_many()
        .col_expr(
            user::Column::TotpSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::TotpPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::TotpEnabledAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::TotpLastStep, Expr::value(Option::<i64>::None))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(&ctx.db)
        .await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user.id.as_str()))
        .exec(&ctx.db)
        .await?;
    audit::Event::new(&Actor::User(user.id.clone()), "two_factor_disabled")
        .user(&user.id)
        .client(client)
        .record(&ctx.db, now)
        .await?;
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::two_factor_disabled(user),
        now,
    )
    .await?;
    Ok(())
}

/// Replaces every recovery code with a new set.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn regenerate_recovery_codes(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let user = &auth.user;
    if user.totp_enabled_at.is_none() {
        return Err(Error::conflict(
            "two_factor_not_enabled",
            "turn two-factor authentication on first",
        ));
    }
    let codes = replace_recovery_codes(ctx, &user.id, now).await?;
    audit::Event::new(&Actor::User(user.id.clone()), "recovery_codes_regenerated")
        .user(&user.id)
        .client(client)
        .record(&ctx.db, now)
        .await?;
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::recovery_codes_replaced(user),
        now,
    )
    .await?;
    Ok(codes)
}

/// 16 base32 characters (80 bits) each, shown as XXXX-XXXX-XXXX-XXXX.
async fn replace_recovery_codes(
    ctx: &AppContext,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut rows = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        let raw: String = bytes
            .iter()
            .map(|b| ALPHABET[usize::from(b % 32)] as char)
            .collect();
        let shown = format!(
            "{}-{}-{}-{}",
            &raw[0..4],
            &raw[4..8],
            &raw[8..12],
            &raw[12..16]
        );
        let hash = ctx.hasher.hash_light(&SecretString::from(raw)).await?;
        rows.push(recovery_code::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            user_id: Set(user_id.to_owned()),
            code_hash: Set(hash),
            created_at: Set(now),
            used_at: Set(None),
        });
        codes.push(shown);
    }
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(&ctx.db)
        .await?;
    recovery_code::Entity::insert_many(rows)
        .exec(&ctx.db)
        .await?;
    Ok(codes)
}

fn unix(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or_default()
}

/// Checks a TOTP code against the user's secret at `now` (±1 step); each step is accepted once.
pub async fn verify_totp(
    ctx: &AppContext,
    user: &user::Model,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(sealed) = &user.totp_secret else {
        return Ok(false);
    };
    let secret = ctx.key.open(&ctx.config, sealed).await?;
    let Some(step) =
        totp(secret, &ctx.config.two_factor.issuer, &user.email)?.check(code.trim(), unix(now))
    else {
        return Ok(false);
    };
    let step = step as i64;
    // Claim the step atomically: a replay, even a concurrent one, finds it taken.
    let claimed = user::Entity::update_many()
        .col_expr(user::Column::TotpLastStep, Expr::value(step))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(
            user::Column::TotpLastStep
                .is_null()
                .or(user::Column::TotpLastStep.lt(step)),
        )
        .exec(&ctx.db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// Uses one recovery code; of two concurrent uses of one code exactly one succeeds.
pub(crate) async fn use_recovery_code(
    ctx: &AppContext,
    user: &user::Model,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let normalised: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase();
    if normalised.len() != 16 {
        return Ok(false);
    }
    let candidates = recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(user.id.as_str()))
        .filter(recovery_code::Column::UsedAt.is_null())
        .all(&ctx.db)
        .await?;
    let secret = SecretString::from(normalised);
    for candidate in candidates {
        if ctx
            .hasher
            .verify_light(&candidate.code_hash, &secret)
            .await?
            != Verified::No
        {
            let used = recovery_code::Entity::update_many()
                .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
                .filter(recovery_code::Column::Id.eq(candidate.id.as_str()))
                .filter(recovery_code::Column::UsedAt.is_null())
                .exec(&ctx.db)
                .await?;
            return Ok(used.rows_affected == 1);
        }
    }
    Ok(false)
}
