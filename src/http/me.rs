//! The signed-in user's own account.
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::service::users::{self, UserView};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, CurrentSession, VerifiedSession};

/// The current user. Works for unverified accounts too.
#[utoipa::path(get, path = "/me", tag = "accounts",
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn get_me(CurrentSession(auth): CurrentSession) -> Json<UserView> {
    Json((&auth.user).into())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    name: String,
}

/// Change the display name. Needs a verified email address.
#[utoipa::path(patch, path = "/me", tag = "accounts", request_body = UpdateProfile,
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "`email_not_verified`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn update_me(
    State(ctx): State<AppContext>,
    Client(client): Client,
    VerifiedSession(auth): VerifiedSession,
    ApiJson(req): ApiJson<UpdateProfile>,
) -> Result<Json<UserView>, ApiError> {
    let user = users::rename(&ctx, &auth.user.id, &req.name, &client, ctx.now()).await?;
    Ok(Json((&user).into()))
}
