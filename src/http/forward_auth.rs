//! `GET /auth/verify`: the session check for reverse proxies (nginx `auth_request`, Traefik
//! ForwardAuth, Caddy `forward_auth`). The proxy sends the browser's cookies (or an API key);
//! a valid caller gets 200 with who it is in headers, which the proxy hands to the app.
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::context::AppContext;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, Caller};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Where the browser was going (an absolute URL on `public_url`'s origin or one of
    /// `web.allowed_redirect_origins`): without a valid session it is sent to sign in and back.
    rd: Option<String>,
}

const USER_ID: HeaderName = HeaderName::from_static("x-authctl-user-id");
const EMAIL: HeaderName = HeaderName::from_static("x-authctl-email");
const ROLES: HeaderName = HeaderName::from_static("x-authctl-roles");

/// Check the caller for a reverse proxy: 200 with `X-Authctl-User-Id`, `X-Authctl-Email` and
/// `X-Authctl-Roles` (comma-separated) for a valid session or API key; otherwise 401, or, when
/// the request says where the browser was going (`?rd=`, or the proxy's `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `X-Forwarded-Uri`) and that is on an allowed origin, a 302 to the
/// sign-in page that returns there.
#[utoipa::path(get, path = "/auth/verify", tag = "sessions", params(VerifyQuery),
    responses(
        (status = 200, description = "Signed in; who it is in `X-Authctl-User-Id`, `X-Authctl-Email`, `X-Authctl-Roles`"),
        (status = 302, description = "Not signed in and the return URL is allowed: to `/sign-in?next=<return URL>`"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "`second_factor_required` or `account_pending_deletion`", body = ErrorBody),
    ))]
pub async fn verify(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<VerifyQuery>,
    caller: Result<Caller, ApiError>,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(refused) => {
            return match return_url(&ctx, &headers, query.rd.as_deref()) {
                Some(url) => {
                    let next =
                        url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>();
                    let location = format!("{}/sign-in?next={next}", ctx.config.public_base());
                    match HeaderValue::from_str(&location) {
                        Ok(location) => {
                            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
                        }
                        Err(_) => refused.into_response(),
                    }
                }
                None => refused.into_response(),
            };
        }
    };
    let roles = match caller.session.as_ref().and_then(|s| s.roles.clone()) {
        Some(roles) => roles,
        None => match crate::service::roles::roles_of(&ctx.read, &caller.user.id).await {
            Ok(roles) => roles,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    for (name, value) in [
        (USER_ID, caller.user.id.as_str()),
        (EMAIL, caller.user.email.as_str()),
        (ROLES, &roles.join(",")),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(name, value);
        }
    }
    response
}

/// The URL the browser was going to, when it is on an origin a sign-in may return to.
fn return_url(ctx: &AppContext, headers: &HeaderMap, rd: Option<&str>) -> Option<String> {
    let forwarded = || {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host = get("x-forwarded-host")?;
        let proto = get("x-forwarded-proto").unwrap_or("https");
        let uri = get("x-forwarded-uri").unwrap_or("/");
        Some(format!("{proto}://{host}{uri}"))
    };
    let raw = rd.map(str::to_owned).or_else(forwarded)?;
    let url = url::Url::parse(&raw).ok()?;
    ctx.config.may_return_to(&url).then(|| url.to_string())
}
