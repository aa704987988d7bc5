//! SCIM Groups (RFC 7644 §3.3–3.6) a provider's client created, their members, and the roles
//! membership gives: the provider's `--map-group GROUP=ROLE` rules (the same as for SAML
//! assertions) applied to the names of a user's groups, recomputed in the transaction that
//! changes them. The members are kept as the client sent them (with `display`, `$ref`,
//! `type`) and, for lookups, one row per member.
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::{Map, Value, json};

use super::schema::{self, GROUP_SCHEMA};
use super::users::{Change, visible};
use super::{Query, ScimError, ScimResult, Tenant, finish, if_match_allows, patch, version_of};
use crate::context::AppContext;
use crate::entity::{scim_group, scim_group_member, scim_user};
use crate::service::saml::roles_for_groups;
use crate::service::{audit, roles};

fn members_of(g: &scim_group::Model) -> Vec<Value> {
    serde_json::from_str::<Value>(&g.attributes)
        .ok()
        .and_then(|v| v.get("members").cloned())
        .and_then(|m| m.as_array().cloned())
        .unwrap_or_default()
}

fn render(t: &Tenant, g: &scim_group::Model) -> Value {
    let mut r = Map::new();
    r.insert("schemas".into(), json!([schema::GROUP]));
    r.insert("id".into(), json!(g.id));
    if let Some(external) = &g.external_id {
        r.insert("externalId".into(), json!(external));
    }
    r.insert("displayName".into(), json!(g.display_name));
    let members = members_of(g);
    if !members.is_empty() {
        r.insert("members".into(), Value::Array(members));
    }
    finish(
        r,
        "Group",
        format!("{}/Groups/{}", t.base, g.id),
        g.created_at,
        g.updated_at,
    )
}

async fn load(db: &impl ConnectionTrait, t: &Tenant, id: &str) -> ScimResult<scim_group::Model> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ScimError::not_found("Group", id));
    }
    scim_group::Entity::find_by_id(id.to_owned())
        .filter(scim_group::Column::ProviderId.eq(t.provider.id.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| ScimError::not_found("Group", id))
}

async fn groups_of(db: &impl ConnectionTrait, t: &Tenant) -> ScimResult<Vec<scim_group::Model>> {
    Ok(scim_group::Entity::find()
        .filter(scim_group::Column::ProviderId.eq(t.provider.id.as_str()))
        .order_by_asc(scim_group::Column::Id)
        .all(db)
        .await?)
}

/// `GET /Groups`.
pub async fn list(ctx: &AppContext, t: &Tenant, query: &Query) -> ScimResult<Value> {
    let resources = all(ctx, t).await?;
    super::list_response(resources, query, &GROUP_SCHEMA, ctx.config.scim.max_results)
}

/// Every group as a finished resource.
pub async fn all(ctx: &AppContext, t: &Tenant) -> ScimResult<Vec<Value>> {
    Ok(groups_of(&ctx.read, t)
        .await?
        .iter()
        .map(|g| render(t, g))
        .collect())
}

pub async fn get(ctx: &AppContext, t: &Tenant, id: &str) -> ScimResult<Value> {
    Ok(render(t, &load(&ctx.read, t, id).await?))
}

struct Incoming {
    display_name: String,
    external_id: Option<String>,
    members: Vec<Value>,
}

/// Reads a body; every member must be one of this client's users.
async fn read(db: &impl ConnectionTrait, t: &Tenant, body: &Value) -> ScimResult<Incoming> {
    super::check_schemas(body, schema::GROUP)?;
    let attrs = GROUP_SCHEMA.clean(body)?;
    let display_name = super::required_string(&attrs, "displayName")?;
    let external_id = super::external_id(body)?;
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    for m in attrs
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let Some(id) = m.get("value").and_then(Value::as_str).map(str::to_owned) else {
            return Err(ScimError::invalid_value(
                "each member has a value (the id of a User)",
            ));
        };
        if m.get("type")
            .and_then(Value::as_str)
            .is_some_and(|ty| !ty.eq_ignore_ascii_case("User"))
        {
            return Err(ScimError::invalid_value(
                "only users can be members of a group",
            ));
        }
        if seen.insert(id) {
            members.push(m);
        }
    }
    let ids: Vec<String> = seen.into_iter().collect();
    let found = visible(db, t, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains_key(*id)) {
        return Err(ScimError::invalid_value(format!(
            "no user with id {missing}"
        )));
    }
    Ok(Incoming {
        display_name,
        external_id,
        members,
    })
}

fn ids(members: &[Value]) -> BTreeSet<String> {
    members
        .iter()
        .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn attributes(members: &[Value]) -> String {
    json!({ "members": members }).to_string()
}

async fn add_rows(db: &impl ConnectionTrait, group_id: &str, users: &[String]) -> ScimResult<()> {
    for chunk in users.chunks(200) {
        scim_group_member::Entity::insert_many(chunk.iter().map(|u| {
            scim_group_member::ActiveModel {
                group_id: Set(group_id.to_owned()),
                user_id: Set(u.clone()),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

async fn remove_rows(
    db: &impl ConnectionTrait,
    group_id: &str,
    users: &[String],
) -> ScimResult<()> {
    for chunk in users.chunks(500) {
        scim_group_member::Entity::delete_many()
            .filter(scim_group_member::Column::GroupId.eq(group_id))
            .filter(scim_group_member::Column::UserId.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// `POST /Groups`.
pub async fn create(
    ctx: &AppContext,
    t: &Tenant,
    body: &Value,
    now: DateTime<Utc>,
) -> ScimResult<Value> {
    let txn = ctx.db.begin().await?;
    let incoming = read(&txn, t, body).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let group = scim_group::Entity::insert(scim_group::ActiveModel {
        id: Set(id.clone()),
        provider_id: Set(t.provider.id.clone()),
        display_key: Set(incoming.display_name.to_lowercase()),
        display_name: Set(incoming.display_name.clone()),
        external_id: Set(incoming.external_id.clone()),
        attributes: Set(attributes(&incoming.members)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    let members: Vec<String> = ids(&incoming.members).into_iter().collect();
    add_rows(&txn, &id, &members).await?;
    recompute_roles(&txn, t, &members, now).await?;
    audit::Event::new(&t.actor(), "scim_group_created")
        .detail(json!({ "provider": t.provider.name, "groupId": id, "displayName": group.display_name, "members": members.len() }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(render(t, &group))
}

/// `PUT /Groups/{id}` and `PATCH /Groups/{id}`.
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
    // The row lock first, so two changes with one If-Match cannot both pass.
    scim_group::Entity::update_many()
        .col_expr(
            scim_group::Column::UpdatedAt,
            Expr::col(scim_group::Column::UpdatedAt),
        )
        .filter(scim_group::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let current = load(&txn, t, id).await?;
    let shown = render(t, &current);
    if !if_match_allows(if_match, version_of(&shown).unwrap_or_default()) {
        return Err(ScimError::precondition());
    }
    let body = match (change, ops) {
        (Change::Replace(body), _) => body.clone(),
        (Change::Patch(_), Some(ops)) => {
            let Value::Object(mut resource) = shown else {
                return Err(ScimError::invalid_syntax("the resource is not an object"));
            };
            resource.remove("meta");
            resource.remove("id");
            for (verb, path, value) in ops {
                patch::apply(&GROUP_SCHEMA, &mut resource, &verb, path.as_ref(), value)?;
            }
            Value::Object(resource)
        }
        (Change::Patch(_), None) => unreachable!("operations are read for a PATCH"),
    };
    let incoming = read(&txn, t, &body).await?;
    let before = ids(&members_of(&current));
    let after = ids(&incoming.members);
    let added: Vec<String> = after.difference(&before).cloned().collect();
    let removed: Vec<String> = before.difference(&after).cloned().collect();
    scim_group::Entity::update_many()
        .col_expr(
            scim_group::Column::DisplayName,
            Expr::value(incoming.display_name.as_str()),
        )
        .col_expr(
            scim_group::Column::DisplayKey,
            Expr::value(incoming.display_name.to_lowercase()),
        )
        .col_expr(
            scim_group::Column::ExternalId,
            Expr::value(incoming.external_id.clone()),
        )
        .col_expr(
            scim_group::Column::Attributes,
            Expr::value(attributes(&incoming.members)),
        )
        .col_expr(scim_group::Column::UpdatedAt, Expr::value(now))
        .filter(scim_group::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    remove_rows(&txn, id, &removed).await?;
    add_rows(&txn, id, &added).await?;
    // A rename changes what the mapping rules see for every member.
    let affected: Vec<String> = if incoming.display_name != current.display_name {
        before.union(&after).cloned().collect()
    } else {
        added.iter().chain(removed.iter()).cloned().collect()
    };
    recompute_roles(&txn, t, &affected, now).await?;
    audit::Event::new(&t.actor(), "scim_group_updated")
        .detail(json!({ "provider": t.provider.name, "groupId": id, "displayName": incoming.display_name, "added": added.len(), "removed": removed.len() }))
        .record(&txn, now)
        .await?;
    let group = load(&txn, t, id).await?;
    txn.commit().await?;
    Ok(render(t, &group))
}

/// `DELETE /Groups/{id}`: its members lose the roles it gave.
pub async fn delete(
    ctx: &AppContext,
    t: &Tenant,
    id: &str,
    if_match: Option<&str>,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    let txn = ctx.db.begin().await?;
    let current = load(&txn, t, id).await?;
    if !if_match_allows(
        if_match,
        version_of(&render(t, &current)).unwrap_or_default(),
    ) {
        return Err(ScimError::precondition());
    }
    let members: Vec<String> = ids(&members_of(&current)).into_iter().collect();
    let deleted = scim_group::Entity::delete_many()
        .filter(scim_group::Column::Id.eq(id))
        .filter(scim_group::Column::ProviderId.eq(t.provider.id.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    if deleted == 0 {
        return Err(ScimError::not_found("Group", id));
    }
    // The rows go with the group (foreign key); removed here too for databases without one.
    scim_group_member::Entity::delete_many()
        .filter(scim_group_member::Column::GroupId.eq(id))
        .exec(&txn)
        .await?;
    recompute_roles(&txn, t, &members, now).await?;
    audit::Event::new(&t.actor(), "scim_group_deleted")
        .detail(json!({ "provider": t.provider.name, "groupId": id, "displayName": current.display_name }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Takes a user out of `groups` (when the client deletes the user).
pub(crate) async fn drop_member(
    db: &impl ConnectionTrait,
    t: &Tenant,
    user_id: &str,
    groups: &HashSet<String>,
    now: DateTime<Utc>,
) -> ScimResult<()> {
    for group_id in groups {
        let Ok(group) = load(db, t, group_id).await else {
            continue;
        };
        let members: Vec<Value> = members_of(&group)
            .into_iter()
            .filter(|m| m.get("value").and_then(Value::as_str) != Some(user_id))
            .collect();
        scim_group::Entity::update_many()
            .col_expr(
                scim_group::Column::Attributes,
                Expr::value(attributes(&members)),
            )
            .col_expr(scim_group::Column::UpdatedAt, Expr::value(now))
            .filter(scim_group::Column::Id.eq(group_id.as_str()))
            .exec(db)
            .await?;
        remove_rows(db, group_id, &[user_id.to_owned()]).await?;
    }
    recompute_roles(db, t, &[user_id.to_owned()], now).await
}

/// Sets the roles this provider's SCIM groups give each of `users`: the mapping of their
/// groups' names, plus the provider's default role for a user the client keeps; a user the
/// client deleted gets none.
pub(crate) async fn recompute_roles(
    db: &impl ConnectionTrait,
    t: &Tenant,
    users: &[String],
    now: DateTime<Utc>,
) -> ScimResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let names: HashMap<String, String> = groups_of(db, t)
        .await?
        .into_iter()
        .map(|g| (g.id, g.display_name))
        .collect();
    let source = t.role_source();
    for chunk in users.chunks(500) {
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for m in scim_group_member::Entity::find()
            .filter(scim_group_member::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            if let Some(name) = names.get(&m.group_id) {
                groups.entry(m.user_id).or_default().push(name.clone());
            }
        }
        let kept: HashSet<String> = scim_user::Entity::find()
            .filter(scim_user::Column::ProviderId.eq(t.provider.id.as_str()))
            .filter(scim_user::Column::UserId.is_in(chunk.iter().cloned()))
            .filter(scim_user::Column::DeletedAt.is_null())
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.user_id)
            .collect();
        for user_id in chunk {
            let of_user = groups.remove(user_id).unwrap_or_default();
            let granted = if kept.contains(user_id) || !of_user.is_empty() {
                roles_for_groups(&t.provider, &of_user)
            } else {
                Vec::new()
            };
            roles::replace_from_source(db, user_id, &source, &granted, now).await?;
        }
    }
    Ok(())
}
