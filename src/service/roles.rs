//! Store: the roles of an account, each with the source that granted it (a SAML provider's
//! group mapping, `sso:<provider>`), so one source's roles can be replaced without touching another's.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entity::user_role;
use crate::error::Result;

/// A user's roles, sorted.
pub async fn roles_of(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<String>> {
    let mut roles: Vec<String> = user_role::Entity::find()
        .filter(user_role::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.role)
        .collect();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// The roles of several users at once (ids without roles are absent), in chunks small enough
/// for any database's parameter limit.
pub async fn roles_of_many(
    db: &impl ConnectionTrait,
    user_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for chunk in user_ids.chunks(500) {
        let rows = user_role::Entity::find()
            .filter(user_role::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for r in rows {
            out.entry(r.user_id).or_default().push(r.role);
        }
    }
    for roles in out.values_mut() {
        roles.sort();
        roles.dedup();
    }
    Ok(out)
}

/// Replaces the roles `source` gave the user with `roles` (`roles` without duplicates); what
/// other sources gave stays.
pub async fn replace_from_source(
    txn: &impl ConnectionTrait,
    user_id: &str,
    source: &str,
    roles: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    user_role::Entity::delete_many()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::Source.eq(source))
        .exec(txn)
        .await?;
    for role in roles {
        user_role::Entity::insert(user_role::ActiveModel {
            user_id: Set(user_id.to_owned()),
            role: Set(role.clone()),
            source: Set(source.to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}
