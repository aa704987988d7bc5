//! SCIM Users (RFC 7644 §3.3–3.6) of one provider: the accounts whose address is in its
//! domains. A user's `userName` is matched against the SAML NameID (an SSO identity is kept for
//! it), so SSO finds the account SCIM made and SCIM finds the account JIT provisioning made.
//!
//! The account's address is the primary e-mail in the provider's domains, else the first
//! e-mail there, else `userName` when it is such an address, else `userName@<first domain>`.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::{Map, Value, json};

use super::schema::{self, USER_SCHEMA};
use super::{
    Query, ScimError, ScimResult, Tenant, filter, finish, if_match_allows, patch, version_of,
};
use crate::config::ScimOnDelete;
use crate::context::AppContext;
use crate::domain::{Email, Name};
use crate::entity::{scim_group, scim_group_member, scim_user, sso_identity, user};
use crate::service::saml::LinkPolicy;
use crate::service::users::{self as accounts, NewUser};
use crate::service::{api_keys, audit, deletion, sessions};

/// What makes up one SCIM user.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub user: user::Model,
    pub row: Option<scim_user::Model>,
    /// The NameID of this provider's SSO identity of the account, if it has one.
    pub name_id: Option<String>,
    /// The provider's groups the user is in: (id, displayName).
    pub groups: Vec<(String, String)>,
}

impl Parts {
    /// The userName: the one the client gave, else the SSO NameID, else the address.
    pub fn user_name(&self) -> String {
        match (&self.row, &self.name_id) {
            (Some(row), _) => row.user_name.clone(),
            (None, Some(name_id)) => name_id.clone(),
            (None, None) => self.user.email.clone(),
        }
    }
}

/// The finished resource.
pub(crate) fn render(t: &Tenant, p: &Parts) -> Value {
    let mut r = Map::new();
    let disabled = p.user.disabled_at.is_some();
    let attrs: Map<String, Value> = p
        .row
        .as_ref()
        .and_then(|row| serde_json::from_str(&row.attributes).ok())
        .unwrap_or_default();
    let mut schemas = vec![json!(schema::USER)];
    if attrs.contains_key(schema::ENTERPRISE) {
        schemas.push(json!(schema::ENTERPRISE));
    }
    r.insert("schemas".into(), Value::Array(schemas));
    r.insert("id".into(), json!(p.user.id));
    if let Some(external) = p.row.as_ref().and_then(|row| row.external_id.clone()) {
        r.insert("externalId".into(), json!(external));
    }
    r.insert("userName".into(), json!(p.user_name()));
    match &p.row {
        Some(_) => {
            let shown_active = attrs.contains_key("active") || disabled;
            for (k, v) in attrs {
                if k != "active" {
                    r.insert(k, v);
                }
            }
            if shown_active {
                r.insert("active".into(), json!(!disabled));
            }
        }
        None => {
            r.insert("name".into(), json!({ "formatted": p.user.name }));
            r.insert("displayName".into(), json!(p.user.name));
            r.insert(
                "emails".into(),
                json!([{ "value": p.user.email, "type": "work", "primary": true }]),
            );
            r.insert("active".into(), json!(!disabled));
        }
    }
    if !p.groups.is_empty() {
        let groups: Vec<Value> = p
            .groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "display": name, "$ref": format!("{}/Groups/{id}", t.base), "type": "direct" })
            })
            .collect();
        r.insert("groups".into(), Value::Array(groups));
    }
    let modified = p.row.as_ref().map_or(p.user.updated_at, |row| {
        std::cmp::max(row.updated_at, p.user.updated_at)
    });
    let location = format!("{}/Users/{}", t.base, p.user.id);
    finish(r, "User", location, p.user.created_at, modified)
}

/// The accounts in the provider's domains (all, or those of `only`), ordered by id.
async fn accounts_of(
    db: &impl ConnectionTrait,
    t: &Tenant,
    only: Option<&[String]>,
) -> ScimResult<Vec<user::Model>> {
    if t.domains.is_empty() {
        return Ok(Vec::new());
    }
    let mut domains = Condition::any();
    for d in &t.domains {
        domains = domains.add(user::Column::Email.like(format!("%@{d}")));
    }
    let mut out = Vec::new();
    match only {
        Some(ids) => {
            for chunk in ids.chunks(500) {
                out.extend(
                    user::Entity::find()
                        .filter(user::Column::Id.is_in(chunk.iter().cloned()))
                        .filter(domains.clone())
                        .all(db)
                        .await?,
                );
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
        }
        None => {
            out = user::Entity::find()
                .filter(domains)
                .order_by_asc(user::Column::Id)
                .all(db)
                .await?;
        }
    }
    // `LIKE` ignores case on SQLite; addresses are lower-case, the domain check is exact.
    out.retain(|u| t.owns(&u.email));
    Ok(out)
}

/// The SCIM users among `accounts` (those the client did not delete), with their parts.
async fn assemble(
    db: &impl ConnectionTrait,
    t: &Tenant,
    accounts: Vec<user::Model>,
) -> ScimResult<Vec<Parts>> {
    let ids: Vec<String> = accounts.iter().map(|u| u.id.clone()).collect();
    let mut rows: HashMap<String, scim_user::Model> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut memberships: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let groups: HashMap<String, String> = scim_group::Entity::find()
        .filter(scim_group::Column::ProviderId.eq(t.provider.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.display_name))
        .collect();
    for chunk in ids.chunks(500) {
        for row in scim_user::Entity::find()
            .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
            .filter(scim_user::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            rows.insert(row.user_id.clone(), row);
        }
        for identity in sso_identity::Entity::find()
            .filter(sso_identity::Column::ProviderId.eq(t.provider.id.as_str()))
            .filter(sso_identity::Column::UserId.is_in(chunk.iter().cloned()))
            .order_by_asc(sso_identity::Column::CreatedAt)
            .all(db)
            .await?
        {
            names.entry(identity.user_id).or_insert(identity.name_id);
        }
        if !groups.is_empty() {
            for m in scim_group_member::Entity::find()
                .filter(scim_group_member::Column::UserId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?
            {
                if let Some(name) = groups.get(&m.group_id) {
                    memberships
                        .entry(m.user_id)
                        .or_default()
                        .push((m.group_id, name.clone()));
                }
            }
        }
    }
    Ok(accounts
        .into_iter()
        .filter_map(|user| {
            let row = rows.remove(&user.id);
            if row.as_ref().is_some_and(|r| r.deleted_at.is_some()) {
                return None;
            }
            let mut groups = memberships.remove(&user.id).unwrap_or_default();
            groups.sort();
            Some(Parts {
                name_id: names.remove(&user.id),
                row,
                groups,
                user,
            })
        })
        .collect())
}

pub(crate) async fn load(db: &impl ConnectionTrait, t: &Tenant, id: &str) -> ScimResult<Parts> {
    // Ids are UUIDs; anything else (a NUL byte, which PostgreSQL refuses in text) is unknown.
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ScimError::not_found("User", id));
    }
    let only = [id.to_owned()];
    assemble(db, t, accounts_of(db, t, Some(&only)).await?)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ScimError::not_found("User", id))
}

/// The ids of the visible users among `ids` (for group members).
pub(crate) async fn visible(
    db: &impl ConnectionTrait,
    t: &Tenant,
    ids: &[String],
) -> ScimResult<HashMap<String, Parts>> {
    let ids: Vec<String> = ids
        .iter()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .cloned()
        .collect();
    let ids = ids.as_slice();
    Ok(assemble(db, t, accounts_of(db, t, Some(ids)).await?)
        .await?
        .into_iter()
        .map(|p| (p.user.id.clone(), p))
        .collect())
}

/// The visible user whose userName is `user_name` (case-insensitive), if any.
async fn by_user_name(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_name: &str,
) -> ScimResult<Option<Parts>> {
    let key = user_name.to_lowercase();
    let mut ids: Vec<String> = scim_user::Entity::find()
        .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
        .filter(scim_user::Column::UserNameKey.eq(key.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    ids.extend(
        sso_identity::Entity::find()
            .filter(sso_identity::Column::ProviderId.eq(t.provider.id.as_str()))
            .filter(
                Expr::expr(Func::lower(Expr::col(sso_identity::Column::NameId)))
                    .eq(Expr::val(key.as_str())),
            )
            .all(db)
            .await?
            .into_iter()
            .map(|i| i.user_id),
    );
    if let Ok(email) = Email::parse(&key) {
        ids.extend(accounts::find_by_email(db, &email).await?.map(|u| u.id));
    }
    ids.sort();
    ids.dedup();
    Ok(assemble(db, t, accounts_of(db, t, Some(&ids)).await?)
        .await?
        .into_iter()
        .find(|p| p.user_name().to_lowercase() == key))
}

/// Users to consider for a filter: a top-level `userName eq`, `id eq` or `externalId eq`
/// narrows them before the filter is evaluated on each.
async fn candidates(
    db: &impl ConnectionTrait,
    t: &Tenant,
    f: Option<&filter::Filter>,
) -> ScimResult<Vec<Parts>> {
    use filter::{Filter, Op};
    if let Some(Filter::Compare(_, Op::Eq, Value::String(v))) = f
        && v.contains('\0')
    {
        // Nothing stored holds a NUL byte (every write refuses it).
        return Ok(Vec::new());
    }
    if let Some(Filter::Compare(path, Op::Eq, Value::String(v))) = f
        && path.urn.is_none()
        && path.filter.is_none()
        && path.sub.is_none()
    {
        if path.attr.eq_ignore_ascii_case("userName") {
            return Ok(by_user_name(db, t, v).await?.into_iter().collect());
        }
        if path.attr.eq_ignore_ascii_case("id") {
            return Ok(load(db, t, v).await.ok().into_iter().collect());
        }
        if path.attr.eq_ignore_ascii_case("externalId") {
            let ids: Vec<String> = scim_user::Entity::find()
                .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
                .filter(scim_user::Column::ExternalId.eq(v.as_str()))
                .all(db)
                .await?
                .into_iter()
                .map(|r| r.user_id)
                .collect();
            return assemble(db, t, accounts_of(db, t, Some(&ids)).await?).await;
        }
    }
    assemble(db, t, accounts_of(db, t, None).await?).await
}

/// `GET /Users` (and the Users part of a search).
pub async fn list(ctx: &AppContext, t: &Tenant, query: &Query) -> ScimResult<Value> {
    let f = query.parsed_filter()?;
    let parts = candidates(&ctx.read, t, f.as_ref()).await?;
    let resources = parts.iter().map(|p| render(t, p)).collect();
    super::list_response(resources, query, &USER_SCHEMA, ctx.config.scim.max_results)
}

/// Every user as a finished resource (for a search across resource types).
pub async fn all(
    ctx: &AppContext,
    t: &Tenant,
    f: Option<&filter::Filter>,
) -> ScimResult<Vec<Value>> {
    Ok(candidates(&ctx.read, t, f)
        .await?
        .iter()
        .map(|p| render(t, p))
        .collect())
}

pub async fn get(ctx: &AppContext, t: &Tenant, id: &str) -> ScimResult<Value> {
    Ok(render(t, &load(&ctx.read, t, id).await?))
}

/// A body read and checked.
struct Incoming {
    user_name: String,
    external_id: Option<String>,
    active: bool,
    address: Email,
    name: String,
    attrs: Map<String, Value>,
}

fn read(t: &Tenant, body: &Value) -> ScimResult<Incoming> {
    super::check_schemas(body, schema::USER)?;
    let mut attrs = USER_SCHEMA.clean(body)?;
    let user_name = super::required_string(&attrs, "userName")?;
    attrs.remove("userName");
    let external_id = super::external_id(body)?;
    let active = attrs.get("active").and_then(Value::as_bool).unwrap_or(true);
    let address = address_of(t, &attrs, &user_name)?;
    let name = display_name(&attrs, &user_name);
    Ok(Incoming {
        user_name,
        external_id,
        active,
        address,
        name,
        attrs,
    })
}

fn address_of(t: &Tenant, attrs: &Map<String, Value>, user_name: &str) -> ScimResult<Email> {
    if t.domains.is_empty() {
        return Err(ScimError::invalid_value(format!(
            "the provider {} owns no e-mail domain yet (authctl saml update {} --domain ...)",
            t.provider.name, t.provider.name
        )));
    }
    let ours = |raw: &str| Email::parse(raw).ok().filter(|e| t.owns(e.as_str()));
    let emails: Vec<&Value> = attrs
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let value_of = |e: &&Value| e.get("value").and_then(Value::as_str).map(str::to_owned);
    let primary = emails
        .iter()
        .filter(|e| e.get("primary") == Some(&Value::Bool(true)))
        .filter_map(value_of)
        .find_map(|v| ours(&v));
    if let Some(found) =
        primary.or_else(|| emails.iter().filter_map(value_of).find_map(|v| ours(&v)))
    {
        return Ok(found);
    }
    if let Some(found) = ours(user_name) {
        return Ok(found);
    }
    let mut domains = t.domains.clone();
    domains.sort();
    if !user_name.contains('@')
        && let Ok(found) = Email::parse(&format!("{user_name}@{}", domains[0]))
    {
        return Ok(found);
    }
    Err(ScimError::invalid_value(format!(
        "no e-mail address in the provider's domains ({}): give one in emails, or a userName that is one",
        domains.join(", ")
    )))
}

/// The account's display name: `name.formatted`, else given and family name, else
/// `displayName`, else the userName (at most 100 characters, as every name).
fn display_name(attrs: &Map<String, Value>, user_name: &str) -> String {
    let name = attrs.get("name");
    let part = |k: &str| {
        name.and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let joined = [part("givenName"), part("familyName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let chosen = part("formatted")
        .map(str::to_owned)
        .or_else(|| (!joined.is_empty()).then_some(joined))
        .or_else(|| {
            attrs
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| user_name.to_owned());
    let clean: String = chosen
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    Name::parse(&clean)
        .map(Name::into_inner)
        .unwrap_or_default()
}

/// Whether an account that is not yet this client's may become so: it signs in through this
/// provider already, or the provider's link policy allows linking a verified address.
async fn linkable(db: &impl ConnectionTrait, t: &Tenant, u: &user::Model) -> ScimResult<bool> {
    let linked = sso_identity::Entity::find()
        .filter(sso_identity::Column::ProviderId.eq(t.provider.id.as_str()))
        .filter(sso_identity::Column::UserId.eq(u.id.as_str()))
        .one(db)
        .await?
        .is_some();
    let policy = LinkPolicy::parse(&t.provider.link_policy).unwrap_or(LinkPolicy::None);
    Ok(linked || (policy == LinkPolicy::VerifiedEmail && u.email_verified_at.is_some()))
}

/// Makes sure SSO with NameID `user_name` finds the account (renaming the identity the
/// previous userName made, if any).
async fn ensure_identity(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_id: &str,
    previous: Option<&str>,
    user_name: &str,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let entity = t.provider.entity_id.as_str();
    let existing = sso_identity::Entity::find()
        .filter(sso_identity::Column::IdpEntityId.eq(entity))
        .filter(sso_identity::Column::NameId.eq(user_name))
        .one(db)
        .await?;
    match existing {
        Some(identity) if identity.user_id == user_id => return Ok(()),
        Some(_) => {
            return Err(ScimError::uniqueness(format!(
                "another account signs in with the NameID {user_name}"
            )));
        }
        None => {}
    }
    if let Some(previous) = previous.filter(|p| *p != user_name) {
        let renamed = sso_identity::Entity::update_many()
            .col_expr(sso_identity::Column::NameId, Expr::value(user_name))
            .filter(sso_identity::Column::IdpEntityId.eq(entity))
            .filter(sso_identity::Column::NameId.eq(previous))
            .filter(sso_identity::Column::UserId.eq(user_id))
            .exec(db)
            .await?
            .rows_affected;
        if renamed > 0 {
            return Ok(());
        }
    }
    sso_identity::Entity::insert(sso_identity::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        idp_entity_id: Set(entity.to_owned()),
        name_id: Set(user_name.to_owned()),
        provider_id: Set(t.provider.id.clone()),
        created_at: Set(now),
        last_login_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Disables the account and ends its sessions and API keys at once, in the caller's
/// transaction (nothing happens to an account already disabled).
pub(crate) async fn deactivate(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_id: &str,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let changed = user::Entity::update_many()
        .col_expr(user::Column::DisabledAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DisabledAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    if changed == 0 {
        return Ok(());
    }
    let sessions_ended = sessions::revoke_all_for_user(db, user_id).await?;
    let keys_ended = api_keys::revoke_all_for_user(db, user_id).await?;
    audit::Event::new(&t.actor(), "user_disabled")
        .user(user_id)
        .detail(json!({ "via": "scim", "sessionsEnded": sessions_ended, "keysEnded": keys_ended }))
        .record(db, now)
        .await?;
    Ok(())
}

async fn activate(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_id: &str,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let changed = user::Entity::update_many()
        .col_expr(
            user::Column::DisabledAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DisabledAt.is_not_null())
        .exec(db)
        .await?
        .rows_affected;
    if changed > 0 {
        audit::Event::new(&t.actor(), "user_enabled")
            .user(user_id)
            .detail(json!({ "via": "scim" }))
            .record(db, now)
            .await?;
    }
    Ok(())
}

/// Writes the client's row of the account (made, revived or replaced).
async fn save_row(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_id: &str,
    existing: Option<&scim_user::Model>,
    incoming: &Incoming,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let key = incoming.user_name.to_lowercase();
    // A deleted resource of another account may still hold the name: it is gone for SCIM.
    scim_user::Entity::delete_many()
        .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
        .filter(scim_user::Column::UserNameKey.eq(key.as_str()))
        .filter(scim_user::Column::UserId.ne(user_id))
        .filter(scim_user::Column::DeletedAt.is_not_null())
        .exec(db)
        .await?;
    let attributes = Value::Object(incoming.attrs.clone()).to_string();
    match existing {
        Some(row) => {
            scim_user::Entity::update_many()
                .col_expr(
                    scim_user::Column::UserName,
                    Expr::value(incoming.user_name.as_str()),
                )
                .col_expr(scim_user::Column::UserNameKey, Expr::value(key))
                .col_expr(
                    scim_user::Column::ExternalId,
                    Expr::value(incoming.external_id.clone()),
                )
                .col_expr(scim_user::Column::Attributes, Expr::value(attributes))
                .col_expr(scim_user::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    scim_user::Column::DeletedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(scim_user::Column::Id.eq(row.id.as_str()))
                .exec(db)
                .await?;
        }
        None => {
            scim_user::Entity::insert(scim_user::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                provider_id: Set(t.provider.id.clone()),
                user_id: Set(user_id.to_owned()),
                user_name: Set(incoming.user_name.clone()),
                user_name_key: Set(key),
                external_id: Set(incoming.external_id.clone()),
                attributes: Set(attributes),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(None),
            })
            .exec_without_returning(db)
            .await?;
        }
    }
    Ok(())
}

/// `POST /Users`.
pub async fn create(
    ctx: &AppContext,
    t: &Tenant,
    body: &Value,
    now: DateTime<Utc>,
) -> ScimResult<Value> {
    let incoming = read(t, body)?;
    let txn = ctx.db.begin().await?;
    if by_user_name(&txn, t, &incoming.user_name).await?.is_some() {
        return Err(ScimError::uniqueness(format!(
            "a user with userName {} exists",
            incoming.user_name
        )));
    }
    let existing = accounts::find_by_email(&txn, &incoming.address).await?;
    let (user, row, previous_name) = match existing {
        Some(u) => {
            let row = scim_user::Entity::find()
                .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
                .filter(scim_user::Column::UserId.eq(u.id.as_str()))
                .one(&txn)
                .await?;
            match &row {
                Some(r) if r.deleted_at.is_none() => {
                    return Err(ScimError::uniqueness(format!(
                        "the address {} belongs to the user {}",
                        incoming.address, r.user_name
                    )));
                }
                Some(_) => {}
                None if !linkable(&txn, t, &u).await? => {
                    return Err(ScimError::uniqueness(format!(
                        "an account with the address {} exists and is not linked to the provider {} (its link policy is {})",
                        incoming.address, t.provider.name, t.provider.link_policy
                    )));
                }
                None => {}
            }
            let previous = row.as_ref().map(|r| r.user_name.clone());
            audit::Event::new(&t.actor(), "sso_linked")
                .user(&u.id)
                .detail(json!({ "provider": t.provider.name, "via": "scim" }))
                .record(&txn, now)
                .await?;
            (u, row, previous)
        }
        None => {
            let new = NewUser {
                email: incoming.address.as_str().to_owned(),
                name: incoming.name.clone(),
                password: None,
                verified: true,
            };
            let u = accounts::insert(&txn, accounts::prepare(ctx, new).await?, now).await?;
            audit::Event::new(&t.actor(), "user_created")
                .user(&u.id)
                .detail(json!({ "verified": true, "email": u.email, "via": "scim", "provider": t.provider.name }))
                .record(&txn, now)
                .await?;
            (u, None, None)
        }
    };
    save_row(&txn, t, &user.id, row.as_ref(), &incoming, now).await?;
    ensure_identity(
        &txn,
        t,
        &user.id,
        previous_name.as_deref(),
        &incoming.user_name,
        now,
    )
    .await?;
    if user.name != incoming.name {
        rename(&txn, &user.id, &incoming.name, now).await?;
    }
    if incoming.active {
        activate(&txn, t, &user.id, now).await?;
    } else {
        deactivate(&txn, t, &user.id, now).await?;
    }
    super::groups::recompute_roles(&txn, t, std::slice::from_ref(&user.id), now).await?;
    let parts = load(&txn, t, &user.id).await?;
    txn.commit().await?;
    Ok(render(t, &parts))
}

async fn rename(
    db: &impl ConnectionTrait,
    user_id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::Name, Expr::value(name))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes the account's row lock first, so two changes with one `If-Match` cannot both pass.
async fn lock(db: &impl ConnectionTrait, user_id: &str) -> ScimResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// How a change is given: a whole resource (PUT) or operations on the current one (PATCH).
pub enum Change<'a> {
    Replace(&'a Value),
    Patch(&'a Value),
}

/// `PUT /Users/{id}` and `PATCH /Users/{id}`.
pub async fn update(
    ctx: &AppContext,
    t: &Tenant,
    id: &str,
    change: Change<'_>,
    if_match: Option<&str>,
    now: DateTime<Utc>,
) -> ScimResult<Value> {
    let ops = match &change {
        Change::Patch(body) => Some(patch::operations(body)?),
        Change::Replace(_) => None,
    };
    let txn = ctx.db.begin().await?;
    lock(&txn, id).await?;
    let current = load(&txn, t, id).await?;
    let shown = render(t, &current);
    if !if_match_allows(if_match, version_of(&shown).unwrap_or_default()) {
        return Err(ScimError::precondition());
    }
    let body = match (&change, ops) {
        (Change::Replace(body), _) => (*body).clone(),
        (Change::Patch(_), Some(ops)) => {
            let Value::Object(mut resource) = shown else {
                return Err(ScimError::invalid_syntax("the resource is not an object"));
            };
            for key in ["meta", "groups", "id"] {
                resource.remove(key);
            }
            for (verb, path, value) in ops {
                patch::apply(&USER_SCHEMA, &mut resource, &verb, path.as_ref(), value)?;
            }
            Value::Object(resource)
        }
        (Change::Patch(_), None) => unreachable!("operations are read for a PATCH"),
    };
    let incoming = read(t, &body)?;
    let user = &current.user;
    if incoming.user_name.to_lowercase() != current.user_name().to_lowercase()
        && let Some(other) = by_user_name(&txn, t, &incoming.user_name).await?
        && other.user.id != user.id
    {
        return Err(ScimError::uniqueness(format!(
            "a user with userName {} exists",
            incoming.user_name
        )));
    }
    if incoming.address.as_str() != user.email {
        if accounts::find_by_email(&txn, &incoming.address)
            .await?
            .is_some()
        {
            return Err(ScimError::uniqueness(format!(
                "an account with the address {} exists",
                incoming.address
            )));
        }
        user::Entity::update_many()
            .col_expr(user::Column::Email, Expr::value(incoming.address.as_str()))
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user.id.as_str()))
            .exec(&txn)
            .await?;
        audit::Event::new(&t.actor(), "email_changed")
            .user(&user.id)
            .detail(json!({ "via": "scim", "from": user.email, "to": incoming.address.as_str() }))
            .record(&txn, now)
            .await?;
    }
    if user.name != incoming.name {
        rename(&txn, &user.id, &incoming.name, now).await?;
    }
    save_row(&txn, t, &user.id, current.row.as_ref(), &incoming, now).await?;
    let previous = current.user_name();
    ensure_identity(&txn, t, &user.id, Some(&previous), &incoming.user_name, now).await?;
    if incoming.active {
        activate(&txn, t, &user.id, now).await?;
    } else {
        deactivate(&txn, t, &user.id, now).await?;
    }
    audit::Event::new(&t.actor(), "scim_user_updated")
        .user(&user.id)
        .detail(json!({ "provider": t.provider.name, "active": incoming.active }))
        .record(&txn, now)
        .await?;
    let parts = load(&txn, t, &user.id).await?;
    txn.commit().await?;
    Ok(render(t, &parts))
}

/// `DELETE /Users/{id}`: the resource is gone for SCIM; the account is disabled, or scheduled
/// for deletion (and disabled), per `scim.on_delete`.
pub async fn delete(
    ctx: &AppContext,
    t: &Tenant,
    id: &str,
    if_match: Option<&str>,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let txn = ctx.db.begin().await?;
    lock(&txn, id).await?;
    let current = load(&txn, t, id).await?;
    if !if_match_allows(
        if_match,
        version_of(&render(t, &current)).unwrap_or_default(),
    ) {
        return Err(ScimError::precondition());
    }
    let user_id = current.user.id.clone();
    match &current.row {
        Some(row) => {
            scim_user::Entity::update_many()
                .col_expr(scim_user::Column::DeletedAt, Expr::value(now))
                .col_expr(scim_user::Column::UpdatedAt, Expr::value(now))
                .filter(scim_user::Column::Id.eq(row.id.as_str()))
                .exec(&txn)
                .await?;
        }
        None => {
            let user_name = current.user_name();
            scim_user::Entity::insert(scim_user::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                provider_id: Set(t.provider.id.clone()),
                user_id: Set(user_id.clone()),
                user_name_key: Set(user_name.to_lowercase()),
                user_name: Set(user_name),
                external_id: Set(None),
                attributes: Set("{}".into()),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(Some(now)),
            })
            .exec_without_returning(&txn)
            .await?;
        }
    }
    let groups: HashSet<String> = current.groups.iter().map(|(g, _)| g.clone()).collect();
    super::groups::drop_member(&txn, t, &user_id, &groups, now).await?;
    deactivate(&txn, t, &user_id, now).await?;
    audit::Event::new(&t.actor(), "scim_user_deleted")
        .user(&user_id)
        .detail(
            json!({ "provider": t.provider.name, "onDelete": match ctx.config.scim.on_delete {
            ScimOnDelete::Disable => "disable",
            ScimOnDelete::ScheduleDeletion => "schedule_deletion",
        } }),
        )
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    if ctx.config.scim.on_delete == ScimOnDelete::ScheduleDeletion {
        let user = accounts::get(ctx, &user_id).await?;
        match deletion::schedule(ctx, &t.actor(), &user, None, None, None, now).await {
            Ok(_) | Err(crate::error::Error::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
