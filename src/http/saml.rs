//! SAML single sign-on: domain lookup, starting a login, the Assertion Consumer Service and our
//! SP metadata.
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::AppContext;
use crate::service::saml;

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Client, MaybeSession};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The address someone is about to sign in with.
    email: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    /// Whether the address's domain signs in through a SAML provider.
    sso: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
    /// Where to send the browser to sign in (when `sso`).
    #[serde(skip_serializing_if = "Option::is_none")]
    login_url: Option<String>,
}

/// Is this address's domain served by single sign-on? (For a login page deciding between a
/// password field and an SSO button.)
#[utoipa::path(get, path = "/sso/lookup", tag = "sso", params(LookupQuery),
    responses(
        (status = 200, body = LookupResponse),
        (status = 422, description = "Not an e-mail address", body = ErrorBody),
    ))]
pub async fn lookup(
    State(ctx): State<AppContext>,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Json<LookupResponse>, ApiError> {
    let provider = saml::lookup(&ctx, &q.email).await?;
    let login_url = provider.as_ref().map(|_| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("email", q.email.trim())
            .finish();
        format!("{}/sso/login?{query}", ctx.config.public_base())
    });
    Ok(Json(LookupResponse {
        sso: provider.is_some(),
        provider,
        login_url,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// Pick the provider by the address's domain...
    email: Option<String>,
    /// ...or by its name.
    provider: Option<String>,
    /// A path on this site to land on after the login (default `/`).
    redirect: Option<String>,
    /// `true`: the signed-in SSO user re-authenticates at the IdP for step-up.
    #[serde(default, rename = "stepUp")]
    #[param(rename = "stepUp")]
    step_up: bool,
}

/// Start an SSO login: redirects to the identity provider with a signed AuthnRequest
/// (HTTP-Redirect binding) and sets a short-lived cookie binding the request to this browser.
#[utoipa::path(get, path = "/sso/login", tag = "sso", params(LoginQuery),
    responses(
        (status = 302, description = "To the IdP's SSO URL with `SAMLRequest`, `SigAlg` and `Signature`"),
        (status = 401, description = "`stepUp=true` without a session", body = ErrorBody),
        (status = 403, description = "`stepUp=true` from another site (`cross_site_request`) or for an account with an authenticator app (`second_factor_required`)", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 422, description = "`no_sso_identity` for step-up; no provider serves the address's domain, or a bad redirect target", body = ErrorBody),
        (status = 429, description = "Too many logins started from this address", body = ErrorBody),
    ))]
pub async fn start(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LoginQuery>,
) -> Result<Response, ApiError> {
    let binding = cookies::named(&headers, cookies::saml_cookie_name(&ctx.config));
    let started = if q.step_up {
        let auth = session.ok_or(crate::error::Error::Unauthenticated)?;
        // Only this site's own pages may send a signed-in user to re-authenticate.
        let from_elsewhere = matches!(
            headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
            Some("cross-site") | Some("same-site")
        );
        if from_elsewhere {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "a step-up can only be started from this site",
            ));
        }
        saml::start_step_up(
            &ctx,
            &auth,
            q.redirect.as_deref(),
            binding,
            &client,
            ctx.now(),
        )
        .await?
    } else {
        saml::start(
            &ctx,
            q.email.as_deref(),
            q.provider.as_deref(),
            q.redirect.as_deref(),
            binding,
            &client,
            ctx.now(),
        )
        .await?
    };
    let location = HeaderValue::from_str(started.redirect.as_str())
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "bad IdP URL"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                cookies::set_saml_binding(&ctx.config, &started.binding, started.ttl.as_secs()),
            ),
        ],
    )
        .into_response())
}

/// The IdP's answer (HTTP-POST binding): on success a session with method `sso` starts and the
/// browser goes to the target stored when the login started. `RelayState` is ignored.
#[utoipa::path(post, path = "/saml/{provider}/acs", tag = "sso",
    params(("provider" = String, Path, description = "The provider's name")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "`SAMLResponse` (base64) and optionally `RelayState`"),
    responses(
        (status = 303, description = "Signed in: the session cookie is set, `Location` is the stored target"),
        (status = 401, description = "`sso_failed`: the response was refused (the reason is in the audit log)", body = ErrorBody),
        (status = 413, description = "`sso_failed`: the body is too large", body = ErrorBody),
    ))]
pub async fn acs(
    State(ctx): State<AppContext>,
    Client(client): Client,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = ctx.now();
    // Base64 grows by a third; the form encoding adds a little more.
    let limit = ctx.config.saml.max_response_bytes / 3 * 4 * 11 / 10 + 4096;
    let binding = cookies::named(&headers, cookies::saml_cookie_name(&ctx.config));
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let refused = saml::refused(&ctx, &provider, "too_large", None, &client, now).await?;
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..ApiError::from(refused)
        });
    };
    let saml_response = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    // The binding cookie stays either way: other tabs may have logins of their own pending.
    let done = saml::complete(&ctx, &provider, &saml_response, binding, &client, now).await?;
    // A login that still needs the account's second factor says so to the page it lands on,
    // which asks for the code (`POST /login/2fa`).
    let target = if done.two_factor_required {
        let sep = if done.target.contains('?') { '&' } else { '?' };
        format!("{}{sep}twoFactorRequired=true", done.target)
    } else {
        done.target.clone()
    };
    let location = HeaderValue::from_str(&target).unwrap_or(HeaderValue::from_static("/"));
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                cookies::set_session(&ctx.config, &done.session.token),
            ),
        ],
    )
        .into_response())
}

/// Our SP metadata for one provider, for the IdP administrator.
#[utoipa::path(get, path = "/saml/{provider}/metadata", tag = "sso",
    params(("provider" = String, Path, description = "The provider's name")),
    responses(
        (status = 200, description = "SAML 2.0 metadata (EntityDescriptor with SPSSODescriptor)", content_type = "application/samlmetadata+xml"),
        (status = 404, description = "No such provider", body = ErrorBody),
    ))]
pub async fn metadata(
    State(ctx): State<AppContext>,
    ApiPath(provider): ApiPath<String>,
) -> Result<Response, ApiError> {
    let xml = saml::sp_metadata(&ctx, &provider).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        xml,
    )
        .into_response())
}
