//! Changing the email address and the password, and resetting a forgotten password.
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::account;

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, RecentAuth};
use super::verification::AcceptedResponse;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailChangeResponse {
    /// The address in use until the change is confirmed.
    email: String,
    /// The address waiting for confirmation from its inbox.
    pending_email: String,
}

/// Ask to change the address: a confirmation link goes to the new one, a notice to the old one.
#[utoipa::path(put, path = "/me/email", tag = "account", request_body = EmailChangeRequest,
    responses(
        (status = 200, body = EmailChangeResponse),
        (status = 403, description = "`reauthentication_required` or `email_not_verified`", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_email` or `email_unchanged`", body = ErrorBody),
    ))]
pub async fn change_email(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
    ApiJson(req): ApiJson<EmailChangeRequest>,
) -> Result<Json<EmailChangeResponse>, ApiError> {
    let pending =
        account::request_email_change(&ctx, &auth, &req.email, &client, ctx.now()).await?;
    Ok(Json(EmailChangeResponse {
        email: auth.user.email.clone(),
        pending_email: pending.to_string(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct TokenQuery {
    /// The token from the mailed link.
    token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EmailChangedResponse {
    email: String,
}

/// Confirm an address change from the link mailed to the new address (no session needed).
#[utoipa::path(get, path = "/confirm-email-change", tag = "account", params(TokenQuery),
    responses(
        (status = 200, body = EmailChangedResponse),
        (status = 409, description = "Another account took the address meanwhile", body = ErrorBody),
        (status = 410, description = "Used, expired or unknown link", body = ErrorBody),
    ))]
pub async fn confirm_email_change(
    State(ctx): State<AppContext>,
    Client(client): Client,
    Query(query): Query<TokenQuery>,
) -> Result<Json<EmailChangedResponse>, ApiError> {
    let token = query
        .token
        .ok_or_else(|| Error::invalid("invalid_token", "the link has no token"))?;
    let user = account::confirm_email_change(&ctx, &token, &client, ctx.now()).await?;
    Ok(Json(EmailChangedResponse { email: user.email }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChangeRequest {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Change the password: every other session ends, this one gets a new token, the user is mailed.
#[utoipa::path(put, path = "/me/password", tag = "account", request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "`reauthentication_required` or `invalid_current_password`", body = ErrorBody),
        (status = 422, description = "The new password breaks the policy", body = ErrorBody),
    ))]
pub async fn change_password(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let token = account::change_password(
        &ctx,
        &auth,
        &req.current_password,
        &req.new_password,
        &client,
        ctx.now(),
    )
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &token),
        )],
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// Forgotten password: mails a 30-minute single-use link. The same answer whether the address
/// exists or not.
#[utoipa::path(post, path = "/password-reset", tag = "account", request_body = ResetRequest,
    responses(
        (status = 202, body = AcceptedResponse),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ))]
pub async fn request_reset(
    State(ctx): State<AppContext>,
    Client(client): Client,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<AcceptedResponse>), ApiError> {
    account::request_reset(&ctx, &req.email, &client, ctx.now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedResponse::new(
            "if the address belongs to an account, a reset link is on its way",
        )),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetConfirmRequest {
    token: String,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Set a new password with the mailed token. Every session ends; nobody is signed in.
#[utoipa::path(post, path = "/password-reset/confirm", tag = "account", request_body = ResetConfirmRequest,
    responses(
        (status = 204, description = "Password set; sign in with it"),
        (status = 410, description = "Used, expired or unknown token", body = ErrorBody),
        (status = 422, description = "The new password breaks the policy", body = ErrorBody),
    ))]
pub async fn confirm_reset(
    State(ctx): State<AppContext>,
    Client(client): Client,
    ApiJson(req): ApiJson<ResetConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    account::confirm_reset(&ctx, &req.token, &req.new_password, &client, ctx.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
