//! Signup, login and logout.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::login::{self, SecondFactor};
use crate::service::users::{NewUser, UserView};
use crate::service::{sessions, signup};

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Client, MaybeSession, PendingSession};

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
    /// `true`: the password was right and a second factor is due (`POST /login/2fa`); the cookie
    /// set now only works for that.
    two_factor_required: bool,
}

impl AuthResponse {
    pub fn new(user: UserView, two_factor_required: bool) -> Self {
        Self {
            user,
            two_factor_required,
        }
    }
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
    let (user, session) = signup::signup(&ctx, new, &client, ctx.now()).await?;
    let body = AuthResponse {
        user: (&user).into(),
        two_factor_required: false,
    };
    Ok((
        StatusCode::CREATED,
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &session.token),
        )],
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
    let outcome = login::password(&ctx, &req.email, &req.password, &client, ctx.now()).await?;
    let body = AuthResponse {
        user: (&outcome.user).into(),
        two_factor_required: outcome.two_factor_required,
    };
    Ok((
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &outcome.session.token),
        )],
        Json(body),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecondFactorRequest {
    /// A current code from the authenticator app.
    code: Option<String>,
    /// One of the recovery codes (each works once).
    recovery_code: Option<String>,
}

/// Finish a login that needs a second factor: `{"code"}` or `{"recoveryCode"}`.
#[utoipa::path(post, path = "/login/2fa", tag = "sessions", request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is replaced", body = AuthResponse),
        (status = 401, description = "`invalid_code`, or no pending login", body = ErrorBody),
        (status = 409, description = "`login_complete`: this session is already signed in", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody),
    ))]
pub async fn login_second_factor(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PendingSession(auth): PendingSession,
    ApiJson(req): ApiJson<SecondFactorRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let factor = match (req.code, req.recovery_code) {
        (Some(code), None) => SecondFactor::Code(code),
        (None, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => {
            return Err(Error::invalid(
                "invalid_request",
                "send exactly one of {\"code\"} and {\"recoveryCode\"}",
            )
            .into());
        }
    };
    let token = login::second_factor(&ctx, &auth, factor, &client, ctx.now()).await?;
    let body = AuthResponse {
        user: (&auth.user).into(),
        two_factor_required: false,
    };
    Ok((
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &token),
        )],
        Json(body),
    ))
}

/// End the current session. Always 204; the cookie is cleared.
#[utoipa::path(post, path = "/logout", tag = "sessions",
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(auth) = session {
        sessions::logout(&ctx, &auth, &client, ctx.now()).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [
            (header::SET_COOKIE, cookies::clear_session(&ctx.config)),
            (
                HeaderName::from_static("clear-site-data"),
                HeaderValue::from_static("\"cookies\""),
            ),
        ],
    ))
}
