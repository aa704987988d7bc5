//! Onboarding an SSO domain from the CLI, end to end: `saml add` from a metadata file, then
//! `authctl serve`, `/sso/login`, a Response signed by a real IdP library, a signed-in user with
//! roles; certificate rollover with `saml update`; `saml remove`.
use serde_json::{Value, json};

use crate::helpers::Env;
use crate::idp::{self, Idp};

const ENTITY: &str = "https://idp.acme.test";

/// Signs in `email` through the provider `acme` with a Response signed by `idp`; returns the
/// ACS answer's status and the browser.
async fn sso_login(base: &str, idp: &Idp, email: &str, groups: &[&str]) -> (u16, reqwest::Client) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let start = browser
        .get(format!("{base}/sso/login?email={email}"))
        .send()
        .await
        .expect("sso login");
    assert_eq!(start.status(), 302);
    let location = start.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (request, _) = idp::authn_request(&location);
    let acs = format!("{base}/saml/acme/acs");
    let signed = idp.sign(json!({
        "destination": acs,
        "recipient": acs,
        "audience": format!("{base}/saml/metadata"),
        "in_response_to": idp::attribute(&request, "ID"),
        "name_id": email,
        "attributes": { "email": [email], "displayName": ["Alice Example"], "groups": groups },
    }));
    let response = browser
        .post(&acs)
        .form(&[("SAMLResponse", signed.as_str())])
        .send()
        .await
        .expect("acs");
    (response.status().as_u16(), browser)
}

/// Serves `body` to one HTTP request on a free port; returns its URL.
fn serve_once(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metadata", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn fail(env: &Env, args: &[&str]) -> String {
    fail_with(&mut env.cmd(), args)
}

fn fail_with(cmd: &mut assert_cmd::Command, args: &[&str]) -> String {
    let output = cmd.args(args).output().expect("run");
    // 1 failed, or 3 when what it names does not exist.
    assert!(
        matches!(output.status.code(), Some(1 | 3)),
        "{args:?} should fail"
    );
    assert!(output.stdout.is_empty(), "{args:?} printed on stdout");
    String::from_utf8(output.stderr).expect("utf-8")
}

#[tokio::test]
async fn onboarding_an_sso_domain_from_the_cli() {
    let env = Env::migrated();
    let idp = Idp::new(ENTITY);
    let metadata = env.dir.path().join("acme-idp.xml");
    std::fs::write(&metadata, idp.metadata()).expect("write metadata");
    let metadata = metadata.to_str().expect("utf-8 path");

    // Metadata without a signing certificate is refused, and nothing is registered.
    let unsigned = env.dir.path().join("unsigned.xml");
    let without_key = idp.metadata();
    let cut = without_key.find("<md:KeyDescriptor").expect("key");
    let end = without_key.find("</md:KeyDescriptor>").expect("end") + "</md:KeyDescriptor>".len();
    std::fs::write(
        &unsigned,
        format!("{}{}", &without_key[..cut], &without_key[end..]),
    )
    .expect("write");
    let err = fail(
        &env,
        &[
            "saml",
            "add",
            "acme",
            "--metadata-file",
            unsigned.to_str().expect("path"),
            "--domain",
            "acme.test",
        ],
    );
    assert!(err.contains("no signing certificate"), "{err}");
    assert_eq!(env.json(&["saml", "list"]), json!([]));

    // saml add, scripted: -o json.
    let added = env.json(&[
        "saml",
        "add",
        "acme",
        "--metadata-file",
        metadata,
        "--domain",
        "acme.test",
        "--domain",
        "ACME-corp.test",
        "--name-attribute",
        "displayName",
        "--map-group",
        "engineering=developer",
        "--map-group",
        "admins=admin",
        "--default-role",
        "employee",
    ]);
    assert_eq!(added["name"], "acme");
    assert_eq!(added["entityId"], ENTITY);
    assert_eq!(added["domains"], json!(["acme-corp.test", "acme.test"]));
    assert_eq!(added["linkPolicy"], "none");
    let first_fingerprint = added["certificates"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert!(added["certificates"][0]["notAfter"].is_string(), "{added}");

    // A domain already owned, or a second registration of the IdP, is refused.
    let other = Idp::new("https://idp.other.test");
    let other_metadata = env.dir.path().join("other.xml");
    std::fs::write(&other_metadata, other.metadata()).expect("write");
    let err = fail(
        &env,
        &[
            "saml",
            "add",
            "other",
            "--metadata-file",
            other_metadata.to_str().expect("path"),
            "--domain",
            "acme.test",
        ],
    );
    assert!(
        err.contains("already belongs to the provider `acme`"),
        "{err}"
    );
    let err = fail(
        &env,
        &[
            "saml",
            "add",
            "again",
            "--metadata-file",
            metadata,
            "--domain",
            "again.test",
        ],
    );
    assert!(
        err.contains("already registered as the provider `acme`"),
        "{err}"
    );
    // Metadata decides which signatures are believed: never over plain http from elsewhere.
    let err = fail(
        &env,
        &[
            "saml",
            "add",
            "other",
            "--metadata-url",
            "http://idp.other.test/metadata",
            "--domain",
            "other.test",
        ],
    );
    assert!(err.contains("not an https URL"), "{err}");
    // The same IdP's metadata from its URL instead, for its own domain.
    let url = serve_once(other.metadata());
    let by_url = env.json(&[
        "saml",
        "add",
        "other",
        "--metadata-url",
        &url,
        "--domain",
        "other.test",
    ]);
    assert_eq!(by_url["entityId"], "https://idp.other.test");
    let err = fail(&env, &["saml", "show", "nope"]);
    assert!(err.contains("no SAML provider is named `nope`"), "{err}");

    // The table and our SP metadata for the IdP admin.
    let list = env.cmd().args(["saml", "list"]).output().expect("run");
    let table = String::from_utf8(list.stdout).expect("utf-8");
    assert!(table.contains("acme") && table.contains(ENTITY), "{table}");
    let sp = env
        .cmd()
        .args(["saml", "metadata", "acme"])
        .output()
        .expect("run");
    assert!(sp.status.success());
    let sp = String::from_utf8(sp.stdout).expect("utf-8");
    assert!(
        sp.contains("/saml/acme/acs") && sp.contains("X509Certificate"),
        "{sp}"
    );

    // The service: an SSO login provisions the user with roles from its groups.
    let (_server, base) = env.serve().await;
    let (status, browser) = sso_login(&base, &idp, "alice@acme.test", &["engineering"]).await;
    assert_eq!(status, 303);
    let me: Value = browser
        .get(format!("{base}/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "alice@acme.test");
    assert_eq!(me["name"], "Alice Example");
    assert_eq!(me["roles"], json!(["developer", "employee"]));
    let shown = env.json(&["users", "show", "alice@acme.test"]);
    assert_eq!(shown["roles"], json!(["developer", "employee"]));
    let shown = env.json(&["saml", "show", "acme"]);
    assert!(shown["lastLoginAt"].is_string(), "{shown}");

    // Certificate rollover: new metadata adds the new certificate; both keys work until the old
    // one is removed.
    let rolled = Idp::new(ENTITY);
    let new_metadata = env.dir.path().join("acme-idp-2027.xml");
    std::fs::write(&new_metadata, rolled.metadata()).expect("write");
    let updated = env.json(&[
        "saml",
        "update",
        "acme",
        "--metadata-file",
        new_metadata.to_str().expect("path"),
    ]);
    assert_eq!(updated["certificates"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        sso_login(&base, &rolled, "alice@acme.test", &[]).await.0,
        303
    );
    assert_eq!(sso_login(&base, &idp, "alice@acme.test", &[]).await.0, 303);
    let updated = env.json(&[
        "saml",
        "update",
        "acme",
        "--remove-certificate",
        &first_fingerprint[..16],
    ]);
    assert_eq!(updated["certificates"].as_array().map(Vec::len), Some(1));
    assert_eq!(sso_login(&base, &idp, "alice@acme.test", &[]).await.0, 401);
    assert_eq!(
        sso_login(&base, &rolled, "alice@acme.test", &["admins"])
            .await
            .0,
        303
    );
    let shown = env.json(&["users", "show", "alice@acme.test"]);
    assert_eq!(
        shown["roles"],
        json!(["admin", "employee"]),
        "stale roles dropped"
    );
    // Importing the old metadata again does not bring the removed certificate back.
    let reimported = env.json(&["saml", "update", "acme", "--metadata-file", metadata]);
    assert_eq!(reimported["certificates"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        reimported["removedCertificates"],
        json!([first_fingerprint])
    );
    assert_eq!(sso_login(&base, &idp, "alice@acme.test", &[]).await.0, 401);

    // remove asks first (and refuses to guess without a terminal), then the domain is free.
    let err = fail(&env, &["saml", "remove", "acme"]);
    assert!(err.contains("--yes") || err.contains("-y"), "{err}");
    env.cmd()
        .args(["saml", "remove", "acme", "-y"])
        .assert()
        .success();
    let lookup: Value = reqwest::get(format!("{base}/sso/lookup?email=alice@acme.test"))
        .await
        .expect("lookup")
        .json()
        .await
        .expect("json");
    assert_eq!(lookup["sso"], false);
}

#[test]
fn the_sp_key_can_come_from_configuration() {
    let env = Env::migrated();
    let idp = Idp::new(ENTITY);
    let metadata = env.dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata()).expect("write");
    env.json(&[
        "saml",
        "add",
        "acme",
        "--metadata-file",
        metadata.to_str().expect("path"),
        "--domain",
        "acme.test",
    ]);
    // Our key pair from files (here: any PEM pair, e.g. one an operator's PKI issued).
    let ours = Idp::new("https://sp-key.test");
    let output = env
        .cmd()
        .env("AUTHCTL_SAML__SP_KEY_FILE", &ours.key)
        .env("AUTHCTL_SAML__SP_CERT_FILE", &ours.cert)
        .args(["saml", "metadata", "acme"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let sp = String::from_utf8(output.stdout).expect("utf-8");
    use base64::Engine;
    let published = base64::engine::general_purpose::STANDARD.encode(&ours.cert_der);
    assert!(
        sp.contains(&published),
        "the configured certificate is published: {sp}"
    );
    // A certificate for another key is refused.
    let err = fail_with(
        env.cmd()
            .env("AUTHCTL_SAML__SP_KEY_FILE", &idp.key)
            .env("AUTHCTL_SAML__SP_CERT_FILE", &ours.cert),
        &["saml", "metadata", "acme"],
    );
    assert!(err.contains("is not for the key"), "{err}");
    // One without the other is a configuration error.
    let err = fail_with(
        env.cmd().env("AUTHCTL_SAML__SP_KEY_FILE", &ours.key),
        &["saml", "metadata", "acme"],
    );
    assert!(
        err.contains("saml.sp_key_file and saml.sp_cert_file"),
        "{err}"
    );
}

#[test]
fn dropping_a_domain_with_update_asks_first_and_names_it() {
    let env = Env::migrated();
    let idp = Idp::new(ENTITY);
    let metadata = env.dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata()).expect("write metadata");
    let metadata = metadata.to_str().expect("path");
    env.json(&[
        "saml",
        "add",
        "acme",
        "--metadata-file",
        metadata,
        "--domain",
        "acme.test",
        "--domain",
        "acme-corp.test",
    ]);

    // Adding a domain (keeping both) needs no confirmation.
    let grown = env.json(&[
        "saml",
        "update",
        "acme",
        "--domain",
        "acme.test",
        "--domain",
        "acme-corp.test",
        "--domain",
        "acme.example",
    ]);
    assert_eq!(grown["domains"].as_array().map(Vec::len), Some(3));

    // Dropping two of them: refused without --yes, naming both, and nothing changes.
    let err = fail(&env, &["saml", "update", "acme", "--domain", "ACME.test"]);
    assert!(
        err.contains("acme-corp.test") && err.contains("acme.example") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        env.json(&["saml", "show", "acme"])["domains"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let shrunk = env.json(&["saml", "update", "acme", "--domain", "acme.test", "--yes"]);
    assert_eq!(shrunk["domains"], json!(["acme.test"]));
}
