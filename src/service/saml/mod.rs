//! SAML 2.0 single sign-on: registered identity providers (from their metadata), the e-mail
//! domains each one owns, this service provider's key and metadata. `login` holds the flow.
//!
//! SAML.md lists what samael leaves to us; every item is closed here or in `login`/`prefilter`.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::service_provider::ServiceProvider;
use samael::traits::ToXml;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::context::AppContext;
use crate::entity::{saml_domain, saml_provider, saml_sp_key};
use crate::error::{Error, Result};

use super::{Actor, audit};

pub mod login;
pub mod prefilter;

/// The largest metadata document accepted (file or URL).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

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

/// What an IdP's metadata document says that we use.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// The SingleSignOnService location for the HTTP-Redirect binding.
    pub sso_url: String,
    /// DER signing certificates.
    pub certificates: Vec<Vec<u8>>,
    pub xml: String,
}

/// Parses IdP metadata. Refuses a document with a DTD, without an IDPSSODescriptor, without a
/// signing certificate (samael would then accept unsigned responses) or without an
/// HTTP-Redirect SingleSignOnService.
pub fn parse_metadata(xml: &str) -> Result<IdpMetadata> {
    let bad = |message: String| Error::invalid("invalid_metadata", message);
    if xml.len() > MAX_METADATA_BYTES {
        return Err(bad(format!(
            "the metadata is larger than {} KiB",
            MAX_METADATA_BYTES / 1024
        )));
    }
    if has_doctype(xml) {
        return Err(bad(
            "the metadata contains a DOCTYPE, which is not accepted".into(),
        ));
    }
    let descriptor: EntityDescriptor = xml
        .parse()
        .map_err(|e| bad(format!("the metadata is not a SAML EntityDescriptor ({e})")))?;
    let entity_id = descriptor
        .entity_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| bad("the metadata has no entityID".into()))?;
    if descriptor
        .idp_sso_descriptors
        .as_ref()
        .is_none_or(|d| d.is_empty())
    {
        return Err(bad(
            "the metadata has no IDPSSODescriptor: it does not describe an identity provider"
                .into(),
        ));
    }
    let sp = ServiceProvider {
        idp_metadata: descriptor,
        ..ServiceProvider::default()
    };
    let certificates: Vec<Vec<u8>> = sp
        .idp_signing_certs()
        .map_err(|_| bad("a certificate in the metadata is not valid base64 DER".into()))?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.der_data().to_vec())
        .collect();
    if certificates.is_empty() {
        return Err(Error::invalid(
            "no_signing_certificate",
            "the metadata has no signing certificate (a KeyDescriptor with use=\"signing\"); without one no response could be verified",
        ));
    }
    for der in &certificates {
        X509::from_der(der)
            .map_err(|_| bad("a signing certificate in the metadata cannot be parsed".into()))?;
    }
    let sso_url = sp
        .sso_binding_location(HTTP_REDIRECT_BINDING)
        .ok_or_else(|| {
            bad("the metadata has no SingleSignOnService with the HTTP-Redirect binding".into())
        })?;
    url::Url::parse(&sso_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            bad(format!(
                "the SingleSignOnService location `{sso_url}` is not an http(s) URL"
            ))
        })?;
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
        xml: xml.to_owned(),
    })
}

fn has_doctype(xml: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::DocType(_)) => return true,
            Ok(quick_xml::events::Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Fetches metadata from `url` (10 s, at most `MAX_METADATA_BYTES`). The certificates in it
/// decide whose signatures are believed, so only https is accepted (plain http only from a
/// loopback address), and redirects must stay on https.
pub async fn fetch_metadata(url: &str) -> Result<String> {
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https" || (u.scheme() == "http" && loopback(u)))
        .ok_or_else(|| {
            Error::invalid(
                "invalid_url",
                format!("`{url}` is not an https URL (metadata decides which signatures are trusted; use https, or --metadata-file)"),
            )
        })?;
    let fail = |e: String| {
        Error::invalid(
            "metadata_unavailable",
            format!("cannot fetch the metadata from {parsed}: {e}"),
        )
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() != "https" {
                attempt.error("a redirect left https")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut response = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("the server answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_METADATA_BYTES {
            return Err(fail("the document is too large".into()));
        }
    }
    String::from_utf8(body).map_err(|_| fail("the document is not UTF-8".into()))
}

/// A signing certificate as shown to operators.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    pub subject: String,
    pub not_after: Option<DateTime<Utc>>,
}

fn certificate_info(der: &[u8]) -> CertificateInfo {
    let fingerprint = hex(&Sha256::digest(der));
    let Ok(cert) = X509::from_der(der) else {
        return CertificateInfo {
            fingerprint,
            subject: "(unreadable)".into(),
            not_after: None,
        };
    };
    let subject = cert
        .subject_name()
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let not_after = openssl::asn1::Asn1Time::from_unix(0)
        .ok()
        .and_then(|epoch| epoch.diff(cert.not_after()).ok())
        .and_then(|d| DateTime::from_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs), 0));
    CertificateInfo {
        fingerprint,
        subject,
        not_after,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// Our entity ID: the same for every IdP.
pub fn sp_entity_id(config: &Config) -> String {
    format!("{}/saml/metadata", config.public_base())
}

/// The Assertion Consumer Service URL for one provider.
pub fn acs_url(config: &Config, provider: &str) -> String {
    format!("{}/saml/{provider}/acs", config.public_base())
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

/// This service provider's signing key and certificate.
pub struct SpKey {
    pub key: PKey<Private>,
    pub certificate_der: Vec<u8>,
}

const SP_KEY_ID: &str = "default";

/// Loads the SP key from `saml.sp_key_file`/`sp_cert_file`, or from the database, generating
/// and storing one (RSA-2048, self-signed for ten years) on first use.
pub async fn sp_key(ctx: &AppContext) -> Result<SpKey> {
    let internal = |m: String| Error::Internal(anyhow::anyhow!(m));
    if let (Some(key_file), Some(cert_file)) =
        (&ctx.config.saml.sp_key_file, &ctx.config.saml.sp_cert_file)
    {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| internal(format!("cannot read {}: {e}", p.display())))
        };
        let key = PKey::private_key_from_pem(&read(key_file)?)
            .map_err(|_| internal(format!("{} is not a PEM private key", key_file.display())))?;
        let cert = X509::from_pem(&read(cert_file)?)
            .map_err(|_| internal(format!("{} is not a PEM certificate", cert_file.display())))?;
        let matches = cert
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(internal(format!(
                "the certificate {} is not for the key {}",
                cert_file.display(),
                key_file.display()
            )));
        }
        let certificate_der = cert.to_der().map_err(|e| internal(e.to_string()))?;
        return Ok(SpKey {
            key,
            certificate_der,
        });
    }
    let stored = match saml_sp_key::Entity::find_by_id(SP_KEY_ID)
        .one(&ctx.db)
        .await?
    {
        Some(row) => row,
        None => {
            // One generation per process at a time, off the async threads: an RSA key takes a
            // while, and a burst of first logins must neither make one each nor stall the runtime.
            static GENERATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _one = GENERATING.lock().await;
            if let Some(row) = saml_sp_key::Entity::find_by_id(SP_KEY_ID)
                .one(&ctx.db)
                .await?
            {
                return open_sp_key(ctx, &row).await;
            }
            let config = ctx.config.clone();
            let (key_der, cert_pem) = tokio::task::spawn_blocking(move || generate_sp_key(&config))
                .await
                .map_err(|e| internal(format!("cannot generate the SAML key: {e}")))?
                .map_err(|e| internal(format!("cannot generate the SAML key: {e}")))?;
            let row = saml_sp_key::ActiveModel {
                id: Set(SP_KEY_ID.into()),
                private_key: Set(ctx.key.seal(&ctx.config, &key_der).await?),
                certificate_pem: Set(cert_pem),
                created_at: Set(ctx.now()),
            };
            // Another replica may have stored one first: keep theirs.
            saml_sp_key::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(saml_sp_key::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&ctx.db)
                .await?;
            saml_sp_key::Entity::find_by_id(SP_KEY_ID)
                .one(&ctx.db)
                .await?
                .ok_or(Error::NotFound("SAML key"))?
        }
    };
    open_sp_key(ctx, &stored).await
}

async fn open_sp_key(ctx: &AppContext, stored: &saml_sp_key::Model) -> Result<SpKey> {
    let internal = |m: String| Error::Internal(anyhow::anyhow!(m));
    let key_der = ctx.key.open(&ctx.config, &stored.private_key).await?;
    let key = PKey::private_key_from_der(&key_der)
        .map_err(|_| internal("the stored SAML key cannot be read".into()))?;
    let cert = X509::from_pem(stored.certificate_pem.as_bytes())
        .map_err(|_| internal("the stored SAML certificate cannot be read".into()))?;
    Ok(SpKey {
        key,
        certificate_der: cert.to_der().map_err(|e| internal(e.to_string()))?,
    })
}

fn generate_sp_key(
    config: &Config,
) -> std::result::Result<(Vec<u8>, String), openssl::error::ErrorStack> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::x509::X509NameBuilder;

    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    let host = config.public_url.host_str().unwrap_or("authctl");
    name.append_entry_by_text("CN", &format!("authctl SAML SP {host}"))?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(3650)?);
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let cert = builder.build();
    Ok((
        key.private_key_to_pkcs8()?,
        String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
    ))
}

/// Our SP metadata for one provider: entity ID, its ACS URL (HTTP-POST), our signing
/// certificate, and that we sign AuthnRequests and want assertions signed.
pub async fn sp_metadata(ctx: &AppContext, name: &str) -> Result<String> {
    let provider = find(&ctx.db, name).await?;
    let key = sp_key(ctx).await?;
    let acs = acs_url(&ctx.config, &provider.name);
    let sp = ServiceProvider {
        entity_id: Some(sp_entity_id(&ctx.config)),
        acs_url: Some(acs.clone()),
        slo_url: Some(acs),
        certificate: Some(key.certificate_der.clone().into()),
        metadata_valid_duration: Some(chrono::Duration::days(365)),
        ..ServiceProvider::default()
    };
    let internal = |m: String| Error::Internal(anyhow::anyhow!(m));
    let mut descriptor = sp
        .metadata()
        .map_err(|e| internal(format!("cannot build the SP metadata: {e}")))?;
    if let Some(sp_descriptors) = descriptor.sp_sso_descriptors.as_mut() {
        for d in sp_descriptors {
            d.authn_requests_signed = Some(true);
            d.want_assertions_signed = Some(true);
            d.single_logout_services = None;
            // One signing key; samael also lists it for encryption, which we do not accept.
            if let Some(keys) = d.key_descriptors.as_mut() {
                keys.retain(|k| k.encryption_methods.is_none());
            }
        }
    }
    descriptor
        .to_string()
        .map_err(|e| internal(format!("cannot write the SP metadata: {e:?}")))
}

/// Deletes expired pending requests and replay-cache entries; returns how many rows went.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    use crate::entity::{saml_replay, saml_request};
    let requests = saml_request::Entity::delete_many()
        .filter(saml_request::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    let replays = saml_replay::Entity::delete_many()
        .filter(saml_replay::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(requests + replays)
}

/// Proves at startup that signature checking is live (samael built without `xmlsec`, or an
/// IdP without a certificate, would accept anything): an unsigned but otherwise valid Response for a
/// provider with a signing certificate must be refused for its signature.
pub fn self_test(now: DateTime<Utc>) -> Result<()> {
    let fail = |m: &str| Error::Internal(anyhow::anyhow!("SAML self-test failed: {m}"));
    let (_, cert_pem) =
        generate_sp_key(&Config::default()).map_err(|_| fail("cannot make a key"))?;
    let cert = X509::from_pem(cert_pem.as_bytes())
        .and_then(|c| c.to_der())
        .map_err(|_| fail("cannot read the certificate"))?;
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.self-test"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.self-test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        STANDARD.encode(&cert)
    );
    let parsed = parse_metadata(&metadata)?;
    let t = |offset: i64| {
        (now + chrono::Duration::seconds(offset)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (sp_id, acs) = (
        "https://sp.self-test/saml/metadata",
        "https://sp.self-test/saml/t/acs",
    );
    let response = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="{now}" Destination="{acs}" InResponseTo="_q1"><saml:Issuer>https://idp.self-test</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="_a1" Version="2.0" IssueInstant="{now}"><saml:Issuer>https://idp.self-test</saml:Issuer><saml:Subject><saml:NameID>forged@self-test.example</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{acs}" InResponseTo="_q1"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{earlier}" NotOnOrAfter="{later}"><saml:AudienceRestriction><saml:Audience>{sp_id}</saml:Audience></saml:AudienceRestriction></saml:Conditions></saml:Assertion></samlp:Response>"#,
        now = t(0),
        earlier = t(-60),
        later = t(300),
    );
    let descriptor: EntityDescriptor = parsed
        .xml
        .parse()
        .map_err(|_| fail("cannot read its own metadata"))?;
    let sp = ServiceProvider {
        entity_id: Some(sp_id.into()),
        acs_url: Some(acs.into()),
        idp_metadata: descriptor,
        ..ServiceProvider::default()
    };
    match sp.parse_xml_response(&response, Some(&["_q1"])) {
        Err(samael::service_provider::Error::FailedToValidateSignature) => Ok(()),
        Err(_) => Err(fail(
            "an unsigned response was refused, but not for its missing signature",
        )),
        Ok(_) => Err(fail(
            "an unsigned response was accepted: signature verification is off (samael built without xmlsec?)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_test_passes_with_xmlsec() {
        use crate::clock::Clock;
        self_test(crate::clock::SystemClock.now()).expect("signature checking is live");
    }

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let xml = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
        let err = parse_metadata(xml).expect_err("refused");
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    code: "no_signing_certificate",
                    ..
                }
            ),
            "{err}"
        );
        let doctype = format!("<!DOCTYPE x>{xml}");
        assert!(matches!(
            parse_metadata(&doctype),
            Err(Error::InvalidInput {
                code: "invalid_metadata",
                ..
            })
        ));
    }

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
