//! Store: who signs in through single sign-on. The SSO identities linked to an account and the
//! e-mail domains a SAML provider owns, as the other flows need to know them (password login,
//! signup and reset refuse an SSO domain; step-up offers the IdP).
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entity::{saml_domain, saml_provider, sso_identity};
use crate::error::{Error, Result};

/// The provider that owns `domain`, if any.
pub async fn provider_for_domain(
    db: &impl ConnectionTrait,
    domain: &str,
) -> Result<Option<saml_provider::Model>> {
    let Some(owner) = saml_domain::Entity::find_by_id(domain.to_ascii_lowercase())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(saml_provider::Entity::find_by_id(owner.provider_id)
        .one(db)
        .await?)
}

/// Refuses password signup, login and reset for an address whose domain signs in through a
/// SAML provider. The answer is the same for every address there, so it says no more than
/// `GET /sso/lookup` does.
pub async fn refuse_password_for(
    db: &impl ConnectionTrait,
    email: &crate::domain::Email,
) -> Result<()> {
    let domain = email.domain();
    let served = saml_domain::Entity::find_by_id(domain.to_ascii_lowercase())
        .one(db)
        .await?
        .is_some();
    if served {
        return Err(Error::forbidden(
            "sso_required",
            format!(
                "addresses at {domain} sign in with single sign-on: start at /sso/login?email=<your address>"
            ),
        ));
    }
    Ok(())
}

/// The SSO identities of several users at once as `provider: NameID` (ids without one are
/// absent), in chunks small enough for any database's parameter limit.
pub async fn identities_of_many(
    db: &impl ConnectionTrait,
    user_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let providers: std::collections::HashMap<String, String> = saml_provider::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for chunk in user_ids.chunks(500) {
        let rows = sso_identity::Entity::find()
            .filter(sso_identity::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for identity in rows {
            let provider = providers
                .get(&identity.provider_id)
                .cloned()
                .unwrap_or_else(|| identity.idp_entity_id.clone());
            out.entry(identity.user_id)
                .or_default()
                .push(format!("{provider}: {}", identity.name_id));
        }
    }
    Ok(out)
}

/// A user's SSO identities as `provider: NameID` (for `authctl users show`).
pub async fn identities_of(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<String>> {
    let identities = sso_identity::Entity::find()
        .filter(sso_identity::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(identities.len());
    for identity in identities {
        let provider = saml_provider::Entity::find_by_id(identity.provider_id.as_str())
            .one(db)
            .await?
            .map(|p| p.name)
            .unwrap_or_else(|| identity.idp_entity_id.clone());
        out.push(format!("{provider}: {}", identity.name_id));
    }
    Ok(out)
}
