//! The verification link and resending it.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::{Actor, verification};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBytes, ApiQuery, Client, MaybeSession, parse_json};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The token from the mailed link.
    token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifiedResponse {
    verified: bool,
    email: String,
}

/// Verify an email address with the token from the mailed link.
#[utoipa::path(get, path = "/verify-email", tag = "verification", params(VerifyQuery),
    responses(
        (status = 200, description = "Verified; with `Accept: text/html`, a page whose button verifies (`POST /verify-email/confirm`) and nothing is used yet", body = VerifiedResponse),
        (status = 410, description = "The link was used, has expired or is unknown", body = ErrorBody),
        (status = 422, description = "No token, or a malformed one", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<axum::response::Response, ApiError> {
    // A browser gets the page with the button (a mail scanner's GET verifies nothing).
    if super::page::wants_html(&headers) {
        return Ok(super::pages::links::verify_page(&ctx, query.token.as_deref()).await);
    }
    let token = query.token.ok_or_else(|| {
        Error::invalid(
            "invalid_token",
            "the link has no token; copy the whole link from the mail",
        )
    })?;
    let user = verification::confirm(&ctx, &token, &client, ctx.now()).await?;
    Ok(axum::response::IntoResponse::into_response(Json(
        VerifiedResponse {
            verified: true,
            email: user.email,
        },
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedResponse {
    message: String,
}

impl AcceptedResponse {
    pub fn new(message: &str) -> Self {
        Self {
            message: message.to_owned(),
        }
    }
}

/// Send a new verification link: to `{"email"}`, or, without a body, to the signed-in user.
/// The answer is the same whether or not the address has an account; at most one mail a minute.
#[utoipa::path(post, path = "/verify-email/resend", tag = "verification", request_body(content = Option<ResendRequest>),
    responses(
        (status = 202, body = AcceptedResponse),
        (status = 422, description = "Neither an email nor a session", body = ErrorBody),
        (status = 429, description = "Too many resend requests from this client IP this hour", body = ErrorBody),
    ))]
pub async fn resend(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<AcceptedResponse>), ApiError> {
    let now = ctx.now();
    verification::limit_resend(&ctx, &client, now).await?;
    let has_body = body.iter().any(|b| !b.is_ascii_whitespace());
    let by_address = if has_body {
        Some(parse_json::<ResendRequest>(&body)?.email)
    } else {
        None
    };
    if by_address.is_none() && session.is_none() {
        return Err(
            Error::invalid("invalid_request", "send {\"email\": ...} or sign in first").into(),
        );
    }
    // The mail only goes into the outbox, so the answer waits for no SMTP server and takes
    // about the same time whether or not the address has an account.
    match (by_address, session) {
        (Some(email), _) => verification::resend_for_address(&ctx, &email, now).await?,
        (None, Some(auth)) => {
            verification::resend(&ctx, &Actor::User(auth.user.id.clone()), &auth.user, now).await?;
        }
        (None, None) => {}
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedResponse {
            message: "if the address belongs to an unverified account, a new link is on its way"
                .into(),
        }),
    ))
}
