//! Changing the email address and the password, and resetting a forgotten password.
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::account;

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Client, CurrentSession, JsonOrForm, RecentAuth};
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
#[into_params(parameter_in = Query)]
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
        (status = 200, description = "Changed; with `Accept: text/html`, a page whose button confirms (`POST /confirm-email-change/confirm`)", body = EmailChangedResponse),
        (status = 409, description = "Another account took the address meanwhile", body = ErrorBody),
        (status = 410, description = "Used, expired or unknown link", body = ErrorBody),
    ))]
pub async fn confirm_email_change(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> Result<axum::response::Response, ApiError> {
    // A browser gets the page with the button (a mail scanner's GET changes nothing).
    if super::page::wants_html(&headers) {
        return Ok(super::pages::links::confirm_change_page(&ctx, query.token.as_deref()).await);
    }
    let token = query
        .token
        .ok_or_else(|| Error::invalid("invalid_token", "the link has no token"))?;
    let user = account::confirm_email_change(&ctx, &token, &client, ctx.now()).await?;
    Ok(Json(EmailChangedResponse { email: user.email }).into_response())
}

/// Withdraw a pending email change: its confirmation link stops working (410).
#[utoipa::path(delete, path = "/me/email/pending", tag = "account",
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No email change is pending", body = ErrorBody),
    ))]
pub async fn cancel_pending_email(
    State(ctx): State<AppContext>,
    Client(client): Client,
    CurrentSession(auth): CurrentSession,
) -> Result<StatusCode, ApiError> {
    account::cancel_email_change(&ctx, &auth, &client, ctx.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The page behind the link in the notice to the old address. Opening it changes nothing (mail
/// scanners open links); its button posts the token to `POST /cancel-email-change`.
#[utoipa::path(get, path = "/cancel-email-change", tag = "account", params(TokenQuery),
    responses(
        (status = 200, description = "A page with the button that cancels the change", content_type = "text/html"),
        (status = 410, description = "Used, expired or unknown link", body = ErrorBody),
        (status = 422, description = "No token, or a malformed one", body = ErrorBody),
    ))]
pub async fn cancel_email_change_page(
    State(ctx): State<AppContext>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> Result<Html<String>, ApiError> {
    let token = query
        .token
        .ok_or_else(|| Error::invalid("invalid_token", "the link has no token"))?;
    account::check_cancel_link(&ctx, &token, ctx.now()).await?;
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cancel the email change</title></head>\
         <body><h1>Cancel the change of your email address?</h1>\
         <p>Someone asked to move your account to another address. If this was not you, cancel it, then change your password and sign out everywhere else.</p>\
         <form method=\"post\" action=\"{}/cancel-email-change\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\">Cancel the change</button></form></body></html>",
        super::page::escape(&ctx.config.public_base()),
        super::page::escape(&token)
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelEmailChangeRequest {
    /// The token from the link in the notice to the old address.
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct CancelledResponse {
    cancelled: bool,
}

/// Cancel a pending email change with the token mailed to the old address (no session needed).
/// Takes JSON, or the form the page of `GET /cancel-email-change` posts.
#[utoipa::path(post, path = "/cancel-email-change", tag = "account",
    request_body(content(
        (CancelEmailChangeRequest = "application/json"),
        (CancelEmailChangeRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = CancelledResponse),
        (status = 400, description = "The body is not valid JSON or form data", body = ErrorBody),
        (status = 410, description = "Used, expired or unknown link, or nothing left to cancel", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "No token, or a malformed one", body = ErrorBody),
    ))]
pub async fn cancel_email_change(
    State(ctx): State<AppContext>,
    Client(client): Client,
    JsonOrForm(req): JsonOrForm<CancelEmailChangeRequest>,
) -> Result<axum::response::Response, ApiError> {
    account::cancel_email_change_by_link(&ctx, &req.0.token, &client, ctx.now()).await?;
    if req.1 {
        return Ok(Html(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Email change cancelled</title></head>\
             <body><h1>The change was cancelled</h1><p>Your account keeps this address. Change your password and sign out everywhere else if you did not ask for the change.</p></body></html>"
                .to_owned(),
        )
        .into_response());
    }
    Ok(Json(CancelledResponse { cancelled: true }).into_response())
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
