//! Store: the registered identity providers and the e-mail domains each one owns, with their
//! checks (names, domains, group-to-role rules, MFA classes).
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::context::AppContext;
use crate::entity::{saml_domain, saml_provider};
use crate::error::{Error, Result};

use super::metadata::{CertificateInfo, IdpMetadata, certificate_info, hex};
use super::sp::{acs_url, sp_entity_id};
use crate::service::{Actor, audit};

/// Roles given through a provider carry this source (`sso:<provider>`), so a login recomputes
/// exactly the roles that provider gave.
pub fn role_source(provider: &str) -> String {
    format!("sso:{provider}")
}

/// Whether an existing account with the asserted address may be linked to an SSO identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Never: the first SSO login of an address that already has an account is refused.
    None,
    /// When that account's address is verified.
    VerifiedEmail,
}

impl LinkPolicy {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "none" => Ok(Self::None),
            "verified-email" => Ok(Self::VerifiedEmail),
            other => Err(Error::invalid(
                "invalid_link_policy",
                format!("the link policy must be `none` or `verified-email`, not `{other}`"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::VerifiedEmail => "verified-email",
        }
    }
}

/// A `--map-group GROUP=ROLE` pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GroupRole {
    pub group: String,
    pub role: String,
}

impl GroupRole {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.split_once('=') {
            Some((group, role)) if !group.trim().is_empty() && !role.trim().is_empty() => {
                Ok(Self {
                    group: group.trim().to_owned(),
                    role: check_role(role)?,
                })
            }
            _ => Err(Error::invalid(
                "invalid_group_mapping",
                format!("`{raw}` is not GROUP=ROLE"),
            )),
        }
    }
}

fn check_role(raw: &str) -> Result<String> {
    let role = raw.trim();
    let fine = !role.is_empty()
        && role.len() <= 100
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if fine {
        Ok(role.to_owned())
    } else {
        Err(Error::invalid(
            "invalid_role",
            format!(
                "`{raw}` is not a role name (letters, digits, - _ . : and at most 100 characters)"
            ),
        ))
    }
}

/// Lower-cases and checks an e-mail domain.
pub fn normalize_domain(raw: &str) -> Result<String> {
    let domain = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    let fine = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if fine {
        Ok(domain)
    } else {
        Err(Error::invalid(
            "invalid_domain",
            format!("`{raw}` is not an e-mail domain such as example.com"),
        ))
    }
}

pub(crate) fn check_name(raw: &str) -> Result<String> {
    let fine = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric());
    if fine {
        Ok(raw.to_owned())
    } else {
        Err(Error::invalid(
            "invalid_provider_name",
            format!(
                "`{raw}` is not a provider name (lower-case letters, digits, - and _, at most 64; it becomes part of the ACS URL)"
            ),
        ))
    }
}

fn check_attribute(raw: Option<String>) -> Result<Option<String>> {
    match raw.map(|a| a.trim().to_owned()) {
        Some(a) if a.is_empty() || a.len() > 512 => Err(Error::invalid(
            "invalid_attribute",
            "an attribute name must have 1 to 512 characters",
        )),
        other => Ok(other),
    }
}

/// A provider as operators see it (`saml list/show`, `-o json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub name: String,
    pub entity_id: String,
    pub sso_url: String,
    pub domains: Vec<String>,
    pub certificates: Vec<CertificateInfo>,
    /// Fingerprints removed by an operator; metadata imports skip them.
    pub removed_certificates: Vec<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    pub groups_attribute: Option<String>,
    pub group_roles: Vec<GroupRole>,
    pub default_role: Option<String>,
    pub link_policy: String,
    /// AuthnContextClassRef values trusted to mean the IdP used a second factor; empty: an
    /// account with an authenticator app is asked for its code after SSO.
    pub trusted_mfa_contexts: Vec<String>,
    /// What the IdP admin needs from us.
    pub sp_entity_id: String,
    pub acs_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

pub(crate) fn certificates_of(p: &saml_provider::Model) -> Vec<Vec<u8>> {
    serde_json::from_str::<Vec<String>>(&p.certificates)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| STANDARD.decode(c).ok())
        .collect()
}

pub(crate) fn mfa_contexts_of(p: &saml_provider::Model) -> Vec<String> {
    serde_json::from_str(&p.mfa_contexts).unwrap_or_default()
}

/// Checks `--trust-idp-mfa` values: AuthnContextClassRef URIs, deduplicated.
fn check_mfa_contexts(raw: &[String]) -> Result<String> {
    let mut out: Vec<String> = Vec::new();
    for value in raw {
        let v = value.trim();
        if v.is_empty() || v.len() > 512 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "invalid_mfa_context",
                format!(
                    "`{value}` is not an AuthnContextClassRef (a URI such as urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract)"
                ),
            ));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    Ok(json!(out).to_string())
}

pub(crate) fn group_roles_of(p: &saml_provider::Model) -> Vec<GroupRole> {
    serde_json::from_str(&p.group_roles).unwrap_or_default()
}

/// The roles a member of `groups` gets from this provider: what its `--map-group` rules map
/// those groups to, plus its default role; sorted, each once. SAML assertions and SCIM groups
/// both go through here.
pub fn roles_for_groups(p: &saml_provider::Model, groups: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = group_roles_of(p)
        .into_iter()
        .filter(|m| groups.iter().any(|g| g == &m.group))
        .map(|m| m.role)
        .chain(p.default_role.clone())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

fn encode_certificates(certs: &[Vec<u8>]) -> String {
    json!(certs.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()).to_string()
}

async fn domains_of(db: &impl ConnectionTrait, provider_id: &str) -> Result<Vec<String>> {
    Ok(saml_domain::Entity::find()
        .filter(saml_domain::Column::ProviderId.eq(provider_id))
        .order_by_asc(saml_domain::Column::Domain)
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.domain)
        .collect())
}

async fn view(ctx: &AppContext, p: saml_provider::Model) -> Result<ProviderView> {
    Ok(ProviderView {
        domains: domains_of(&ctx.db, &p.id).await?,
        certificates: certificates_of(&p)
            .iter()
            .map(|c| certificate_info(c))
            .collect(),
        group_roles: group_roles_of(&p),
        trusted_mfa_contexts: mfa_contexts_of(&p),
        removed_certificates: serde_json::from_str(&p.removed_certificates).unwrap_or_default(),
        sp_entity_id: sp_entity_id(&ctx.config),
        acs_url: acs_url(&ctx.config, &p.name),
        name: p.name,
        entity_id: p.entity_id,
        sso_url: p.sso_url,
        email_attribute: p.email_attribute,
        name_attribute: p.name_attribute,
        groups_attribute: p.groups_attribute,
        default_role: p.default_role,
        link_policy: p.link_policy,
        created_at: p.created_at,
        updated_at: p.updated_at,
        last_login_at: p.last_login_at,
    })
}

/// What `saml add` registers.
pub struct NewProvider {
    pub name: String,
    pub metadata: IdpMetadata,
    pub domains: Vec<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    pub groups_attribute: Option<String>,
    pub group_roles: Vec<GroupRole>,
    pub default_role: Option<String>,
    pub link_policy: LinkPolicy,
    /// `--trust-idp-mfa`: AuthnContextClassRef values that count as a second factor.
    pub mfa_contexts: Vec<String>,
}

/// What `saml update` changes; `None` leaves a setting as it is.
#[derive(Default)]
pub struct ProviderChanges {
    /// New metadata: its certificates are added to the accepted ones (rollover).
    pub metadata: Option<IdpMetadata>,
    /// Replaces the domain list.
    pub domains: Option<Vec<String>>,
    pub email_attribute: Option<Option<String>>,
    pub name_attribute: Option<Option<String>>,
    pub groups_attribute: Option<Option<String>>,
    /// Replaces the mapping.
    pub group_roles: Option<Vec<GroupRole>>,
    pub default_role: Option<Option<String>>,
    pub link_policy: Option<LinkPolicy>,
    /// Replaces the trusted AuthnContextClassRef values (empty: trust none).
    pub mfa_contexts: Option<Vec<String>>,
    /// Certificates to stop accepting, by SHA-256 fingerprint (or a prefix of 8+ hex digits).
    pub remove_certificates: Vec<String>,
}

fn dedup_domains(raw: &[String]) -> Result<Vec<String>> {
    let mut domains = raw
        .iter()
        .map(|d| normalize_domain(d))
        .collect::<Result<Vec<_>>>()?;
    domains.sort();
    domains.dedup();
    if domains.is_empty() {
        return Err(Error::invalid(
            "domain_required",
            "give at least one --domain the provider serves",
        ));
    }
    Ok(domains)
}

async fn claim_domains(
    db: &impl ConnectionTrait,
    provider_id: &str,
    domains: &[String],
) -> Result<()> {
    for domain in domains {
        if let Some(owner) = saml_domain::Entity::find_by_id(domain.as_str())
            .one(db)
            .await?
            && owner.provider_id != provider_id
        {
            let other = saml_provider::Entity::find_by_id(owner.provider_id.as_str())
                .one(db)
                .await?
                .map(|p| p.name)
                .unwrap_or_default();
            return Err(Error::conflict(
                "domain_taken",
                format!("the domain {domain} already belongs to the provider `{other}`"),
            ));
        }
    }
    saml_domain::Entity::delete_many()
        .filter(saml_domain::Column::ProviderId.eq(provider_id))
        .exec(db)
        .await?;
    for domain in domains {
        saml_domain::Entity::insert(saml_domain::ActiveModel {
            domain: Set(domain.clone()),
            provider_id: Set(provider_id.to_owned()),
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

async fn entity_taken(db: &impl ConnectionTrait, entity_id: &str, except: &str) -> Result<()> {
    if let Some(other) = saml_provider::Entity::find()
        .filter(saml_provider::Column::EntityId.eq(entity_id))
        .filter(saml_provider::Column::Id.ne(except))
        .one(db)
        .await?
    {
        return Err(Error::conflict(
            "entity_id_taken",
            format!(
                "the IdP {entity_id} is already registered as the provider `{}`",
                other.name
            ),
        ));
    }
    Ok(())
}

/// `authctl saml add`.
pub async fn add(
    ctx: &AppContext,
    actor: &Actor,
    new: NewProvider,
    now: DateTime<Utc>,
) -> Result<ProviderView> {
    let name = check_name(&new.name)?;
    let domains = dedup_domains(&new.domains)?;
    let default_role = new.default_role.as_deref().map(check_role).transpose()?;
    let txn = ctx.db.begin().await?;
    if saml_provider::Entity::find()
        .filter(saml_provider::Column::Name.eq(name.as_str()))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "provider_exists",
            format!("a provider named `{name}` already exists; use `authctl saml update`"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    entity_taken(&txn, &new.metadata.entity_id, &id).await?;
    let model = saml_provider::ActiveModel {
        id: Set(id.clone()),
        name: Set(name.clone()),
        entity_id: Set(new.metadata.entity_id.clone()),
        sso_url: Set(new.metadata.sso_url.clone()),
        certificates: Set(encode_certificates(&new.metadata.certificates)),
        removed_certificates: Set("[]".into()),
        metadata_xml: Set(new.metadata.xml.clone()),
        email_attribute: Set(check_attribute(new.email_attribute)?),
        name_attribute: Set(check_attribute(new.name_attribute)?),
        groups_attribute: Set(check_attribute(new.groups_attribute)?),
        group_roles: Set(json!(new.group_roles).to_string()),
        default_role: Set(default_role),
        link_policy: Set(new.link_policy.as_str().to_owned()),
        mfa_contexts: Set(check_mfa_contexts(&new.mfa_contexts)?),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
    };
    let provider = saml_provider::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    claim_domains(&txn, &id, &domains).await?;
    audit::Event::new(actor, "saml_provider_added")
        .detail(json!({ "provider": name, "entityId": provider.entity_id, "domains": domains }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    view(ctx, provider).await
}

/// Every provider, by name.
pub async fn list(ctx: &AppContext) -> Result<Vec<ProviderView>> {
    let providers = saml_provider::Entity::find()
        .order_by_asc(saml_provider::Column::Name)
        .all(&ctx.db)
        .await?;
    let mut out = Vec::with_capacity(providers.len());
    for p in providers {
        out.push(view(ctx, p).await?);
    }
    Ok(out)
}

pub(crate) async fn find(db: &impl ConnectionTrait, name: &str) -> Result<saml_provider::Model> {
    saml_provider::Entity::find()
        .filter(saml_provider::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or(Error::NotFound("SAML provider"))
}

/// `authctl saml show NAME`.
pub async fn show(ctx: &AppContext, name: &str) -> Result<ProviderView> {
    let provider = find(&ctx.db, name).await?;
    view(ctx, provider).await
}

/// `authctl saml update NAME ...`.
pub async fn update(
    ctx: &AppContext,
    actor: &Actor,
    name: &str,
    changes: ProviderChanges,
    now: DateTime<Utc>,
) -> Result<ProviderView> {
    let txn = ctx.db.begin().await?;
    let provider = find(&txn, name).await?;
    let mut certificates = certificates_of(&provider);
    let mut removed: Vec<String> =
        serde_json::from_str(&provider.removed_certificates).unwrap_or_default();
    let mut model: saml_provider::ActiveModel = provider.clone().into();
    let mut changed = Vec::new();
    let mut skipped = Vec::new();
    if let Some(metadata) = changes.metadata {
        if metadata.entity_id != provider.entity_id {
            return Err(Error::invalid(
                "entity_id_mismatch",
                format!(
                    "the metadata is for the IdP {}, not {}; register another IdP with `authctl saml add`",
                    metadata.entity_id, provider.entity_id
                ),
            ));
        }
        for cert in metadata.certificates {
            let fingerprint = hex(&Sha256::digest(&cert));
            if removed.contains(&fingerprint) {
                // Removed on purpose (perhaps compromised): a metadata refresh does not undo that.
                skipped.push(fingerprint);
            } else if !certificates.contains(&cert) {
                certificates.push(cert);
            }
        }
        model.sso_url = Set(metadata.sso_url);
        model.metadata_xml = Set(metadata.xml);
        changed.push("metadata");
    }
    for wanted in &changes.remove_certificates {
        let wanted = wanted.replace(':', "").to_ascii_lowercase();
        if wanted.len() < 8 {
            return Err(Error::invalid(
                "invalid_fingerprint",
                "give at least 8 hex digits of the certificate's SHA-256 fingerprint",
            ));
        }
        let before = certificates.len();
        certificates.retain(|c| {
            let fingerprint = hex(&Sha256::digest(c));
            let matches = fingerprint.starts_with(&wanted);
            if matches && !removed.contains(&fingerprint) {
                removed.push(fingerprint);
            }
            !matches
        });
        if certificates.len() == before {
            return Err(Error::NotFound("certificate with that fingerprint"));
        }
        changed.push("certificates");
    }
    if certificates.is_empty() {
        return Err(Error::invalid(
            "last_certificate",
            "a provider must keep at least one signing certificate",
        ));
    }
    model.certificates = Set(encode_certificates(&certificates));
    model.removed_certificates = Set(json!(removed).to_string());
    if let Some(domains) = &changes.domains {
        let domains = dedup_domains(domains)?;
        claim_domains(&txn, &provider.id, &domains).await?;
        changed.push("domains");
    }
    if let Some(a) = changes.email_attribute {
        model.email_attribute = Set(check_attribute(a)?);
        changed.push("emailAttribute");
    }
    if let Some(a) = changes.name_attribute {
        model.name_attribute = Set(check_attribute(a)?);
        changed.push("nameAttribute");
    }
    if let Some(a) = changes.groups_attribute {
        model.groups_attribute = Set(check_attribute(a)?);
        changed.push("groupsAttribute");
    }
    if let Some(map) = changes.group_roles {
        model.group_roles = Set(json!(map).to_string());
        changed.push("groupRoles");
    }
    if let Some(role) = changes.default_role {
        model.default_role = Set(role.as_deref().map(check_role).transpose()?);
        changed.push("defaultRole");
    }
    if let Some(policy) = changes.link_policy {
        model.link_policy = Set(policy.as_str().to_owned());
        changed.push("linkPolicy");
    }
    if let Some(contexts) = &changes.mfa_contexts {
        model.mfa_contexts = Set(check_mfa_contexts(contexts)?);
        changed.push("trustedMfaContexts");
    }
    model.updated_at = Set(now);
    let updated = saml_provider::Entity::update(model).exec(&txn).await?;
    audit::Event::new(actor, "saml_provider_updated")
        .detail(json!({ "provider": name, "changed": changed, "certificatesNotReadded": skipped }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    view(ctx, updated).await
}

/// `authctl saml remove NAME`: the provider, its domains and pending requests go; users stay.
pub async fn remove(ctx: &AppContext, actor: &Actor, name: &str, now: DateTime<Utc>) -> Result<()> {
    let txn = ctx.db.begin().await?;
    let provider = find(&txn, name).await?;
    saml_domain::Entity::delete_many()
        .filter(saml_domain::Column::ProviderId.eq(provider.id.as_str()))
        .exec(&txn)
        .await?;
    crate::entity::saml_request::Entity::delete_many()
        .filter(crate::entity::saml_request::Column::ProviderId.eq(provider.id.as_str()))
        .exec(&txn)
        .await?;
    saml_provider::Entity::delete_by_id(provider.id.as_str())
        .exec(&txn)
        .await?;
    audit::Event::new(actor, "saml_provider_removed")
        .detail(json!({ "provider": name, "entityId": provider.entity_id }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_roles_are_checked() {
        assert_eq!(
            normalize_domain(" @Example.COM ").expect("valid"),
            "example.com"
        );
        for bad in ["localhost", "exa mple.com", "-x.com", "a..b", ""] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        assert_eq!(
            GroupRole::parse("Engineering Admins=admin").expect("valid"),
            GroupRole {
                group: "Engineering Admins".into(),
                role: "admin".into()
            }
        );
        assert!(GroupRole::parse("no-role=").is_err());
        assert!(GroupRole::parse("g=bad role").is_err());
    }
}
