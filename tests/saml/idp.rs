//! A real SAML identity provider for the tests: a key pair made here, metadata, and Responses
//! signed by signxml (`tests/saml/idp.py`) at the moment a test needs them.
#![allow(dead_code)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, after `scripts/saml-idp-setup.sh` made sure signxml is installed.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = std::env::var_os("AUTHCTL_SAML_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target/saml-venv"));
        let status = Command::new(repo().join("scripts/saml-idp-setup.sh"))
            .env("AUTHCTL_SAML_VENV", &venv)
            .status()
            .expect("run scripts/saml-idp-setup.sh");
        assert!(status.success(), "scripts/saml-idp-setup.sh failed");
        venv.join("bin/python")
    })
}

/// Which kind of key the IdP signs with.
#[derive(Clone, Copy)]
pub enum KeyKind {
    Rsa,
    Ec,
}

pub struct Idp {
    pub entity_id: String,
    pub sso_url: String,
    pub key: PathBuf,
    pub cert: PathBuf,
    pub cert_der: Vec<u8>,
    pub kind: KeyKind,
    _dir: tempfile::TempDir,
}

fn key_pair(kind: KeyKind) -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509NameBuilder};

    let key = match kind {
        KeyKind::Rsa => PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")),
        KeyKind::Ec => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("curve");
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec"))
        }
    }
    .expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "test-idp").expect("cn");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_version(2).expect("version");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    let (from, to) = (
        Asn1Time::days_from_now(0).expect("time"),
        Asn1Time::days_from_now(365).expect("time"),
    );
    builder.set_not_before(&from).expect("not before");
    builder.set_not_after(&to).expect("not after");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = builder.build();
    (
        key.private_key_to_pem_pkcs8().expect("pem"),
        cert.to_pem().expect("pem"),
    )
}

impl Idp {
    pub fn new(entity_id: &str) -> Self {
        Self::with_key(entity_id, KeyKind::Rsa)
    }

    pub fn with_key(entity_id: &str, kind: KeyKind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (key_pem, cert_pem) = key_pair(kind);
        let key = dir.path().join("idp-key.pem");
        let cert = dir.path().join("idp-cert.pem");
        std::fs::write(&key, key_pem).expect("write key");
        std::fs::write(&cert, &cert_pem).expect("write cert");
        let cert_der = openssl::x509::X509::from_pem(&cert_pem)
            .and_then(|c| c.to_der())
            .expect("der");
        Self {
            entity_id: entity_id.to_owned(),
            sso_url: format!("{entity_id}/sso"),
            key,
            cert,
            cert_der,
            kind,
            _dir: dir,
        }
    }

    /// The IdP's metadata: entity ID, a signing certificate, an HTTP-Redirect SSO service.
    pub fn metadata(&self) -> String {
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"#,
            self.entity_id,
            STANDARD.encode(&self.cert_der),
            self.sso_url
        )
    }

    /// A Response signed by this IdP's key: `fields` are idp.py's inputs (they override the
    /// key, certificate, issuer and algorithm set here). Returns what idp.py printed.
    pub fn sign(&self, fields: Value) -> String {
        let mut input = json!({
            "key": self.key,
            "cert": self.cert,
            "issuer": self.entity_id,
            "algorithm": match self.kind { KeyKind::Rsa => "rsa-sha256", KeyKind::Ec => "ecdsa-sha256" },
        });
        for (k, v) in fields.as_object().expect("an object").clone() {
            input[k] = v;
        }
        let mut child = Command::new(python())
            .arg(repo().join("tests/saml/idp.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run idp.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.to_string().as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("idp.py");
        assert!(
            out.status.success(),
            "idp.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The same, as XML (for tests that tamper with it).
    pub fn sign_xml(&self, mut fields: Value) -> String {
        fields["output"] = json!("xml");
        self.sign(fields)
    }
}

/// The base64 a tampered XML document travels as.
pub fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}

/// The AuthnRequest inside an HTTP-Redirect URL: (its XML, the query parameters).
pub fn authn_request(location: &str) -> (String, Vec<(String, String)>) {
    use std::io::Read;
    let url = url::Url::parse(location).expect("a URL");
    let params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let encoded = params
        .iter()
        .find(|(k, _)| k == "SAMLRequest")
        .map(|(_, v)| v.clone())
        .expect("SAMLRequest");
    let deflated = STANDARD.decode(encoded).expect("base64");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut xml)
        .expect("inflate");
    (xml, params)
}

/// The value of the first `name="..."` attribute in `xml`.
pub fn attribute(xml: &str, name: &str) -> String {
    let start = xml
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + name.len()
        + 3;
    xml[start..start + xml[start..].find('"').expect("closing quote")].to_owned()
}
