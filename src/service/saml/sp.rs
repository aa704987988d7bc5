//! This service provider: its entity ID and ACS URLs, its signing key (from files or generated
//! once and kept sealed in the database) and the SP metadata an IdP admin imports.
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use samael::service_provider::ServiceProvider;
use samael::traits::ToXml;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::providers::find;
use crate::config::Config;
use crate::context::AppContext;
use crate::entity::saml_sp_key;
use crate::error::{Error, Result};

/// Our entity ID: the same for every IdP.
pub fn sp_entity_id(config: &Config) -> String {
    format!("{}/saml/metadata", config.public_base())
}

/// The Assertion Consumer Service URL for one provider.
pub fn acs_url(config: &Config, provider: &str) -> String {
    format!("{}/saml/{provider}/acs", config.public_base())
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

pub(super) fn generate_sp_key(
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
