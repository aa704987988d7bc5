//! Extractors: JSON bodies with JSON errors, the client's address, and the session guards.
//! A route that needs a verified address takes `VerifiedSession` instead of `CurrentSession`.
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::context::AppContext;
use crate::error::Error;
use crate::service::ClientInfo;
use crate::service::sessions::{self, Authenticated};

use super::cookies;
use super::error::ApiError;

/// `Json<T>` whose rejections are `{"error","message"}` bodies.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "malformed_json",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_request",
    };
    let message = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with `Content-Type: application/json`".to_owned()
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        _ => rejection.body_text(),
    };
    ApiError::new(status, code, message)
}

/// A body sent as JSON or as an HTML form (`application/x-www-form-urlencoded`); the flag says
/// it was a form, so the answer can be a page.
pub struct JsonOrForm<T>(pub (T, bool));

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(v)| Self((v, false)));
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        serde_urlencoded::from_bytes::<T>(&bytes)
            .map(|v| Self((v, true)))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    format!("the form is invalid: {e}"),
                )
            })
    }
}

/// `Query<T>` whose rejections are `{"error","message"}` bodies (422 `invalid_query`).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// `Path<T>` whose rejections are `{"error","message"}` bodies (404 `not_found` for a segment
/// that cannot be what the route expects, 500 only for a route defined wrong).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such resource: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::new(
                other.status(),
                "internal",
                "the route could not read its path",
            )),
        }
    }
}

/// The raw body, with a JSON 413 when it is over `http.body_limit`.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S> FromRequest<S> for ApiBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|r| {
                let status = r.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "invalid_request"
                };
                ApiError::new(status, code, "the request body could not be read")
            })
    }
}

/// Parses a JSON body that was read as bytes (for routes where the body is optional).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let (status, code) = if e.is_data() {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
        } else {
            (StatusCode::BAD_REQUEST, "malformed_json")
        };
        ApiError::new(status, code, format!("the JSON body is invalid: {e}"))
    })
}

/// The client's IP: the socket peer, or the nearest untrusted address in `X-Forwarded-For` when
/// the peer is one of `trusted_proxies`.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.map(|ip| ip.to_canonical())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    // Walk from the nearest hop outwards; the first address we do not trust is the client.
    Some(
        hops.iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer),
    )
}

/// The user agent, cut to 512 characters, with control characters replaced (no log injection).
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let clean: String = raw
        .chars()
        .take(512)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    (!clean.trim().is_empty()).then_some(clean)
}

pub fn client_info(parts: &Parts, config: &Config) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let fingerprint = parts
        .headers
        .get("x-client-fingerprint")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::service::fingerprint::hash);
    ClientInfo {
        ip: client_ip(&parts.headers, peer, &config.trusted_proxies),
        user_agent: user_agent(&parts.headers),
        fingerprint,
    }
}

/// `ClientInfo` as an extractor; never fails.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppContext> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_info(parts, &ctx.config)))
    }
}

/// Where the session check leaves a rotated token for the edge layer (`http::edge`) to send.
#[derive(Clone, Default)]
pub struct RotatedToken(Arc<Mutex<Option<SecretString>>>);

impl RotatedToken {
    fn put(&self, token: SecretString) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    pub fn take(&self) -> Option<SecretString> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The request's session, checked once per request: `None` without a cookie or with one that
/// is no longer valid. A rotated token is handed to the response through `RotatedToken`.
async fn session_of(
    parts: &mut Parts,
    ctx: &AppContext,
) -> Result<Option<Authenticated>, ApiError> {
    if let Some(auth) = parts.extensions.get::<Authenticated>() {
        return Ok(Some(auth.clone()));
    }
    let Some(token) = cookies::session_token(&parts.headers, &ctx.config) else {
        return Ok(None);
    };
    let client = client_info(parts, &ctx.config);
    let auth = match sessions::authenticate(ctx, token, &client, ctx.now()).await {
        Ok(auth) => auth,
        Err(Error::Unauthenticated) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    if let (Some(token), Some(slot)) =
        (auth.rotated.clone(), parts.extensions.get::<RotatedToken>())
    {
        slot.put(token);
    }
    parts.extensions.insert(auth.clone());
    Ok(Some(auth))
}

/// What an account pending deletion may still reach (and `/logout`, which needs no session).
const PENDING_DELETION_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/me"),
    (Method::GET, "/me/delete/status"),
    (Method::POST, "/me/delete/cancel"),
];

/// A signed-in user's session (cookie only); 401 without a valid one. A login that still waits
/// for its second factor is not signed in yet, and an API key never opens these routes.
pub struct CurrentSession(pub Authenticated);

impl FromRequestParts<AppContext> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        match session_of(parts, ctx).await? {
            Some(auth) if auth.session.state == sessions::PENDING_2FA => Err(Error::forbidden(
                "second_factor_required",
                "finish signing in first: POST /login/2fa with {\"code\"} or {\"recoveryCode\"}",
            )
            .into()),
            Some(auth)
                if auth.user.deletion_due_at.is_some()
                    && !PENDING_DELETION_ROUTES
                        .iter()
                        .any(|(method, path)| parts.method == method && parts.uri.path() == *path) =>
            {
                Err(Error::forbidden(
                    "account_pending_deletion",
                    "this account is scheduled for deletion: only /me, /me/delete/status, /me/delete/cancel and /logout work until you cancel",
                )
                .into())
            }
            Some(auth) => Ok(Self(auth)),
            None if bearer(&parts.headers).is_some() => Err(Error::forbidden(
                "api_key_not_allowed",
                "API keys cannot be used here; sign in with a session",
            )
            .into()),
            None => Err(Error::Unauthenticated.into()),
        }
    }
}

/// A login waiting for its second factor.
pub struct PendingSession(pub Authenticated);

impl FromRequestParts<AppContext> for PendingSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        session_of(parts, ctx)
            .await?
            .map(Self)
            .ok_or_else(|| Error::Unauthenticated.into())
    }
}

/// The session in any state (a login waiting for its second factor too), if there is one.
pub struct AnySession(pub Option<Authenticated>);

impl FromRequestParts<AppContext> for AnySession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(session_of(parts, ctx).await?))
    }
}

/// The session if there is a valid one; for routes that also serve anonymous callers.
pub struct MaybeSession(pub Option<Authenticated>);

impl FromRequestParts<AppContext> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            session_of(parts, ctx)
                .await?
                .filter(|a| a.session.state == sessions::ACTIVE),
        ))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Who is calling an ordinary API route: a signed-in session, or an API key
/// (`Authorization: Bearer authctl_…`) acting for its user.
pub struct Caller {
    pub user: crate::entity::user::Model,
    /// `None` when an API key is calling.
    pub session: Option<Authenticated>,
}

impl FromRequestParts<AppContext> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        if cookies::session_token(&parts.headers, &ctx.config).is_none()
            && let Some(key) = bearer(&parts.headers)
        {
            let user = crate::service::api_keys::authenticate(ctx, key, ctx.now()).await?;
            return Ok(Self {
                user,
                session: None,
            });
        }
        let CurrentSession(auth) = CurrentSession::from_request_parts(parts, ctx).await?;
        Ok(Self {
            user: auth.user.clone(),
            session: Some(auth),
        })
    }
}

/// A session whose user has verified their address; 403 `email_not_verified` otherwise.
pub struct VerifiedSession(pub Authenticated);

impl FromRequestParts<AppContext> for VerifiedSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        let CurrentSession(auth) = CurrentSession::from_request_parts(parts, ctx).await?;
        if auth.user.email_verified_at.is_none() {
            return Err(Error::forbidden(
                "email_not_verified",
                "verify your email address first: open the link we sent you, or ask for a new one at POST /verify-email/resend",
            )
            .into());
        }
        Ok(Self(auth))
    }
}

/// The guard of every sensitive route. The checks run in this order, each with its own answer:
/// signed in (401) → not restricted: not pending deletion (403 `account_pending_deletion`,
/// checked by `CurrentSession`), address verified (403 `email_not_verified`) → a recent
/// authentication within `step_up.window` (403 `reauthentication_required`). What the action
/// itself allows is checked after, by the service.
pub struct RecentAuth(pub Authenticated);

impl FromRequestParts<AppContext> for RecentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &AppContext,
    ) -> Result<Self, Self::Rejection> {
        let VerifiedSession(auth) = VerifiedSession::from_request_parts(parts, ctx).await?;
        if crate::service::step_up::window_until(&auth.session, &ctx.config, ctx.now()).is_none() {
            return Err(Error::forbidden(
                "reauthentication_required",
                "Re-authentication required",
            )
            .into());
        }
        Ok(Self(auth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(client_ip(&headers("1.2.3.4"), Some(peer), &[]), Some(peer));
    }

    #[test]
    fn forwarded_for_is_used_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        let got = client_ip(
            &headers("6.6.6.6, 198.51.100.7, 10.0.0.3"),
            Some(proxy),
            &trusted,
        );
        assert_eq!(got, Some("198.51.100.7".parse().expect("ip")));
    }
}
