//! TOTP enrolment and recovery codes. Every route here needs a recent authentication.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::service::two_factor::{self, TotpSetup};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, RecentAuth};

/// Start enrolling an authenticator app: a fresh secret, its otpauth URI and a QR code.
#[utoipa::path(post, path = "/me/2fa/totp/setup", tag = "two-factor",
    responses(
        (status = 200, body = TotpSetup),
        (status = 403, description = "`reauthentication_required`", body = ErrorBody),
        (status = 409, description = "Already on", body = ErrorBody),
    ))]
pub async fn setup(
    State(ctx): State<AppContext>,
    RecentAuth(auth): RecentAuth,
) -> Result<Json<TotpSetup>, ApiError> {
    Ok(Json(two_factor::setup(&ctx, &auth, ctx.now()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    /// Shown once: each works once, instead of a code from the app.
    recovery_codes: Vec<String>,
}

/// Turn two-factor authentication on with a first correct code; returns the recovery codes.
#[utoipa::path(post, path = "/me/2fa/totp/enable", tag = "two-factor", request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 401, description = "`invalid_code`", body = ErrorBody),
        (status = 403, description = "`reauthentication_required`", body = ErrorBody),
        (status = 409, description = "Not set up, or already on", body = ErrorBody),
    ))]
pub async fn enable(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = two_factor::enable(&ctx, &auth, &req.code, &client, ctx.now()).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Turn two-factor authentication off (the recovery codes go too); the user is mailed.
#[utoipa::path(delete, path = "/me/2fa/totp", tag = "two-factor",
    responses(
        (status = 204, description = "Off"),
        (status = 403, description = "`reauthentication_required`", body = ErrorBody),
        (status = 409, description = "It was not on", body = ErrorBody),
    ))]
pub async fn disable(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
) -> Result<StatusCode, ApiError> {
    two_factor::disable(&ctx, &auth, &client, ctx.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace every recovery code with a new set.
#[utoipa::path(post, path = "/me/2fa/recovery-codes", tag = "two-factor",
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 403, description = "`reauthentication_required`", body = ErrorBody),
        (status = 409, description = "Two-factor authentication is off", body = ErrorBody),
    ))]
pub async fn regenerate(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes =
        two_factor::regenerate_recovery_codes(&ctx, &auth, &client, ctx.now()).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}
