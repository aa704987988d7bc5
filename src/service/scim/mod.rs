//! SCIM 2.0 provisioning (RFC 7643/7644) for the IdP of a SAML provider: its client creates,
//! changes and deprovisions the provider's users and groups. A client sees only accounts whose
//! address is in its provider's domains and groups it created ([`Tenant`]); a SCIM user is the
//! same identity an SSO login finds (its `userName` is the SAML NameID it is matched by).
//!
//! - `filter`, `patch`, `schema`: pure code (the filter language, PATCH on a JSON resource, the
//!   schemas and what a client may write);
//! - `tokens`: the store of the clients' bearer tokens;
//! - `users`, `groups`: the flows, which compose the account, session, key, role and deletion
//!   stores and flows.
use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::context::AppContext;
use crate::entity::{saml_domain, saml_provider};
use crate::error::Error;
use crate::service::Actor;

pub mod filter;
pub mod groups;
pub mod patch;
pub mod schema;
pub mod tokens;
pub mod users;

/// A refusal in SCIM's terms (RFC 7644 §3.12): an HTTP status and, for 400s, a `scimType`.
#[derive(Debug)]
pub enum ScimError {
    Scim {
        status: u16,
        scim_type: Option<&'static str>,
        detail: String,
    },
    /// An error of the service layer (not found, throttled, database), mapped as elsewhere.
    Service(Error),
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scim { detail, .. } => f.write_str(detail),
            Self::Service(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for ScimError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput { message, .. } => Self::invalid_value(message),
            Error::Conflict { message, .. } => Self::uniqueness(message),
            other => Self::Service(other),
        }
    }
}

impl From<sea_orm::DbErr> for ScimError {
    fn from(e: sea_orm::DbErr) -> Self {
        if matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            return Self::uniqueness(
                "a resource with that userName, displayName or address already exists",
            );
        }
        Self::Service(e.into())
    }
}

impl ScimError {
    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::Scim {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad("invalidSyntax", detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad("invalidValue", detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad("invalidFilter", detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad("invalidPath", detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad("noTarget", detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad("mutability", detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad("tooMany", detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::Scim {
            status: 409,
            scim_type: Some("uniqueness"),
            detail: detail.into(),
        }
    }
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::Scim {
            status: 404,
            scim_type: None,
            detail: format!("no {what} with id {id}"),
        }
    }
    pub fn precondition() -> Self {
        Self::Scim {
            status: 412,
            scim_type: None,
            detail: "the resource changed since that version (If-Match)".into(),
        }
    }

    /// The `scimType` a 400 or 409 carries.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            Self::Scim { scim_type, .. } => *scim_type,
            Self::Service(_) => None,
        }
    }
}

pub type ScimResult<T> = std::result::Result<T, ScimError>;

/// One SCIM client's view: its provider, the domains it owns, and where its resources live.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub provider: saml_provider::Model,
    /// The provider's e-mail domains, lower-case.
    pub domains: Vec<String>,
    /// `<public_url>/scim/v2`, the base of `meta.location`.
    pub base: String,
}

impl Tenant {
    pub async fn load(
        ctx: &AppContext,
        db: &impl ConnectionTrait,
        provider: saml_provider::Model,
    ) -> crate::error::Result<Self> {
        let domains = saml_domain::Entity::find()
            .filter(saml_domain::Column::ProviderId.eq(provider.id.as_str()))
            .all(db)
            .await?
            .into_iter()
            .map(|d| d.domain)
            .collect();
        Ok(Self {
            provider,
            domains,
            base: base_url(ctx),
        })
    }

    pub fn actor(&self) -> Actor {
        Actor::Scim(self.provider.name.clone())
    }

    /// Whether an (already lower-cased) address is in one of the provider's domains.
    pub fn owns(&self, email: &str) -> bool {
        email
            .rsplit_once('@')
            .is_some_and(|(_, d)| self.domains.iter().any(|o| o == d))
    }

    /// The source of the roles this provider's SCIM groups give.
    pub fn role_source(&self) -> String {
        format!("scim:{}", self.provider.name)
    }
}

/// `<public_url>/scim/v2`.
pub fn base_url(ctx: &AppContext) -> String {
    format!(
        "{}/scim/v2",
        ctx.config.public_url.as_str().trim_end_matches('/')
    )
}

/// `meta` of a resource, with a version that changes whenever its representation does.
pub(crate) fn finish(
    mut resource: Map<String, Value>,
    kind: &str,
    location: String,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
) -> Value {
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": kind,
            "created": stamp(created),
            "lastModified": stamp(modified),
            "location": location,
        }),
    );
    let digest = Sha256::digest(serde_json::to_vec(&resource).unwrap_or_default());
    let version: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    resource["meta"]["version"] = Value::String(format!("W/\"{version}\""));
    Value::Object(resource)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `version` of a finished resource.
pub fn version_of(resource: &Value) -> Option<&str> {
    resource.get("meta")?.get("version")?.as_str()
}

/// Whether an `If-Match` header value allows changing a resource at `current`.
pub fn if_match_allows(header: Option<&str>, current: &str) -> bool {
    let Some(header) = header else { return true };
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == current.trim_start_matches("W/"))
}

/// What a list request asks for (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl Query {
    pub fn parsed_filter(&self) -> ScimResult<Option<filter::Filter>> {
        match self.filter.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => filter::parse(raw)
                .map(Some)
                .map_err(|e| ScimError::invalid_filter(format!("filter `{raw}`: {e}"))),
        }
    }
}

/// Keeps what `attributes` asks for or drops what `excludedAttributes` names (RFC 7644
/// §3.4.2.5); `id` and `schemas` are always returned.
pub fn project(
    resource: Value,
    attributes: Option<&str>,
    excluded: Option<&str>,
    rs: &schema::ResourceSchema,
) -> Value {
    let names = |raw: Option<&str>| -> Vec<filter::Path> {
        raw.unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|s| filter::parse_path(s).ok())
            .collect()
    };
    let Value::Object(mut object) = resource else {
        return resource;
    };
    let place = |p: &filter::Path| -> Option<String> {
        match &p.urn {
            Some(u) if !u.eq_ignore_ascii_case(rs.core) => rs.extension(u).map(str::to_owned),
            _ => None,
        }
    };
    let wanted = names(attributes);
    if !wanted.is_empty() {
        let mut out = Map::new();
        for key in ["schemas", "id"] {
            if let Some(v) = object.remove(key) {
                out.insert(key.into(), v);
            }
        }
        for p in &wanted {
            let (scope_key, attr) = match place(p) {
                Some(ext) => (Some(ext), p.attr.clone()),
                None => (None, p.attr.clone()),
            };
            let source = match &scope_key {
                Some(ext) => object.get(ext).and_then(Value::as_object).cloned(),
                None => Some(object.clone()),
            };
            let Some(source) = source else { continue };
            let Some((k, v)) = source.iter().find(|(k, _)| k.eq_ignore_ascii_case(&attr)) else {
                // An extension attribute named without its URN.
                if scope_key.is_none()
                    && let Some((_, def_ext)) = rs
                        .extensions
                        .iter()
                        .find(|(_, attrs)| schema::find(attrs, &attr).is_some())
                        .map(|(e, _)| ((), *e))
                    && let Some(inner) = object.get(def_ext).and_then(Value::as_object)
                    && let Some((k, v)) = inner.iter().find(|(k, _)| k.eq_ignore_ascii_case(&attr))
                {
                    let slot = out
                        .entry(def_ext.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                    slot[k.as_str()] = v.clone();
                }
                continue;
            };
            let value = match &p.sub {
                None => v.clone(),
                Some(sub) => match v {
                    Value::Object(o) => match o.iter().find(|(sk, _)| sk.eq_ignore_ascii_case(sub))
                    {
                        Some((sk, sv)) => {
                            let mut kept = match out_get(&out, &scope_key, k) {
                                Some(Value::Object(prev)) => prev,
                                _ => Map::new(),
                            };
                            kept.insert(sk.clone(), sv.clone());
                            Value::Object(kept)
                        }
                        None => continue,
                    },
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .filter_map(|item| {
                                let (sk, sv) = item
                                    .as_object()?
                                    .iter()
                                    .find(|(sk, _)| sk.eq_ignore_ascii_case(sub))?;
                                Some(json!({ sk.clone(): sv.clone() }))
                            })
                            .collect(),
                    ),
                    _ => continue,
                },
            };
            match &scope_key {
                Some(ext) => {
                    let slot = out
                        .entry(ext.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    slot[k.as_str()] = value;
                }
                None => {
                    out.insert(k.clone(), value);
                }
            }
        }
        return Value::Object(out);
    }
    for p in names(excluded) {
        if ["id", "schemas"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&p.attr))
            && p.urn.is_none()
        {
            continue;
        }
        let scope: Option<&mut Map<String, Value>> = match place(&p) {
            Some(ext) => object.get_mut(&ext).and_then(Value::as_object_mut),
            None => Some(&mut object),
        };
        let Some(scope) = scope else { continue };
        let Some(key) = scope
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&p.attr))
            .cloned()
        else {
            continue;
        };
        match &p.sub {
            None => {
                scope.remove(&key);
            }
            Some(sub) => match scope.get_mut(&key) {
                Some(Value::Object(o)) => {
                    if let Some(sk) = o.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned() {
                        o.remove(&sk);
                    }
                }
                Some(Value::Array(items)) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        if let Some(sk) = item.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned()
                        {
                            item.remove(&sk);
                        }
                    }
                }
                _ => {}
            },
        }
    }
    Value::Object(object)
}

fn out_get(out: &Map<String, Value>, scope: &Option<String>, key: &str) -> Option<Value> {
    match scope {
        Some(ext) => out.get(ext)?.get(key).cloned(),
        None => out.get(key).cloned(),
    }
}

/// The filter rules of a resource type: its case rules, and extensions found under their URN.
pub struct Rules<'s>(pub &'s schema::ResourceSchema);

impl filter::Rules for Rules<'_> {
    fn case_exact(&self, attr: &str, sub: Option<&str>) -> bool {
        self.0.case_exact(attr, sub)
    }
    fn scope<'r>(&self, resource: &'r Value, urn: &str) -> Option<&'r Value> {
        if urn.eq_ignore_ascii_case(self.0.core) {
            Some(resource)
        } else {
            filter::get_ci(resource, urn)
        }
    }
}

/// Filters, counts and pages finished resources (in their listing order) into a ListResponse.
pub(crate) fn list_response(
    resources: Vec<Value>,
    query: &Query,
    rs: &'static schema::ResourceSchema,
    max_results: u32,
) -> ScimResult<Value> {
    let filter = query.parsed_filter()?;
    let mut kept = Vec::new();
    for r in resources {
        let keep = match &filter {
            None => true,
            Some(f) => filter::matches(f, &r, &Rules(rs))
                .map_err(|e| ScimError::invalid_filter(e.to_string()))?,
        };
        if keep {
            kept.push(r);
        }
    }
    Ok(page(kept, query, rs, max_results))
}

/// One page of filtered resources, projected: a ListResponse (`startIndex` 1-based, `count`
/// cut to `max_results`, `totalResults` of the whole set).
fn page(kept: Vec<Value>, query: &Query, rs: &schema::ResourceSchema, max_results: u32) -> Value {
    paged(kept, query, max_results, |r| {
        project(
            r,
            query.attributes.as_deref(),
            query.excluded_attributes.as_deref(),
            rs,
        )
    })
}

/// A ListResponse of `kept` already projected by `show`.
fn paged(
    kept: Vec<Value>,
    query: &Query,
    max_results: u32,
    show: impl Fn(Value) -> Value,
) -> Value {
    let total = kept.len();
    let start = query.start_index.unwrap_or(1).max(1);
    let count = query
        .count
        .unwrap_or(i64::from(max_results))
        .clamp(0, i64::from(max_results));
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    let page: Vec<Value> = kept
        .into_iter()
        .skip(skip)
        .take(usize::try_from(count).unwrap_or(0))
        .map(show)
        .collect();
    json!({
        "schemas": [schema::LIST],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

/// `POST /.search`: Users and Groups together (RFC 7644 §3.4.3), each filtered and projected
/// with its own type's schema, users first.
pub async fn search(ctx: &AppContext, t: &Tenant, q: &Query) -> ScimResult<Value> {
    let f = q.parsed_filter()?;
    let mut kept = Vec::new();
    let typed = users::all(ctx, t, f.as_ref())
        .await?
        .into_iter()
        .map(|r| (r, &schema::USER_SCHEMA))
        .chain(
            groups::all(ctx, t)
                .await?
                .into_iter()
                .map(|r| (r, &schema::GROUP_SCHEMA)),
        );
    for (r, rs) in typed {
        let keep = match &f {
            None => true,
            Some(f) => filter::matches(f, &r, &Rules(rs))
                .map_err(|e| ScimError::invalid_filter(e.to_string()))?,
        };
        if keep {
            kept.push(project(
                r,
                q.attributes.as_deref(),
                q.excluded_attributes.as_deref(),
                rs,
            ));
        }
    }
    Ok(paged(kept, q, ctx.config.scim.max_results, |r| r))
}

/// The SCIM discovery documents (RFC 7644 §4).
pub fn service_provider_config(ctx: &AppContext) -> Value {
    let base = base_url(ctx);
    json!({
        "schemas": [schema::SPC],
        "documentationUri": "https://github.com/authctl/authctl/blob/main/docs/scim.md",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": ctx.config.scim.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token from `authctl scim tokens create --provider NAME`, sent as Authorization: Bearer",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// The resource types served.
pub fn resource_types(ctx: &AppContext) -> Vec<Value> {
    let base = base_url(ctx);
    vec![
        json!({
            "schemas": [schema::RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": schema::USER,
            "schemaExtensions": [{ "schema": schema::ENTERPRISE, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [schema::RESOURCE_TYPE],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": schema::GROUP,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// Reads a string attribute that must be present (`userName`, `displayName`).
pub(crate) fn required_string(object: &Map<String, Value>, key: &str) -> ScimResult<String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.chars().count() > 1024 {
                return Err(ScimError::invalid_value(format!(
                    "{key} is longer than 1024 characters"
                )));
            }
            Ok(s.trim().to_owned())
        }
        _ => Err(ScimError::invalid_value(format!("{key} is required"))),
    }
}

/// `externalId` of a body: a string or absent.
pub(crate) fn external_id(body: &Value) -> ScimResult<Option<String>> {
    match filter::get_ci(body, "externalId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.contains('\0') => Err(ScimError::invalid_value(
            "externalId must not contain a NUL character",
        )),
        Some(Value::String(s)) if s.chars().count() <= 1024 => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ScimError::invalid_value(
            "externalId is longer than 1024 characters",
        )),
        Some(_) => Err(ScimError::invalid_value("externalId must be a string")),
    }
}

/// Refuses a body whose `schemas` does not name the resource's core schema.
pub(crate) fn check_schemas(body: &Value, core: &str) -> ScimResult<()> {
    match filter::get_ci(body, "schemas") {
        Some(Value::Array(list))
            if list
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(core))) =>
        {
            Ok(())
        }
        Some(Value::Array(_)) | Some(_) => Err(ScimError::invalid_syntax(format!(
            "schemas must list {core}"
        ))),
        None => Ok(()),
    }
}
