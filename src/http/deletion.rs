//! The user's side of account deletion.
use axum::Json;
use axum::extract::State;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::deletion::{self, DeletionStatus};

use super::error::{ApiError, ErrorBody};
use super::extract::{Client, CurrentSession, RecentAuth};

/// Schedule this account for deletion after the grace period (needs a recent authentication).
/// Every other session and every API key ends at once; this session can still see `/me`, the
/// status, cancel and log out.
#[utoipa::path(post, path = "/me/delete", tag = "deletion",
    responses(
        (status = 200, body = DeletionStatus),
        (status = 403, description = "`reauthentication_required`, or already pending (`account_pending_deletion`)", body = ErrorBody),
    ))]
pub async fn request(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
) -> Result<Json<DeletionStatus>, ApiError> {
    let actor = Actor::User(auth.user.id.clone());
    let status = deletion::schedule(
        &ctx,
        &actor,
        &auth.user,
        Some(&auth.session.id),
        None,
        Some(&client),
        ctx.now(),
    )
    .await?;
    Ok(Json(status))
}

/// Whether this account is scheduled for deletion, and when.
#[utoipa::path(get, path = "/me/delete/status", tag = "deletion",
    responses((status = 200, body = DeletionStatus), (status = 401, body = ErrorBody)))]
pub async fn status(
    State(ctx): State<AppContext>,
    CurrentSession(auth): CurrentSession,
) -> Json<DeletionStatus> {
    Json(deletion::status(&auth.user, ctx.now()))
}

/// Cancel a scheduled deletion during the grace period; the account is restored fully.
#[utoipa::path(post, path = "/me/delete/cancel", tag = "deletion",
    responses(
        (status = 200, body = DeletionStatus),
        (status = 409, description = "`deletion_not_scheduled`", body = ErrorBody),
    ))]
pub async fn cancel(
    State(ctx): State<AppContext>,
    Client(client): Client,
    CurrentSession(auth): CurrentSession,
) -> Result<Json<DeletionStatus>, ApiError> {
    let actor = Actor::User(auth.user.id.clone());
    deletion::cancel(&ctx, &actor, &auth.user.id, Some(&client), ctx.now()).await?;
    Ok(Json(DeletionStatus {
        scheduled: false,
        scheduled_for: None,
        days_remaining: None,
    }))
}
