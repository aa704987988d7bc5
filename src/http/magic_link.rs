//! Magic links: asking for one (`POST /login/magic-link`), the page the mailed link opens
//! (`GET /login/magic`, which changes nothing), and using it (`POST /login/magic` from that
//! page's button, `POST /login/magic-link/confirm` for API clients).
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::magic_link::{self, SignedIn};
use crate::service::users::UserView;

use super::auth::AuthResponse;
use super::cookies::{self, MAGIC_LINK};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Client, JsonOrForm};
use super::page;
use super::verification::AcceptedResponse;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MagicLinkRequest {
    email: String,
}

/// Mail a sign-in link (10 minutes, single use, only in this browser: the binding cookie set
/// now). The same answer whether or not the address has an account.
#[utoipa::path(post, path = "/login/magic-link", tag = "sessions", request_body = MagicLinkRequest,
    responses(
        (status = 202, body = AcceptedResponse),
        (status = 403, description = "`sso_required`: the address's domain signs in at its IdP", body = ErrorBody),
        (status = 422, description = "`invalid_email`", body = ErrorBody),
        (status = 429, description = "Too many requests from this client IP this hour", body = ErrorBody),
    ))]
pub async fn request(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<MagicLinkRequest>,
) -> Result<Response, ApiError> {
    let binding = MAGIC_LINK.read(&headers, &ctx.config);
    let binding = magic_link::request(&ctx, &req.email, binding, &client, ctx.now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            header::SET_COOKIE,
            MAGIC_LINK.set(&ctx.config, &binding, ctx.config.magic_link.ttl),
        )],
        Json(AcceptedResponse::new(
            "if the address belongs to an account, a sign-in link is on its way; open it in this browser",
        )),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// The token from the mailed link.
    token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    valid: bool,
    expires_at: DateTime<Utc>,
}

/// The page the mailed link opens: a "Sign in" button, nothing used or changed (mail scanners
/// and link previews open links). Without `Accept: text/html` it answers JSON.
#[utoipa::path(get, path = "/login/magic", tag = "sessions", params(LinkQuery),
    responses(
        (status = 200, description = "A page whose button posts the token to `POST /login/magic`; JSON: whether the link works", body = LinkStatus),
        (status = 410, description = "`token_used`, `token_expired` or `token_invalid` (replaced by a newer link, or unknown); a page for browsers", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 422, description = "No token, or a malformed one; a page for browsers", content((ErrorBody = "application/json"), (String = "text/html"))),
    ))]
pub async fn page(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LinkQuery>,
) -> Result<Response, ApiError> {
    let html = page::wants_html(&headers);
    let checked = match query.token.as_deref() {
        None => Err(Error::invalid(
            "invalid_token",
            "the link has no token; copy the whole link from the mail",
        )),
        Some(token) => magic_link::check(&ctx, token, ctx.now()).await,
    };
    let row = match checked {
        Ok(row) => row,
        Err(e) if html => return Ok(refused_page(&ctx, e)),
        Err(e) => return Err(e.into()),
    };
    if !html {
        return Ok(Json(LinkStatus {
            valid: true,
            expires_at: row.expires_at,
        })
        .into_response());
    }
    let token = query.token.unwrap_or_default();
    Ok(super::pages::links::action_page(
        &ctx,
        "Sign in",
        &format!("Sign in to your account as {}.", row.email),
        "/login/magic",
        &token,
        "Sign in",
    ))
}

/// A refusal as a page: the message, and what to do next.
fn refused_page(ctx: &AppContext, e: Error) -> Response {
    let api = ApiError::from(e);
    let next = match api.code {
        "magic_link_other_browser" => {
            "For your safety a sign-in link only works in the browser that asked for it. Open the link there, or ask for a new one from this browser."
        }
        "account_disabled" | "sso_required" => "",
        _ => "Go back to the sign-in page and ask for a new link.",
    };
    let message = super::pages::capitalised(&api.message);
    let paragraphs: Vec<&str> = [message.as_str(), next]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    super::pages::message(
        ctx,
        api.status,
        "This link did not work",
        &paragraphs,
        Some(("/sign-in", "Back to sign in")),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MagicConfirmRequest {
    /// The token from the mailed link.
    token: String,
}

/// The page's button: uses the link and signs this browser in, then sends it on (303) to the
/// security page, or to the code page (`/sign-in/code`) when the account's second factor is
/// still due. JSON bodies get the `POST /login/magic-link/confirm` answer.
#[utoipa::path(post, path = "/login/magic", tag = "sessions",
    request_body(content(
        (MagicConfirmRequest = "application/x-www-form-urlencoded"),
        (MagicConfirmRequest = "application/json"),
    )),
    responses(
        (status = 303, description = "Signed in; the session cookie is set"),
        (status = 200, description = "JSON: signed in", body = AuthResponse),
        (status = 403, description = "`magic_link_other_browser` (asked for in another browser: nothing is used), `account_disabled` or `sso_required`; a page for the form", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 410, description = "`token_used`, `token_expired` or `token_invalid`; a page for the form", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 422, description = "A malformed token; a page for the form", content((ErrorBody = "application/json"), (String = "text/html"))),
    ))]
pub async fn use_link(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    JsonOrForm((req, form)): JsonOrForm<MagicConfirmRequest>,
) -> Result<Response, ApiError> {
    // The page's button: a post from another site is refused even without a session (login
    // CSRF), as every page form is.
    let ours = ctx.config.public_url.origin().ascii_serialization();
    if form && super::from_another_site(&headers, &ours) {
        return Ok(super::pages::message(
            &ctx,
            StatusCode::FORBIDDEN,
            "That did not work",
            &["This form was sent from another site and was refused."],
            Some(("/sign-in", "Back to sign in")),
        ));
    }
    let binding = MAGIC_LINK.read(&headers, &ctx.config);
    let done = magic_link::confirm(&ctx, &req.token, binding, &client, ctx.now()).await;
    match (done, form) {
        (Ok(done), false) => Ok(signed_in(&ctx, done)),
        (Err(e), false) => Err(e.into()),
        (Err(e), true) => Ok(refused_page(&ctx, e)),
        (Ok(done), true) => {
            let target = if done.two_factor_required {
                "/sign-in/code"
            } else {
                "/account/security"
            };
            Ok((
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, HeaderValue::from_static(target)),
                    (
                        header::SET_COOKIE,
                        cookies::set_session(&ctx.config, &done.session.token),
                    ),
                ],
            )
                .into_response())
        }
    }
}

fn signed_in(ctx: &AppContext, done: SignedIn) -> Response {
    let body = AuthResponse::new(UserView::from(&done.user), done.two_factor_required);
    (
        [(
            header::SET_COOKIE,
            cookies::set_session(&ctx.config, &done.session.token),
        )],
        Json(body),
    )
        .into_response()
}

/// Use a sign-in link from an API client (in the cookie jar that asked for it): a session, or
/// with `twoFactorRequired` one that only `POST /login/2fa` accepts.
#[utoipa::path(post, path = "/login/magic-link/confirm", tag = "sessions", request_body = MagicConfirmRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = AuthResponse),
        (status = 403, description = "`magic_link_other_browser`, `account_disabled` or `sso_required`", body = ErrorBody),
        (status = 410, description = "`token_used`, `token_expired` or `token_invalid`", body = ErrorBody),
        (status = 422, description = "A malformed token", body = ErrorBody),
    ))]
pub async fn confirm(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<MagicConfirmRequest>,
) -> Result<Response, ApiError> {
    let binding = MAGIC_LINK.read(&headers, &ctx.config);
    let done = magic_link::confirm(&ctx, &req.token, binding, &client, ctx.now()).await?;
    Ok(signed_in(&ctx, done))
}
