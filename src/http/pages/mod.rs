//! The pages people see: sign-in (and its second step), sign-up, forgotten password, every
//! mailed link, and the security settings. Rendered on the server from askama templates
//! compiled into the binary (`templates/`), one stylesheet and one script (the WebAuthn
//! ceremonies) embedded too. Forms post to handlers here that call the same service functions the
//! JSON API calls: no rule exists twice.
use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::context::AppContext;
use crate::error::Error;

use super::error::ApiError;
use super::extract::ApiBytes;

pub mod links;
mod security;
mod sign_in;

/// The policy of every page: scripts and styles from this site only, no inline code, forms post
/// here only, never framed.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("../../../assets/web/style.css");
const SCRIPT: &str = include_str!("../../../assets/web/webauthn.js");

/// The routes of the pages (not in the OpenAPI document: they answer HTML to browsers).
pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/", get(home))
        .route("/assets/style.css", get(style))
        .route("/assets/webauthn.js", get(script))
        .merge(sign_in::routes())
        .merge(links::routes())
        .merge(security::routes())
}

/// What every page's frame shows.
pub struct Layout {
    pub site: String,
    pub signed_in_as: Option<String>,
    pub error: Option<String>,
    pub notice: Option<String>,
    /// The page runs passkey ceremonies (loads the one script).
    pub script: bool,
}

impl Layout {
    pub fn new(config: &Config) -> Self {
        Self {
            site: config
                .webauthn
                .rp_name
                .clone()
                .unwrap_or_else(|| config.public_url.host_str().unwrap_or("authctl").to_owned()),
            signed_in_as: None,
            error: None,
            notice: None,
            script: false,
        }
    }

    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.error = Some(message.into());
        self
    }

    pub fn notice(mut self, message: impl Into<String>) -> Self {
        self.notice = Some(message.into());
        self
    }

    pub fn user(mut self, email: &str) -> Self {
        self.signed_in_as = Some(email.to_owned());
        self
    }

    pub fn with_script(mut self) -> Self {
        self.script = true;
        self
    }
}

/// A rendered page with `status`, the page policy and no caching.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred",
            )
            .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub layout: Layout,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub link: Option<(String, String)>,
}

/// A page that says something happened, or did not, in words, with what to do next.
pub fn message(
    ctx: &AppContext,
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    link: Option<(&str, &str)>,
) -> Response {
    render(
        status,
        &Message {
            layout: Layout::new(&ctx.config),
            title: title.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            link: link.map(|(h, l)| (h.to_owned(), l.to_owned())),
        },
    )
}

/// A refusal from the service, as a page: the status it maps to and its sentence.
pub fn refusal(ctx: &AppContext, e: Error, link: Option<(&str, &str)>) -> Response {
    let api = ApiError::from(e);
    let title = match api.status {
        StatusCode::GONE => "This link no longer works",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::SERVICE_UNAVAILABLE => "Try again in a moment",
        _ => "That did not work",
    };
    message(ctx, api.status, title, &[&capitalised(&api.message)], link)
}

/// The service's sentences start in lower case (they are also JSON messages); a page starts
/// them with a capital.
pub fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A 303 to `location` (after a form post: the browser then GETs it).
pub fn see_other(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response()
}

/// A 303 to `location` that also sets `cookie`.
pub fn see_other_with(location: &str, cookie: HeaderValue) -> Response {
    let mut response = see_other(location);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// A form body (`application/x-www-form-urlencoded`). A body that does not parse is a page
/// that says so, not JSON.
pub struct PageForm<T>(pub T);

impl<T> FromRequest<AppContext> for PageForm<T>
where
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        let ours = ctx.config.public_url.origin().ascii_serialization();
        if !same_origin(req.headers(), &ours) {
            return Err(message(
                ctx,
                StatusCode::FORBIDDEN,
                "That did not work",
                &["This form was sent from another site and was refused."],
                Some(("/", "Go to the start page")),
            ));
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, ctx)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes::<T>(&bytes)
            .map(Self)
            .map_err(|_| {
                message(
                    ctx,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "That did not work",
                    &["The form was incomplete. Go back and fill in every field."],
                    Some(("/", "Go to the start page")),
                )
            })
    }
}

/// Whether a form post comes from this site (see [`super::from_another_site`]). A post from
/// another site is refused even without a session: that would be login CSRF (signing the victim
/// into the attacker's account). Clients that send neither header (scripts) are not browsers.
fn same_origin(headers: &HeaderMap, ours: &str) -> bool {
    !super::from_another_site(headers, ours)
}

/// Where a browser may be sent after signing in: a plain path on this site, or a URL on an
/// origin in `web.allowed_redirect_origins`; anything else goes to the security page.
pub fn next_target(config: &Config, raw: Option<&str>) -> String {
    const DEFAULT: &str = "/account/security";
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return DEFAULT.into();
    };
    if raw.starts_with('/') {
        return crate::service::saml::safe_target(Some(raw))
            .ok()
            .filter(|t| t != "/")
            .unwrap_or_else(|| DEFAULT.into());
    }
    match url::Url::parse(raw) {
        Ok(url) if config.may_return_to(&url) => url.to_string(),
        _ => DEFAULT.into(),
    }
}

/// `/`: the security page when signed in, the code page while a login waits for its second
/// factor (an SSO or magic-link login lands here), else the sign-in page.
async fn home(super::extract::AnySession(session): super::extract::AnySession) -> Response {
    match session {
        Some(auth) if auth.session.state == crate::service::sessions::PENDING_2FA => {
            see_other("/sign-in/code")
        }
        Some(_) => see_other("/account/security"),
        None => see_other("/sign-in"),
    }
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
