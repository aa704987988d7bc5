//! Signup, login and logout.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Config;
use crate::context::AppContext;
use crate::service::sessions::{self, NewSession};
use crate::service::users::{self, NewUser, UserView};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, cookie_name, session_token};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(example = "test@example.com")]
    email: String,
    #[schema(value_type = String, format = Password, example = "pass12345")]
    password: SecretString,
    #[serde(default)]
    #[schema(example = "Test User")]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    user: UserView,
    /// Always `false` until second factors exist; then `true` means "send the second factor".
    two_factor_required: bool,
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Path=/, and Secure under https.
pub fn session_cookie(config: &Config, session: &NewSession) -> HeaderValue {
    let max_age = config.session.absolute_timeout.as_secs();
    let secure = if config.is_https() { "; Secure" } else { "" };
    let value = format!(
        "{}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}",
        cookie_name(config),
        session.token.expose_secret()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(config: &Config) -> HeaderValue {
    let secure = if config.is_https() { "; Secure" } else { "" };
    let value = format!(
        "{}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}",
        cookie_name(config)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Create an account; it is signed in at once and a verification mail is sent.
#[utoipa::path(post, path = "/signup", tag = "accounts", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created; the session cookie is set", body = AuthResponse),
        (status = 409, description = "The address is taken", body = ErrorBody),
        (status = 422, description = "Invalid email, name or password (the reason is in `error`)", body = ErrorBody),
    ))]
pub async fn signup(
    State(ctx): State<AppContext>,
    Client(client): Client,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewUser {
        email: req.email,
        name: req.name,
        password: Some(req.password),
        verified: false,
    };
    let (user, session) = users::signup(&ctx, new, &client, ctx.now()).await?;
    let body = AuthResponse {
        user: (&user).into(),
        two_factor_required: false,
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, session_cookie(&ctx.config, &session))],
        Json(body),
    ))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/login", tag = "sessions", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = AuthResponse),
        (status = 401, description = "Wrong email or password (the same answer for an unknown address)", body = ErrorBody),
        (status = 403, description = "The account is disabled", body = ErrorBody),
        (status = 429, description = "Too many failures; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn login(
    State(ctx): State<AppContext>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (user, session) =
        sessions::login(&ctx, &req.email, &req.password, &client, ctx.now()).await?;
    let body = AuthResponse {
        user: (&user).into(),
        two_factor_required: false,
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&ctx.config, &session))],
        Json(body),
    ))
}

/// End the current session. Always 204; the cookie is cleared.
#[utoipa::path(post, path = "/logout", tag = "sessions",
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let now = ctx.now();
    if let Some(token) = session_token(&headers, &ctx.config) {
        if let Ok(auth) = sessions::authenticate(&ctx, token, now).await {
            sessions::logout(&ctx, &auth, &client, now).await?;
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [
            (header::SET_COOKIE, clear_cookie(&ctx.config)),
            (
                HeaderName::from_static("clear-site-data"),
                HeaderValue::from_static("\"cookies\""),
            ),
        ],
    ))
}
