//! Just-in-time provisioning: the asserted identity becomes an account (found, linked by
//! address per the provider's link policy, or created), and its roles follow its groups.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use super::acs::Fail;
use super::providers::LinkPolicy;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{saml_provider, scim_user, sso_identity, user};
use crate::error::{Error, Result};
use crate::service::users::{self, NewUser};
use crate::service::{Actor, ClientInfo, audit};

/// A disabled account is refused before anything about it changes.
fn refuse_disabled(user: &user::Model) -> std::result::Result<(), Fail> {
    match user.disabled_at {
        Some(_) => Err(Fail::Refused {
            reason: "account_disabled",
            user_id: Some(user.id.clone()),
        }),
        None => Ok(()),
    }
}

/// Finds the user of (IdP entity ID, NameID); links an existing account when the provider's
/// policy allows it; creates one otherwise.
pub(super) async fn resolve_user(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    name_id: &str,
    email: &Email,
    name: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> std::result::Result<user::Model, Fail> {
    let txn = ctx.db.begin().await?;
    let identity = sso_identity::Entity::find()
        .filter(sso_identity::Column::IdpEntityId.eq(provider.entity_id.as_str()))
        .filter(sso_identity::Column::NameId.eq(name_id))
        .one(&txn)
        .await?;
    if let Some(identity) = identity {
        let user = user::Entity::find_by_id(identity.user_id.as_str())
            .one(&txn)
            .await?
            .ok_or(Error::NotFound("user"))?;
        refuse_disabled(&user)?;
        let user = if user.name != name {
            let mut active: user::ActiveModel = user.into();
            active.name = Set(name.to_owned());
            active.updated_at = Set(now);
            user::Entity::update(active).exec(&txn).await?
        } else {
            user
        };
        sso_identity::Entity::update_many()
            .col_expr(sso_identity::Column::LastLoginAt, Expr::value(now))
            .col_expr(
                sso_identity::Column::ProviderId,
                Expr::value(provider.id.clone()),
            )
            .filter(sso_identity::Column::Id.eq(identity.id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        return Ok(user);
    }
    let existing = users::find_by_email(&txn, email).await?;
    let user = match existing {
        Some(user) => {
            refuse_disabled(&user)?;
            let policy = LinkPolicy::parse(&provider.link_policy).unwrap_or(LinkPolicy::None);
            // An account this provider's SCIM client keeps is the provider's own: it links
            // whatever the policy (its userName may differ from the NameID the IdP sends).
            let provisioned = scim_user::Entity::find()
                .filter(scim_user::Column::ProviderId.eq(provider.id.as_str()))
                .filter(scim_user::Column::UserId.eq(user.id.as_str()))
                .filter(scim_user::Column::DeletedAt.is_null())
                .one(&txn)
                .await?
                .is_some();
            let linkable = provisioned
                || (policy == LinkPolicy::VerifiedEmail && user.email_verified_at.is_some());
            if !linkable {
                return Err(Fail::Refused {
                    reason: "account_exists_not_linked",
                    user_id: Some(user.id),
                });
            }
            audit::Event::new(&Actor::System, "sso_linked")
                .user(&user.id)
                .client(client)
                .detail(json!({ "provider": provider.name }))
                .record(&txn, now)
                .await?;
            user
        }
        None => {
            let new = NewUser {
                email: email.as_str().to_owned(),
                name: name.to_owned(),
                password: None,
                verified: true,
            };
            let user = users::insert(&txn, users::prepare(ctx, new).await?, now).await?;
            audit::Event::new(&Actor::System, "user_created").user(&user.id).client(client).detail(json!({ "verified": true, "email": user.email, "via": "sso", "provider": provider.name })).record(&txn, now)
            .await?;
            user
        }
    };
    sso_identity::Entity::insert(sso_identity::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user.id.clone()),
        idp_entity_id: Set(provider.entity_id.clone()),
        name_id: Set(name_id.to_owned()),
        provider_id: Set(provider.id.clone()),
        created_at: Set(now),
        last_login_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Replaces the roles this provider gave the user with those its groups map to now (plus the
/// provider's default role). Returns the user's roles from this provider.
pub(super) async fn set_roles(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    user_id: &str,
    groups: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let roles = super::providers::roles_for_groups(provider, groups);
    let source = super::role_source(&provider.name);
    let txn = ctx.db.begin().await?;
    crate::service::roles::replace_from_source(&txn, user_id, &source, &roles, now).await?;
    txn.commit().await?;
    Ok(roles)
}
