//! The signed-in user's sessions and login history. These routes need a verified address.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::Actor;
use crate::service::history::{self, LoginEventView};
use crate::service::sessions::{self, SessionView};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Client, VerifiedSession};

/// Every live session of the current user; `current` marks the one making the request.
#[utoipa::path(get, path = "/me/sessions", tag = "sessions",
    responses(
        (status = 200, body = Vec<SessionView>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`email_not_verified`", body = ErrorBody),
    ))]
pub async fn list(
    State(ctx): State<AppContext>,
    VerifiedSession(auth): VerifiedSession,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let list =
        sessions::list_for_user(&ctx, &auth.user.id, Some(&auth.session.id), ctx.now()).await?;
    Ok(Json(list))
}

/// Revoke one of the current user's sessions; its next request gets 401.
#[utoipa::path(delete, path = "/me/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session id from `GET /me/sessions`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such session of yours", body = ErrorBody),
    ))]
pub async fn revoke(
    State(ctx): State<AppContext>,
    Client(client): Client,
    VerifiedSession(auth): VerifiedSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::User(auth.user.id.clone());
    sessions::revoke(
        &ctx,
        &actor,
        Some(&auth.user.id),
        &id,
        Some(&client),
        ctx.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RevokedResponse {
    /// How many sessions ended.
    revoked: u64,
}

/// Sign out everywhere else: every session of the user but this one ends, and a pending email
/// change is cancelled.
#[utoipa::path(post, path = "/me/sessions/revoke-others", tag = "sessions",
    responses((status = 200, body = RevokedResponse), (status = 401, body = ErrorBody)))]
pub async fn revoke_others(
    State(ctx): State<AppContext>,
    Client(client): Client,
    VerifiedSession(auth): VerifiedSession,
) -> Result<Json<RevokedResponse>, ApiError> {
    let revoked =
        crate::service::account::sign_out_everywhere_else(&ctx, &auth, &client, ctx.now()).await?;
    Ok(Json(RevokedResponse { revoked }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many entries, 1 to 100 (default 10).
    limit: Option<u64>,
}

/// The newest login attempts on this account, successful or not.
#[utoipa::path(get, path = "/me/login-history", tag = "sessions", params(HistoryQuery),
    responses(
        (status = 200, body = Vec<LoginEventView>),
        (status = 422, description = "`limit` out of range", body = ErrorBody),
    ))]
pub async fn login_history(
    State(ctx): State<AppContext>,
    VerifiedSession(auth): VerifiedSession,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<LoginEventView>>, ApiError> {
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("invalid_limit", "limit must be between 1 and 100").into());
    }
    Ok(Json(history::list(&ctx.db, &auth.user.id, limit).await?))
}
