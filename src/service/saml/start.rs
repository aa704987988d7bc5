//! Starting an SSO login: the domain lookup, a signed AuthnRequest remembered for its one
//! Response, and the browser binding (a redirect). SSO step-up starts here too.
use std::time::Duration;

use chrono::{DateTime, Utc};
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer};
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{EntityDescriptor, KeyDescriptor};
use samael::service_provider::ServiceProvider;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use url::Url;

use super::providers::{certificates_of, find};
use super::sp::acs_url;
use crate::clock::span;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{saml_provider, saml_request, sso_identity};
use crate::error::{Error, Result};
use crate::service::ClientInfo;
use crate::service::sessions::{self};
use crate::tokens;

/// A started login: where to send the browser, and the cookie that binds the request to it.
pub struct Started {
    pub redirect: Url,
    /// The binding cookie's value (random; the database keeps only its hash).
    pub binding: String,
    pub ttl: Duration,
}

/// The answer to `GET /sso/lookup`.
pub async fn lookup(ctx: &AppContext, raw_email: &str) -> Result<Option<String>> {
    let email = Email::parse(raw_email)?;
    Ok(
        crate::service::identities::provider_for_domain(&ctx.db, email.domain())
            .await?
            .map(|p| p.name),
    )
}

/// Checks a post-login target: a path on this site, never another origin.
pub fn safe_target(raw: Option<&str>) -> Result<String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok("/".into());
    };
    // A plain absolute path: no `//` or dot segments anywhere (a frontend reading the path must
    // not find another origin in it), ASCII only.
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let fine = raw.starts_with('/')
        && !path.contains("//")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        && raw.len() <= 2048
        && raw.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if fine {
        Ok(raw.to_owned())
    } else {
        Err(Error::invalid(
            "invalid_redirect",
            "the redirect target must be a path on this site, such as /account",
        ))
    }
}

/// `GET /sso/login?stepUp=true`: the signed-in SSO user re-authenticates at their IdP
/// (`ForceAuthn`); the Response then opens the step-up window of this very session.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id, session_id = %auth.session.id))]
pub async fn start_step_up(
    ctx: &AppContext,
    auth: &sessions::Authenticated,
    target: Option<&str>,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Started> {
    let target = safe_target(target)?;
    if auth.user.totp_enabled_at.is_some() {
        // The IdP's login does not replace the factor this account has here.
        return Err(second_factor_required());
    }
    let identity = sso_identity::Entity::find()
        .filter(sso_identity::Column::UserId.eq(auth.user.id.as_str()))
        .order_by_desc(sso_identity::Column::LastLoginAt)
        .one(&ctx.db)
        .await?;
    let provider = match identity {
        // By entity ID: the provider may have been removed and registered again.
        Some(identity) => {
            saml_provider::Entity::find()
                .filter(saml_provider::Column::EntityId.eq(identity.idp_entity_id.as_str()))
                .one(&ctx.db)
                .await?
        }
        None => None,
    }
    .ok_or_else(|| {
        Error::invalid(
            "no_sso_identity",
            "this account does not sign in through a SAML provider; confirm with POST /auth/confirm",
        )
    })?;
    begin(
        ctx,
        &provider,
        target,
        Some(&auth.session.id),
        binding,
        client,
        now,
    )
    .await
}

fn second_factor_required() -> Error {
    Error::forbidden(
        "second_factor_required",
        "this account uses two-factor authentication: confirm with {\"code\"} at POST /auth/confirm",
    )
}

/// `GET /sso/login`: picks the provider (by address domain or by name), stores a request with
/// a 256-bit ID bound to the browser's binding cookie (made when missing), and returns the IdP
/// URL carrying a signed AuthnRequest (HTTP-Redirect binding).
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn start(
    ctx: &AppContext,
    email: Option<&str>,
    provider: Option<&str>,
    target: Option<&str>,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Started> {
    let target = safe_target(target)?;
    let provider = match (email, provider) {
        (_, Some(name)) => find(&ctx.db, name).await?,
        (Some(raw), None) => {
            let email = Email::parse(raw)?;
            crate::service::identities::provider_for_domain(&ctx.db, email.domain())
                .await?
                .ok_or_else(|| {
                    Error::invalid(
                        "sso_not_configured",
                        format!("no single sign-on provider serves {}", email.domain()),
                    )
                })?
        }
        (None, None) => {
            return Err(Error::invalid(
                "email_or_provider_required",
                "give ?email=<address> or ?provider=<name>",
            ));
        }
    };
    begin(ctx, &provider, target, None, binding, client, now).await
}

async fn begin(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    target: String,
    step_up_session: Option<&str>,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Started> {
    crate::service::throttle::per_ip_per_hour(
        &ctx.db,
        "sso-ip",
        client.ip,
        ctx.config.saml.logins_per_ip_per_hour,
        now,
    )
    .await?;
    let key = super::sp_key(ctx).await?;
    let id = format!("_{}", tokens::generate());
    // One binding per browser: logins started in two tabs both stay answerable.
    let binding = binding
        .filter(|b| {
            b.len() == 43
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .map_or_else(tokens::generate, str::to_owned);
    let ttl = ctx.config.saml.request_ttl;
    saml_request::Entity::insert(saml_request::ActiveModel {
        id: Set(id.clone()),
        provider_id: Set(provider.id.clone()),
        binding_hash: Set(tokens::hash(&binding)),
        target: Set(target),
        step_up_session_id: Set(step_up_session.map(str::to_owned)),
        created_at: Set(now),
        expires_at: Set(now + span(ttl)),
    })
    .exec_without_returning(&ctx.db)
    .await?;
    let mut sp = service_provider(ctx, provider, EntityDescriptor::default());
    sp.force_authn = step_up_session.is_some();
    let internal = |e: Box<dyn std::error::Error>| {
        Error::Internal(anyhow::anyhow!("cannot build the AuthnRequest: {e}"))
    };
    let mut request = sp
        .make_authentication_request(&provider.sso_url)
        .map_err(internal)?;
    request.id = id;
    request.issue_instant = now;
    let redirect = request
        .signed_redirect("", &key.key)
        .map_err(internal)?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the AuthnRequest has no destination")))?;
    Ok(Started {
        redirect,
        binding,
        ttl,
    })
}

pub(super) fn service_provider(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    idp_metadata: EntityDescriptor,
) -> ServiceProvider {
    ServiceProvider {
        entity_id: Some(super::sp_entity_id(&ctx.config)),
        acs_url: Some(acs_url(&ctx.config, &provider.name)),
        idp_metadata,
        allow_idp_initiated: false,
        max_clock_skew: chrono::Duration::from_std(ctx.config.saml.clock_skew)
            .unwrap_or_else(|_| chrono::Duration::seconds(120)),
        allowed_signature_algorithms: Some(vec![
            AllowedSignatureAlgorithm::RsaSha256,
            AllowedSignatureAlgorithm::RsaSha384,
            AllowedSignatureAlgorithm::RsaSha512,
            AllowedSignatureAlgorithm::EcdsaSha256,
            AllowedSignatureAlgorithm::EcdsaSha384,
            AllowedSignatureAlgorithm::EcdsaSha512,
        ]),
        ..ServiceProvider::default()
    }
}

/// The provider's stored metadata with exactly its accepted signing certificates.
pub(super) fn idp_descriptor(provider: &saml_provider::Model) -> Option<EntityDescriptor> {
    let mut descriptor: EntityDescriptor = provider.metadata_xml.parse().ok()?;
    let certificates = certificates_of(provider);
    if certificates.is_empty() {
        return None;
    }
    let keys = vec![KeyDescriptor {
        key_use: Some("signing".into()),
        key_info: KeyInfo {
            id: None,
            x509_data: Some(X509Data {
                certificates: certificates
                    .iter()
                    .map(|c| {
                        samael::crypto::mime_encode_x509_cert(&CertificateDer::from(c.clone()))
                    })
                    .collect(),
            }),
        },
        encryption_methods: None,
    }];
    let idps = descriptor.idp_sso_descriptors.as_mut()?;
    for idp in idps.iter_mut() {
        idp.key_descriptors = keys.clone();
    }
    descriptor.entity_id = Some(provider.entity_id.clone());
    Some(descriptor)
}
