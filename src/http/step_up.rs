//! `POST /auth/confirm`: step-up authentication.
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::step_up::{self, Proof};

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, CurrentSession};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
    /// A current TOTP code (required when two-factor authentication is on).
    code: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    confirmed: bool,
    /// Until when sensitive actions are allowed without another confirmation.
    step_up_until: DateTime<Utc>,
}

impl ConfirmResponse {
    pub fn new(step_up_until: DateTime<Utc>) -> Self {
        Self {
            confirmed: true,
            step_up_until,
        }
    }
}

/// Re-authenticate with `{"password"}` or `{"code"}`: opens the step-up window and rotates the
/// session token.
#[utoipa::path(post, path = "/auth/confirm", tag = "step-up", request_body = ConfirmRequest,
    responses(
        (status = 200, body = ConfirmResponse),
        (status = 401, description = "`invalid_credentials` or `invalid_code`", body = ErrorBody),
        (status = 403, description = "`second_factor_required`: this account must confirm with a code; `sso_step_up_required`: it confirms at its IdP (`GET /sso/login?stepUp=true`)", body = ErrorBody),
        (status = 429, description = "Too many failures", body = ErrorBody),
    ))]
pub async fn confirm(
    State(ctx): State<AppContext>,
    Client(client): Client,
    CurrentSession(auth): CurrentSession,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let proof = match (req.password, req.code) {
        (Some(password), None) => Proof::Password(password),
        (None, Some(code)) => Proof::Code(code),
        _ => {
            return Err(Error::invalid(
                "invalid_request",
                "send exactly one of {\"password\"} and {\"code\"}",
            )
            .into());
        }
    };
    let (token, until) = step_up::confirm(&ctx, &auth, proof, &client, ctx.now()).await?;
    Ok((
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &token),
        )],
        Json(ConfirmResponse {
            confirmed: true,
            step_up_until: until,
        }),
    ))
}
