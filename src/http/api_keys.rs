//! The user's API keys.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::api_keys::{self, ApiKeyView};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller, Client, CurrentSession, RecentAuth};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateKeyRequest {
    name: String,
    /// A lifetime like `30d` (default 90d, at most 365d).
    expires_in: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// The whole key. Shown this once; only a hash is stored.
    secret: String,
}

/// Create an API key (needs a recent authentication).
#[utoipa::path(post, path = "/me/api-keys", tag = "api-keys", request_body = CreateKeyRequest,
    responses(
        (status = 201, body = CreatedKey),
        (status = 403, description = "`reauthentication_required`, or an API key tried", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn create(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let (key, secret) = api_keys::create(
        &ctx,
        &auth.user.id,
        &req.name,
        req.expires_in.as_deref(),
        &client,
        ctx.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

/// The caller's API keys (prefix, name, created, last used, expiry); a session or a key may ask.
#[utoipa::path(get, path = "/me/api-keys", tag = "api-keys",
    responses((status = 200, body = Vec<ApiKeyView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(api_keys::list(&ctx, &caller.user.id).await?))
}

/// Revoke one of the caller's keys.
#[utoipa::path(delete, path = "/me/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(ctx): State<AppContext>,
    CurrentSession(auth): CurrentSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::User(auth.user.id.clone());
    api_keys::revoke(&ctx, &actor, Some(&auth.user.id), &id, ctx.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
