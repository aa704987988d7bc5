//! Passkeys: registering and managing them (`/me/passkeys…`), signing in with one
//! (`/login/passkey/…`) and confirming with one (`/auth/confirm/passkey/…`).
//!
//! The wire format is the same for the three ceremonies: `start` answers the options as
//! webauthn-rs writes them (`{"publicKey": {...}}`, `mediation` when asked for) with
//! `ceremonyId` beside them and sets the binding cookie; `finish` takes `{"ceremonyId",
//! "credential"}`, the credential being what the browser's `PublicKeyCredential.toJSON()` gives.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::passkeys::PasskeyView;
use crate::service::users::UserView;
use crate::service::webauthn::{self, Registration, Started};

use super::auth::AuthResponse;
use super::cookies::{self, WEBAUTHN};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBytes, ApiJson, ApiPath, Client, CurrentSession, RecentAuth, parse_json};
use super::step_up::ConfirmResponse;

/// The answer of every `start`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CeremonyOptions {
    /// `PublicKeyCredentialCreationOptions` (registration) or
    /// `PublicKeyCredentialRequestOptions` (login, step-up) in their JSON form: give them to
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`.
    #[schema(value_type = Object)]
    public_key: Value,
    /// `conditional` when the login was started for the browser's autofill.
    #[serde(skip_serializing_if = "Option::is_none")]
    mediation: Option<Value>,
    /// Send it back to `finish`. The ceremony works once, for 5 minutes, in this browser.
    ceremony_id: String,
}

fn started(ctx: &AppContext, started: Started) -> Response {
    let Started {
        mut options,
        ceremony_id,
        binding,
    } = started;
    let body = CeremonyOptions {
        public_key: options
            .get_mut("publicKey")
            .map(Value::take)
            .unwrap_or_default(),
        mediation: options.get_mut("mediation").map(Value::take),
        ceremony_id,
    };
    (
        [(
            header::SET_COOKIE,
            WEBAUTHN.set(&ctx.config, &binding, ctx.config.webauthn.ceremony_ttl),
        )],
        Json(body),
    )
        .into_response()
}

/// Start registering a passkey (needs a recent confirmation, like every credential change).
#[utoipa::path(post, path = "/me/passkeys/register/start", tag = "passkeys",
    responses(
        (status = 200, body = CeremonyOptions),
        (status = 403, description = "`reauthentication_required`, `email_not_verified`, or `sso_required` (the account signs in at its IdP)", body = ErrorBody),
        (status = 409, description = "`passkeys_unavailable`: public_url is an IP address and no webauthn.rp_id is set", body = ErrorBody),
    ))]
pub async fn register_start(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    RecentAuth(auth): RecentAuth,
) -> Result<Response, ApiError> {
    let binding = WEBAUTHN.read(&headers, &ctx.config);
    let start = webauthn::register_start(&ctx, &auth, binding, ctx.now()).await?;
    Ok(started(&ctx, start))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterFinishRequest {
    ceremony_id: String,
    /// What to call it in lists and mails (1 to 64 characters); default `Passkey`.
    name: Option<String>,
    /// The browser's `PublicKeyCredential.toJSON()` after `navigator.credentials.create`.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

/// Finish registering: the credential is verified and stored; the user is mailed.
#[utoipa::path(post, path = "/me/passkeys/register/finish", tag = "passkeys", request_body = RegisterFinishRequest,
    responses(
        (status = 201, body = PasskeyView),
        (status = 403, description = "`reauthentication_required` or `email_not_verified`", body = ErrorBody),
        (status = 409, description = "`passkey_exists`: this credential is registered already; `passkeys_unavailable`", body = ErrorBody),
        (status = 422, description = "`ceremony_invalid` (expired, used, or started by another browser or session), `passkey_rejected` (the authenticator's answer failed verification: wrong origin, no user verification, …) or `invalid_name`", body = ErrorBody),
    ))]
pub async fn register_finish(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    RecentAuth(auth): RecentAuth,
    ApiJson(req): ApiJson<RegisterFinishRequest>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let reg = Registration {
        ceremony_id: &req.ceremony_id,
        binding: WEBAUTHN.read(&headers, &ctx.config),
        name: req.name.as_deref().unwrap_or("Passkey"),
        credential: &req.credential,
    };
    let view = webauthn::register_finish(&ctx, &auth, reg, &client, ctx.now()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The signed-in user's passkeys, oldest first.
#[utoipa::path(get, path = "/me/passkeys", tag = "passkeys",
    responses((status = 200, body = Vec<PasskeyView>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    CurrentSession(auth): CurrentSession,
) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    Ok(Json(webauthn::list(&ctx, &auth.user.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    name: String,
}

/// Rename one of your passkeys.
#[utoipa::path(patch, path = "/me/passkeys/{id}", tag = "passkeys", request_body = RenameRequest,
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 200, body = PasskeyView),
        (status = 404, description = "No passkey of yours has this id", body = ErrorBody),
        (status = 422, description = "`invalid_name`", body = ErrorBody),
    ))]
pub async fn rename(
    State(ctx): State<AppContext>,
    Client(client): Client,
    CurrentSession(auth): CurrentSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RenameRequest>,
) -> Result<Json<PasskeyView>, ApiError> {
    let view = webauthn::rename(&ctx, &auth.user.id, &id, &req.name, &client, ctx.now()).await?;
    Ok(Json(view))
}

/// Remove one of your passkeys (needs a recent confirmation); the user is mailed.
#[utoipa::path(delete, path = "/me/passkeys/{id}", tag = "passkeys",
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Removed; it fails at its next use"),
        (status = 403, description = "`reauthentication_required` or `email_not_verified`", body = ErrorBody),
        (status = 404, description = "No passkey of yours has this id", body = ErrorBody),
    ))]
pub async fn remove(
    State(ctx): State<AppContext>,
    Client(client): Client,
    RecentAuth(auth): RecentAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::User(auth.user.id.clone());
    webauthn::remove(
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

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    /// The address, when the user typed one: its account's passkeys are offered. Without it
    /// the browser offers its discoverable credentials for this site.
    email: Option<String>,
    /// `true` when the page runs the ceremony from the browser's autofill (mediation
    /// "conditional").
    #[serde(default)]
    conditional: bool,
}

/// Start a passkey sign-in. The body is optional.
#[utoipa::path(post, path = "/login/passkey/start", tag = "passkeys", request_body(content = Option<LoginStartRequest>),
    responses(
        (status = 200, body = CeremonyOptions),
        (status = 403, description = "`sso_required`: the address's domain signs in at its IdP", body = ErrorBody),
        (status = 409, description = "`passkeys_unavailable`", body = ErrorBody),
        (status = 429, description = "Too many passkey logins from this client IP this hour", body = ErrorBody),
    ))]
pub async fn login_start(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let req = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        // A body is JSON, said so: a form or text/plain post from another site (no preflight)
        // is refused.
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        parse_json::<LoginStartRequest>(&body)?
    } else {
        LoginStartRequest::default()
    };
    let binding = WEBAUTHN.read(&headers, &ctx.config);
    let start = webauthn::login_start(
        &ctx,
        req.email.as_deref(),
        req.conditional,
        binding,
        &client,
        ctx.now(),
    )
    .await?;
    Ok(started(&ctx, start))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssertionRequest {
    ceremony_id: String,
    /// The browser's `PublicKeyCredential.toJSON()` after `navigator.credentials.get`.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

/// Finish a passkey sign-in: a full session (a passkey with user verification is both
/// factors; no code is asked).
#[utoipa::path(post, path = "/login/passkey/finish", tag = "passkeys", request_body = AssertionRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = AuthResponse),
        (status = 401, description = "`passkey_rejected` (unknown or removed passkey, another account's, wrong origin, no user verification, a replay, a counter that went backwards) or `ceremony_invalid` (expired, used, or another browser's)", body = ErrorBody),
        (status = 403, description = "`account_disabled` or `sso_required`", body = ErrorBody),
        (status = 409, description = "`passkeys_unavailable`", body = ErrorBody),
        (status = 429, description = "Too many failures from this client IP", body = ErrorBody),
    ))]
pub async fn login_finish(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AssertionRequest>,
) -> Result<Response, ApiError> {
    let binding = WEBAUTHN.read(&headers, &ctx.config);
    let (user, session) = webauthn::login_finish(
        &ctx,
        &req.ceremony_id,
        binding,
        &req.credential,
        &client,
        ctx.now(),
    )
    .await?;
    let body = AuthResponse::new(UserView::from(&user), false);
    Ok((
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &session.token),
        )],
        Json(body),
    )
        .into_response())
}

/// Start confirming with a passkey (step-up).
#[utoipa::path(post, path = "/auth/confirm/passkey/start", tag = "step-up",
    responses(
        (status = 200, body = CeremonyOptions),
        (status = 409, description = "`passkeys_unavailable`", body = ErrorBody),
        (status = 422, description = "`no_passkeys`: this account has none", body = ErrorBody),
    ))]
pub async fn confirm_start(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    CurrentSession(auth): CurrentSession,
) -> Result<Response, ApiError> {
    let binding = WEBAUTHN.read(&headers, &ctx.config);
    let start = webauthn::step_up_start(&ctx, &auth, binding, ctx.now()).await?;
    Ok(started(&ctx, start))
}

/// Finish confirming with a passkey: opens the step-up window and rotates the session token,
/// as `POST /auth/confirm` does.
#[utoipa::path(post, path = "/auth/confirm/passkey/finish", tag = "step-up", request_body = AssertionRequest,
    responses(
        (status = 200, body = ConfirmResponse),
        (status = 401, description = "`passkey_rejected` or `ceremony_invalid`", body = ErrorBody),
        (status = 409, description = "`passkeys_unavailable`", body = ErrorBody),
        (status = 429, description = "Too many failures", body = ErrorBody),
    ))]
pub async fn confirm_finish(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    CurrentSession(auth): CurrentSession,
    ApiJson(req): ApiJson<AssertionRequest>,
) -> Result<Response, ApiError> {
    let binding = WEBAUTHN.read(&headers, &ctx.config);
    let (token, until): (_, DateTime<Utc>) = webauthn::step_up_finish(
        &ctx,
        &auth,
        &req.ceremony_id,
        binding,
        &req.credential,
        &client,
        ctx.now(),
    )
    .await?;
    Ok((
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &token),
        )],
        Json(ConfirmResponse::new(until)),
    )
        .into_response())
}
