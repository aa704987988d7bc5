//! The signed-in user's own account.
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::service::step_up;
use crate::service::users::{self, UserView};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Caller, Client, VerifiedSession};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    #[serde(flatten)]
    user: UserView,
    two_factor_enabled: bool,
    /// How this account can sign in and confirm: `password`, `totp`, `passkey`, `sso`.
    #[schema(value_type = Vec<String>, example = json!(["password", "passkey"]))]
    factors: Vec<&'static str>,
    /// Until when sensitive actions need no re-authentication; `null` when the window is closed
    /// (or when an API key is calling).
    step_up_until: Option<DateTime<Utc>>,
}

/// The current user. Works for unverified accounts too, and with an API key.
#[utoipa::path(get, path = "/me", tag = "accounts",
    responses(
        (status = 200, body = MeView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn get_me(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> Result<Json<MeView>, ApiError> {
    let step_up_until = caller
        .session
        .as_ref()
        .and_then(|auth| step_up::window_until(&auth.session, &ctx.config, ctx.now()));
    // The session check read the roles with the session; an API key's caller reads them now.
    let known = caller.session.as_ref().and_then(|auth| auth.roles.clone());
    Ok(Json(MeView {
        user: UserView::with_roles_known(&caller.user, known, &ctx.read).await?,
        two_factor_enabled: caller.user.totp_enabled_at.is_some(),
        factors: users::factors(&ctx.read, &caller.user).await?,
        step_up_until,
    }))
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
