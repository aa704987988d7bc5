//! The HTTP front door: thin axum handlers over `service`, plus the middleware every response gets.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::AppContext;

pub mod account;
pub mod api_keys;
pub mod auth;
pub mod cookies;
pub mod deletion;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod health;
pub mod magic_link;
pub mod me;
pub mod metrics;
pub mod page;
pub mod pages;
pub mod passkeys;
pub mod saml;
pub mod scim;
pub mod sessions;
pub mod step_up;
pub mod two_factor;
pub mod verification;

use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "authctl", description = "Authentication service: accounts, email verification, device sessions and login history, step-up, two-factor authentication, email and password changes, API keys, account deletion, SAML single sign-on, magic links and passkeys (WebAuthn)."),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "accounts"), (name = "sessions"), (name = "verification"), (name = "step-up"),
        (name = "two-factor"), (name = "account"), (name = "api-keys"), (name = "deletion"),
        (name = "sso"), (name = "passkeys"), (name = "operations"),
    )
)]
struct ApiDoc;

/// The OpenAPI document, served at `/openapi.json`.
#[derive(Clone)]
struct Spec(Arc<String>);

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(axum::Extension(spec): axum::Extension<Spec>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.0.as_str().to_owned(),
    )
        .into_response()
}

/// The routes and their OpenAPI document, built from the same list so neither can miss a route.
pub fn routes() -> (Router<AppContext>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::login_second_factor))
        .routes(routes!(magic_link::request))
        .routes(routes!(magic_link::page, magic_link::use_link))
        .routes(routes!(magic_link::confirm))
        .routes(routes!(passkeys::login_start))
        .routes(routes!(passkeys::login_finish))
        .routes(routes!(auth::logout))
        .routes(routes!(forward_auth::verify))
        .routes(routes!(step_up::confirm))
        .routes(routes!(passkeys::confirm_start))
        .routes(routes!(passkeys::confirm_finish))
        .routes(routes!(two_factor::setup))
        .routes(routes!(two_factor::enable))
        .routes(routes!(two_factor::disable))
        .routes(routes!(two_factor::regenerate))
        .routes(routes!(account::change_email))
        .routes(routes!(account::confirm_email_change))
        .routes(routes!(account::cancel_pending_email))
        .routes(routes!(
            account::cancel_email_change_page,
            account::cancel_email_change
        ))
        .routes(routes!(account::change_password))
        .routes(routes!(account::request_reset))
        .routes(routes!(account::confirm_reset))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::rename, passkeys::remove))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(deletion::request))
        .routes(routes!(deletion::status))
        .routes(routes!(deletion::cancel))
        .routes(routes!(me::get_me, me::update_me))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(sessions::revoke_others))
        .routes(routes!(sessions::login_history))
        .routes(routes!(saml::lookup))
        .routes(routes!(saml::start))
        .routes(routes!(saml::acs))
        .routes(routes!(saml::metadata))
        .routes(routes!(verification::verify_email))
        .routes(routes!(verification::resend))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    complete_responses(&mut api);
    (router, api)
}

/// The answers every route of a kind can give, added to each operation that does not list them
/// already, so the document names every status a route can answer: what the extractors refuse
/// (a body that is not JSON, too large, of the wrong type or shape; a query of the wrong shape),
/// a missing or ended session on the signed-in routes, and a database outage.
fn complete_responses(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{Content, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build()
    };
    for (path, item) in api.paths.paths.iter_mut() {
        let signed_in =
            path.starts_with("/me") || path.starts_with("/auth/confirm") || path == "/login/2fa";
        let operations = [
            (false, &mut item.get),
            (true, &mut item.put),
            (true, &mut item.post),
            (true, &mut item.delete),
            (true, &mut item.patch),
        ];
        for (changes, op) in operations {
            let Some(op) = op else { continue };
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            };
            let body = op.request_body.is_some();
            let query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            if body {
                add("400", "`malformed_json`: the body is not valid JSON");
                add(
                    "413",
                    "`payload_too_large`: the body is over `http.body_limit`",
                );
                add(
                    "415",
                    "`unsupported_media_type`: the body is not sent as JSON",
                );
            }
            if body || query {
                add(
                    "422",
                    "`invalid_request` or `invalid_query`: a field is missing, unknown or of the wrong type",
                );
            }
            if signed_in {
                add("401", "`unauthenticated`: no session, or it has ended");
            }
            // The SAML ACS is posted cross-site by design and never reads the session cookie.
            if changes && !path.ends_with("/acs") {
                add(
                    "403",
                    "`cross_site_request`: sent with the session cookie from another site",
                );
            }
            if path != "/healthz" && path != "/openapi.json" {
                add(
                    "503",
                    "`service_unavailable`: the database cannot be reached; try again",
                );
            }
        }
    }
}

/// The complete application.
pub fn router(ctx: AppContext) -> Router {
    router_with(ctx, metrics::Counters::default())
}

/// `GET /metrics` alone, for the listener at `metrics.bind`.
pub fn metrics_router(ctx: AppContext, counters: metrics::Counters) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(counters))
        .with_state(ctx)
}

fn router_with(ctx: AppContext, counters: metrics::Counters) -> Router {
    let (routes, api) = routes();
    let spec = Spec(Arc::new(
        api.to_pretty_json().unwrap_or_else(|_| "{}".into()),
    ));
    routes
        .merge(pages::routes())
        .merge(scim::routes(&ctx))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(ctx.config.http.body_limit))
        .layer(axum::Extension(spec))
        .layer(axum::Extension(counters.clone()))
        .layer(middleware::from_fn_with_state(
            Edge::new(&ctx, counters),
            edge,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred").into_response()
        }))
        .layer(
            // Spans carry the path only: query strings can hold tokens and never reach the logs.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(ctx)
}

/// What the edge layer needs, built once: a clone per request is one reference count.
#[derive(Clone)]
struct Edge(Arc<EdgeParts>);

struct EdgeParts {
    config: Arc<crate::config::Config>,
    counters: metrics::Counters,
    /// The origin (`https://login.example.com`) same-site requests come from.
    origin: String,
    /// The response headers every answer carries unless its handler set them.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Edge {
    fn new(ctx: &AppContext, counters: metrics::Counters) -> Self {
        let mut headers = vec![
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
        ];
        if ctx.config.is_https() {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                "max-age=31536000; includeSubDomains",
            ));
        }
        Self(Arc::new(EdgeParts {
            config: ctx.config.clone(),
            counters,
            origin: ctx.config.public_url.origin().ascii_serialization(),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name, HeaderValue::from_static(value)))
                .collect(),
        }))
    }
}

/// Every request's own layer, one instead of a stack (each layer of a stack clones its inner
/// service per request): `/metrics` only where `metrics.bind` says, the cross-site guard, the
/// rotated session cookie, the security headers, and the response count by status class.
async fn edge(State(edge): State<Edge>, mut req: Request, next: Next) -> Response {
    let edge = &edge.0;
    let mut response = if edge.config.metrics.bind.is_some() && req.uri().path() == "/metrics" {
        // With `metrics.bind` set, `/metrics` is served there only.
        not_found().await.into_response()
    } else if let Some(refused) = cross_site(&edge.config, &edge.origin, &req) {
        refused
    } else {
        let slot = extract::RotatedToken::default();
        req.extensions_mut().insert(slot.clone());
        let mut response = next.run(req).await;
        cookies::send_rotated(&edge.config, &slot, &mut response);
        response
    };
    let headers = response.headers_mut();
    for (name, value) in &edge.headers {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    edge.counters.record(response.status().as_u16());
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Refuses state-changing requests that carry the session cookie but come from another site
/// (`Sec-Fetch-Site: cross-site`/`same-site`, or an `Origin` other than `public_url`'s).
/// The cross-site guard: a state-changing request that carries the session cookie and comes
/// from another site (by `Sec-Fetch-Site` or `Origin`) is refused.
fn cross_site(config: &crate::config::Config, ours: &str, req: &Request) -> Option<Response> {
    // The IdP posts SAML Responses cross-site by design; they are authenticated by their
    // signature and the request-binding cookie, never by the session cookie.
    let saml_acs = req.uri().path().starts_with("/saml/") && req.uri().path().ends_with("/acs");
    let safe = saml_acs || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || cookies::session_token(req.headers(), config).is_none() {
        return None;
    }
    from_another_site(req.headers(), ours).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "this request came from another site and was refused",
        )
        .into_response()
    })
}

/// Whether a browser says this request was sent by another site. Fetch metadata decides when
/// the browser sends it (every current browser does): `Sec-Fetch-Site: same-origin` is ours even
/// with `Origin: null`, which browsers send on form posts under `Referrer-Policy: no-referrer`.
/// Without it, an `Origin` other than ours (`null` included) is another site.
pub fn from_another_site(headers: &axum::http::HeaderMap, ours: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("cross-site") | Ok("same-site"));
    }
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.trim_end_matches('/') != ours)
}

/// Serves `ctx` on `listener` until `shutdown` completes, then drains open requests. With
/// `metrics.bind` set, `/metrics` is served on a listener of its own there.
pub async fn serve(
    listener: TcpListener,
    ctx: AppContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counters = metrics::Counters::default();
    let app = router_with(ctx.clone(), counters.clone());
    let Some(bind) = ctx.config.metrics.bind else {
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    };
    let metrics_listener = TcpListener::bind(bind).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on metrics.bind {bind}: {e}"),
        )
    })?;
    tracing::info!(address = %bind, "serving /metrics");
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let main = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(rx.clone()));
    let side = axum::serve(metrics_listener, metrics_router(ctx, counters))
        .with_graceful_shutdown(stopped(rx));
    let (a, b) = tokio::join!(
        std::future::IntoFuture::into_future(main),
        std::future::IntoFuture::into_future(side)
    );
    a.and(b)
}
