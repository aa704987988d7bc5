//! An identity provider's SAML metadata: fetched (bounded, from a URL) or read from a file,
//! parsed, its signing certificates and SSO endpoint taken out.
use chrono::{DateTime, Utc};
use openssl::x509::X509;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::service_provider::ServiceProvider;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The largest metadata document accepted (file or URL).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

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

pub(super) fn certificate_info(der: &[u8]) -> CertificateInfo {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
