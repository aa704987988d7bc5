//! The start-up self-test: signature checking must be live before `serve` accepts a login.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use openssl::x509::X509;
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProvider;

use super::metadata::parse_metadata;
use super::sp::generate_sp_key;
use crate::config::Config;
use crate::error::{Error, Result};

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
}
