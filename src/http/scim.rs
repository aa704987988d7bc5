//! The SCIM 2.0 front door at `/scim/v2` (RFC 7644): discovery, Users, Groups and searches
//! for the SCIM client of a SAML provider, authenticated by its bearer token. Bodies are
//! `application/scim+json` (or `application/json`) both ways; every refusal, unknown paths and
//! methods included, is a SCIM Error (`urn:ietf:params:scim:api:messages:2.0:Error`).
//!
//! Not part of the OpenAPI document: SCIM describes itself (`/ServiceProviderConfig`,
//! `/ResourceTypes`, `/Schemas`).
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::context::AppContext;
use crate::service::scim::{self, Query, ScimError, Tenant, groups, schema, users};
use crate::service::throttle;

use super::error::ApiError;

const SCIM_JSON: &str = "application/scim+json";

/// The routes under `/scim/v2`.
pub fn routes(ctx: &AppContext) -> Router<AppContext> {
    let resource = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_all))
        .route("/Bulk", axum::routing::any(not_implemented))
        .route("/Me", axum::routing::any(not_implemented))
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(ctx.config.scim.body_limit));
    Router::new().nest("/scim/v2", resource)
}

/// A SCIM answer: a status, a JSON body in the SCIM media type, and headers.
struct Scim {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Scim {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// A single resource, with its `ETag` (and `Location` when created).
    fn resource(status: StatusCode, body: Value) -> Self {
        let mut headers = Vec::new();
        if let Some(v) = scim::version_of(&body).and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.push((header::ETAG, v));
        }
        if status == StatusCode::CREATED
            && let Some(l) = body
                .pointer("/meta/location")
                .and_then(Value::as_str)
                .and_then(|l| HeaderValue::from_str(l).ok())
        {
            headers.push((header::LOCATION, l));
        }
        Self {
            status,
            body: Some(body),
            headers,
        }
    }
}

impl IntoResponse for Scim {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (
                self.status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
                body.to_string(),
            )
                .into_response(),
            None => self.status.into_response(),
        };
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// A SCIM Error response.
struct Failure(ScimError);

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Self {
        Self(e)
    }
}

impl From<crate::error::Error> for Failure {
    fn from(e: crate::error::Error) -> Self {
        Self(ScimError::Service(e))
    }
}

fn error_body(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Value {
    let mut body = json!({
        "schemas": [schema::ERROR],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    body
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, scim_type, detail, retry_after) = match self.0 {
            ScimError::Scim {
                status,
                scim_type,
                detail,
            } => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                scim_type,
                detail,
                None,
            ),
            ScimError::Service(e) => {
                let api = ApiError::from(e);
                (api.status, None, api.message, api.retry_after)
            }
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
            error_body(status, scim_type, &detail).to_string(),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}

type Answer = Result<Scim, Failure>;

fn failure(status: StatusCode, detail: &str) -> Failure {
    Failure(ScimError::Scim {
        status: status.as_u16(),
        scim_type: None,
        detail: detail.to_owned(),
    })
}

async fn unknown_path() -> Failure {
    failure(StatusCode::NOT_FOUND, "no such SCIM endpoint")
}

async fn method_not_allowed() -> Failure {
    failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "this SCIM endpoint does not accept that method",
    )
}

async fn not_implemented() -> Failure {
    failure(
        StatusCode::NOT_IMPLEMENTED,
        "bulk operations and /Me are not supported",
    )
}

/// The client's provider, from its bearer token; each token is held to
/// `scim.requests_per_minute`.
async fn tenant(ctx: &AppContext, headers: &HeaderMap) -> Result<Tenant, Failure> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let Some(token) = token else {
        return Err(failure(
            StatusCode::UNAUTHORIZED,
            "send the provider's SCIM token as Authorization: Bearer",
        ));
    };
    let now = ctx.now();
    let (row, provider) = match scim::tokens::authenticate(ctx, token, now).await {
        Ok(found) => found,
        Err(crate::error::Error::Unauthenticated) => {
            return Err(failure(
                StatusCode::UNAUTHORIZED,
                "the SCIM token is not valid (revoked, or never issued)",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    throttle::per_minute(
        &ctx.db,
        format!("scim-token:{}", row.id),
        ctx.config.scim.requests_per_minute,
        now,
    )
    .await?;
    Ok(Tenant::load(ctx, &ctx.read, provider).await?)
}

/// A request body: JSON, sent as `application/scim+json` or `application/json`.
fn body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, Failure> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence != SCIM_JSON && essence != "application/json" {
            return Err(failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as application/scim+json",
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Failure(ScimError::invalid_syntax(format!(
            "the body is not valid JSON: {e}"
        )))
    })
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// `304 Not Modified` when `If-None-Match` names the resource's version.
fn unchanged(headers: &HeaderMap, resource: &Value) -> bool {
    let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let current = scim::version_of(resource).unwrap_or_default();
    tags.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == current.trim_start_matches("W/"))
}

fn single(
    headers: &HeaderMap,
    resource: Value,
    query: &Query,
    rs: &schema::ResourceSchema,
) -> Scim {
    if unchanged(headers, &resource) {
        return Scim {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            headers: Vec::new(),
        };
    }
    let shown = scim::project(
        resource.clone(),
        query.attributes.as_deref(),
        query.excluded_attributes.as_deref(),
        rs,
    );
    let mut answer = Scim::resource(StatusCode::OK, resource);
    answer.body = Some(shown);
    answer
}

/// The query parameters of a list or read (RFC 7644 §3.4.2).
fn query(raw: Option<String>) -> Result<Query, Failure> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| Failure(ScimError::invalid_value("the query string is not valid")))?;
    let mut q = Query::default();
    let number = |name: &str, v: &str| -> Result<i64, Failure> {
        v.trim().parse::<i64>().map_err(|_| {
            Failure(ScimError::invalid_value(format!(
                "{name} must be a whole number, not `{v}`"
            )))
        })
    };
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "filter" => q.filter = Some(v),
            "startindex" => q.start_index = Some(number("startIndex", &v)?),
            "count" => q.count = Some(number("count", &v)?),
            "attributes" => q.attributes = Some(v),
            "excludedattributes" => q.excluded_attributes = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

/// The parameters of a `POST .search` body (RFC 7644 §3.4.3).
fn search_query(body: &Value) -> Result<Query, Failure> {
    let list = |key: &str| -> Result<Option<String>, Failure> {
        match scim::filter::get_ci(body, key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => Err(Failure(ScimError::invalid_value(format!(
                "{key} is a list of attribute names"
            )))),
        }
    };
    let number = |key: &str| -> Result<Option<i64>, Failure> {
        match scim::filter::get_ci(body, key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                Failure(ScimError::invalid_value(format!("{key} is a whole number")))
            }),
        }
    };
    Ok(Query {
        filter: match scim::filter::get_ci(body, "filter") {
            None | Some(Value::Null) => None,
            Some(Value::String(f)) => Some(f.clone()),
            Some(_) => return Err(Failure(ScimError::invalid_filter("filter is a string"))),
        },
        start_index: number("startIndex")?,
        count: number("count")?,
        attributes: list("attributes")?,
        excluded_attributes: list("excludedAttributes")?,
    })
}

async fn service_provider_config(State(ctx): State<AppContext>) -> Answer {
    Ok(Scim::ok(scim::service_provider_config(&ctx)))
}

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn resource_types(State(ctx): State<AppContext>) -> Answer {
    Ok(Scim::ok(list_of(scim::resource_types(&ctx))))
}

async fn resource_type(State(ctx): State<AppContext>, Path(id): Path<String>) -> Answer {
    scim::resource_types(&ctx)
        .into_iter()
        .find(|r| r["id"] == json!(id))
        .map(Scim::ok)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "no such resource type"))
}

async fn schemas(State(ctx): State<AppContext>) -> Answer {
    Ok(Scim::ok(list_of(schema::schemas(&scim::base_url(&ctx)))))
}

async fn schema_by_id(State(ctx): State<AppContext>, Path(id): Path<String>) -> Answer {
    schema::schemas(&scim::base_url(&ctx))
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&id))
        })
        .map(Scim::ok)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "no such schema"))
}

async fn list_users(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = query(raw)?;
    Ok(Scim::ok(users::list(&ctx, &t, &q).await?))
}

async fn search_users(State(ctx): State<AppContext>, headers: HeaderMap, bytes: Bytes) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = search_query(&body(&headers, &bytes)?)?;
    Ok(Scim::ok(users::list(&ctx, &t, &q).await?))
}

async fn create_user(State(ctx): State<AppContext>, headers: HeaderMap, bytes: Bytes) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let created = users::create(&ctx, &t, &body, ctx.now()).await?;
    Ok(Scim::resource(StatusCode::CREATED, created))
}

async fn get_user(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = query(raw)?;
    let found = users::get(&ctx, &t, &id).await?;
    Ok(single(&headers, found, &q, &schema::USER_SCHEMA))
}

async fn put_user(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let changed = users::update(
        &ctx,
        &t,
        &id,
        users::Change::Replace(&body),
        if_match(&headers),
        ctx.now(),
    )
    .await?;
    Ok(Scim::resource(StatusCode::OK, changed))
}

async fn patch_user(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let changed = users::update(
        &ctx,
        &t,
        &id,
        users::Change::Patch(&body),
        if_match(&headers),
        ctx.now(),
    )
    .await?;
    Ok(Scim::resource(StatusCode::OK, changed))
}

async fn delete_user(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    users::delete(&ctx, &t, &id, if_match(&headers), ctx.now()).await?;
    Ok(Scim {
        status: StatusCode::NO_CONTENT,
        body: None,
        headers: Vec::new(),
    })
}

async fn list_groups(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = query(raw)?;
    Ok(Scim::ok(groups::list(&ctx, &t, &q).await?))
}

async fn search_groups(State(ctx): State<AppContext>, headers: HeaderMap, bytes: Bytes) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = search_query(&body(&headers, &bytes)?)?;
    Ok(Scim::ok(groups::list(&ctx, &t, &q).await?))
}

async fn create_group(State(ctx): State<AppContext>, headers: HeaderMap, bytes: Bytes) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let created = groups::create(&ctx, &t, &body, ctx.now()).await?;
    Ok(Scim::resource(StatusCode::CREATED, created))
}

async fn get_group(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = query(raw)?;
    let found = groups::get(&ctx, &t, &id).await?;
    Ok(single(&headers, found, &q, &schema::GROUP_SCHEMA))
}

async fn put_group(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let changed = groups::update(
        &ctx,
        &t,
        &id,
        users::Change::Replace(&body),
        if_match(&headers),
        ctx.now(),
    )
    .await?;
    Ok(Scim::resource(StatusCode::OK, changed))
}

async fn patch_group(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let body = body(&headers, &bytes)?;
    let changed = groups::update(
        &ctx,
        &t,
        &id,
        users::Change::Patch(&body),
        if_match(&headers),
        ctx.now(),
    )
    .await?;
    Ok(Scim::resource(StatusCode::OK, changed))
}

async fn delete_group(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    groups::delete(&ctx, &t, &id, if_match(&headers), ctx.now()).await?;
    Ok(Scim {
        status: StatusCode::NO_CONTENT,
        body: None,
        headers: Vec::new(),
    })
}

/// `POST /.search`: Users and Groups together (RFC 7644 §3.4.3).
async fn search_all(State(ctx): State<AppContext>, headers: HeaderMap, bytes: Bytes) -> Answer {
    let t = tenant(&ctx, &headers).await?;
    let q = search_query(&body(&headers, &bytes)?)?;
    Ok(Scim::ok(scim::search(&ctx, &t, &q).await?))
}
