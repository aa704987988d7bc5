//! SAML single sign-on against Responses signed during the run by a real IdP library (signxml,
//! `tests/saml/idp.py`): the login flow, just-in-time provisioning and roles, link policies,
//! and every attack SAML.md lists, each refused with no user, no session and an audit entry.
use authctl::entity::{audit_log, session, user};
use authctl::service::saml::{self, GroupRole, LinkPolicy, NewProvider};
use authctl::service::{Actor, janitor};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::idp::{self, Idp, KeyKind};
use crate::on_every_backend;

pub(crate) const ACME: &str = "https://idp.acme.test";

pub(crate) struct Provider<'a> {
    pub(crate) name: &'a str,
    pub(crate) domains: &'a [&'a str],
    pub(crate) email_attribute: Option<&'a str>,
    pub(crate) name_attribute: Option<&'a str>,
    pub(crate) groups_attribute: Option<&'a str>,
    pub(crate) map: &'a [(&'a str, &'a str)],
    pub(crate) default_role: Option<&'a str>,
    pub(crate) link: LinkPolicy,
    pub(crate) mfa_contexts: &'a [&'a str],
}

impl Default for Provider<'_> {
    fn default() -> Self {
        Self {
            name: "acme",
            domains: &["acme.test"],
            email_attribute: None,
            name_attribute: None,
            groups_attribute: None,
            map: &[("engineering", "developer"), ("admins", "admin")],
            default_role: None,
            link: LinkPolicy::None,
            mfa_contexts: &[],
        }
    }
}

pub(crate) async fn register(app: &TestApp, idp: &Idp, p: Provider<'_>) {
    let new = NewProvider {
        name: p.name.into(),
        metadata: saml::parse_metadata(&idp.metadata()).expect("metadata"),
        domains: p.domains.iter().map(|d| d.to_string()).collect(),
        email_attribute: p.email_attribute.map(Into::into),
        name_attribute: p.name_attribute.map(Into::into),
        groups_attribute: p.groups_attribute.map(Into::into),
        group_roles: p
            .map
            .iter()
            .map(|(g, r)| GroupRole {
                group: g.to_string(),
                role: r.to_string(),
            })
            .collect(),
        default_role: p.default_role.map(Into::into),
        link_policy: p.link,
        mfa_contexts: p.mfa_contexts.iter().map(|c| c.to_string()).collect(),
    };
    saml::add(&app.ctx, &Actor::cli(), new, app.clock_now())
        .await
        .expect("register the provider");
}

/// One login in progress: the browser that started it and the AuthnRequest's ID.
pub(crate) struct Login {
    pub(crate) browser: reqwest::Client,
    provider: String,
    request_id: String,
}

async fn start(app: &TestApp, browser: &reqwest::Client, query: &str) -> reqwest::Response {
    browser
        .get(app.url(&format!("/sso/login?{query}")))
        .send()
        .await
        .expect("request")
}

/// Starts a login in a new browser for `email`'s provider.
pub(crate) async fn begin(app: &TestApp, email: &str, provider: &str) -> Login {
    begin_in(app, TestApp::browser(), email, provider).await
}

async fn begin_in(app: &TestApp, browser: reqwest::Client, email: &str, provider: &str) -> Login {
    let response = start(app, &browser, &format!("email={email}")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (xml, _) = idp::authn_request(&location);
    let request_id = idp::attribute(&xml, "ID");
    Login {
        browser,
        provider: provider.into(),
        request_id,
    }
}

impl Login {
    /// idp.py's inputs for a correct Response to this request, before `extra` overrides.
    pub(crate) fn fields(&self, app: &TestApp, name_id: &str, extra: Value) -> Value {
        let acs = app.url(&format!("/saml/{}/acs", self.provider));
        let mut fields = json!({
            "destination": acs,
            "recipient": acs,
            "audience": app.url("/saml/metadata"),
            "in_response_to": self.request_id,
            "name_id": name_id,
            "attributes": { "email": [name_id] },
        });
        for (k, v) in extra.as_object().expect("object").clone() {
            fields[k] = v;
        }
        fields
    }

    pub(crate) async fn post(&self, app: &TestApp, saml_response: &str) -> reqwest::Response {
        self.post_with(app, &[("SAMLResponse", saml_response)])
            .await
    }

    async fn post_with(&self, app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
        self.browser
            .post(app.url(&format!("/saml/{}/acs", self.provider)))
            .form(form)
            .send()
            .await
            .expect("request")
    }
}

pub(crate) async fn me(app: &TestApp, browser: &reqwest::Client) -> Value {
    let response = browser.get(app.url("/me")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn users_named(app: &TestApp, email: &str) -> u64 {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .count(&app.ctx.db)
        .await
        .expect("count")
}

async fn sessions(app: &TestApp) -> u64 {
    session::Entity::find()
        .count(&app.ctx.db)
        .await
        .expect("count")
}

/// The reason of the latest `sso_rejected` audit entry.
async fn last_rejection(app: &TestApp) -> Option<String> {
    let row = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("sso_rejected"))
        .order_by_desc(audit_log::Column::Id)
        .one(&app.ctx.db)
        .await
        .expect("audit")?;
    let detail: Value = serde_json::from_str(row.detail.as_deref()?).ok()?;
    detail["reason"].as_str().map(str::to_owned)
}

/// The Response was refused generically, audited with `reason`, and nothing was created.
async fn assert_refused(
    app: &TestApp,
    case: &str,
    response: reqwest::Response,
    reason: &str,
    sessions_before: u64,
    nobody: &[&str],
) {
    let status = response.status();
    let payload: Value = response.json().await.expect("a JSON body");
    assert!(
        matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE
        ),
        "{case}: status {status} {payload}"
    );
    assert_eq!(payload["error"], "sso_failed", "{case}: {payload}");
    assert_eq!(
        last_rejection(app).await.as_deref(),
        Some(reason),
        "{case}: the audited reason"
    );
    assert_eq!(
        sessions(app).await,
        sessions_before,
        "{case}: a session was created"
    );
    for email in nobody {
        assert_eq!(
            users_named(app, email).await,
            0,
            "{case}: {email} was created"
        );
    }
}

on_every_backend!(
    starting_logins_is_limited_per_ip,
    jit_login_creates_then_updates_the_user_and_recomputes_roles,
    either_signature_alone_is_enough,
    a_second_provider_with_other_attribute_names,
    existing_accounts_are_linked_only_by_policy,
    sso_domains_are_told_to_use_sso,
    attacks_are_refused,
);

async fn jit_login_creates_then_updates_the_user_and_recomputes_roles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    register(&app, &idp, Provider::default()).await;

    // The domain lookup a login page makes.
    let lookup = body(app.get("/sso/lookup?email=Alice@ACME.test").await).await;
    assert_eq!(lookup["sso"], true);
    assert_eq!(lookup["provider"], "acme");
    let other = body(app.get("/sso/lookup?email=bob@example.com").await).await;
    assert_eq!(other["sso"], false);

    // /sso/login: a signed AuthnRequest with a 256-bit ID, to the IdP, bound to this browser.
    let browser = TestApp::browser();
    let response = start(&app, &browser, "email=alice@acme.test&redirect=/welcome").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("authctl_saml=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(&idp.sso_url), "{location}");
    let (xml, params) = idp::authn_request(&location);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["SAMLRequest", "SigAlg", "Signature"]);
    assert!(
        params
            .iter()
            .any(|(k, v)| k == "SigAlg" && v.ends_with("rsa-sha256"))
    );
    let sp_key = saml::sp_key(&app.ctx).await.expect("our key");
    let verifier = samael::crypto::UrlVerifier::from_x509(&sp_key.certificate_der.clone().into())
        .expect("verifier");
    let signed_url = url::Url::parse(&location).expect("url");
    assert!(
        verifier
            .verify_signed_request_url(&signed_url)
            .expect("verifiable"),
        "the AuthnRequest is signed with the key our metadata publishes"
    );
    let request_id = idp::attribute(&xml, "ID");
    assert!(request_id.len() > 40, "{request_id}");
    assert_eq!(
        idp::attribute(&xml, "AssertionConsumerServiceURL"),
        app.url("/saml/acme/acs")
    );
    let login = Login {
        browser,
        provider: "acme".into(),
        request_id,
    };

    // The IdP answers; RelayState pointing off-site changes nothing.
    let signed = idp.sign(login.fields(
        &app,
        "alice@acme.test",
        json!({ "attributes": {
            "email": ["alice@acme.test"],
            "name": ["Alice Liddell"],
            "groups": ["engineering", "admins", "unmapped"],
        }}),
    ));
    let response = login
        .post_with(
            &app,
            &[
                ("SAMLResponse", &signed),
                ("RelayState", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/welcome");
    let me1 = me(&app, &login.browser).await;
    assert_eq!(me1["email"], "alice@acme.test");
    assert_eq!(me1["name"], "Alice Liddell");
    assert_eq!(me1["emailVerified"], true);
    assert_eq!(me1["roles"], json!(["admin", "developer"]));
    let alice = user::Entity::find()
        .filter(user::Column::Email.eq("alice@acme.test"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("alice exists");
    assert!(
        alice.password_hash.is_none(),
        "an SSO account has no password"
    );
    let sessions = body(
        login
            .browser
            .get(app.url("/me/sessions"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(sessions[0]["authMethod"], "sso", "{sessions}");

    // The audit says how the IdP authenticated the user.
    let login_entry = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("login"))
        .one(&app.ctx.db)
        .await
        .expect("audit")
        .expect("a login entry");
    let detail: Value =
        serde_json::from_str(login_entry.detail.as_deref().unwrap_or("{}")).expect("json");
    assert_eq!(detail["method"], "sso");
    assert_eq!(detail["provider"], "acme");
    assert_eq!(
        detail["authnContext"],
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    );

    // The same response again: its request is spent.
    let again = login.post(&app, &signed).await;
    assert_refused(
        &app,
        "replayed response",
        again,
        "no_pending_request",
        1,
        &[],
    )
    .await;

    // A later login: the name changes at the IdP, a group is gone: the stale role is dropped.
    let login = begin(&app, "alice@acme.test", "acme").await;
    let signed = idp.sign(login.fields(
        &app,
        "alice@acme.test",
        json!({ "attributes": {
            "email": ["alice@acme.test"],
            "name": ["Alice Pleasance Liddell"],
            "groups": ["engineering"],
        }}),
    ));
    let response = login.post(&app, &signed).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let me2 = me(&app, &login.browser).await;
    assert_eq!(me2["id"], me1["id"], "the same account");
    assert_eq!(me2["name"], "Alice Pleasance Liddell");
    assert_eq!(me2["roles"], json!(["developer"]));
    assert_eq!(users_named(&app, "alice@acme.test").await, 1);

    // The provider remembers its last successful login.
    let view = saml::show(&app.ctx, "acme").await.expect("show");
    assert!(view.last_login_at.is_some());

    // The janitor forgets replay-cache entries once their assertions could no longer be valid.
    let soon = janitor::prune(&app.ctx, app.clock_now(), Some(100))
        .await
        .expect("prune");
    assert_eq!(
        soon.saml, 0,
        "both assertions are still inside their validity"
    );
    let later = app.clock_now() + chrono::Duration::hours(1);
    let report = janitor::prune(&app.ctx, later, Some(100))
        .await
        .expect("prune");
    assert_eq!(report.saml, 2, "two assertions were used");
}

async fn either_signature_alone_is_enough(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    register(&app, &idp, Provider::default()).await;
    // Both logins start in one browser (two tabs) before either is answered.
    let browser = TestApp::browser();
    let first = begin_in(&app, browser.clone(), "assertion-only@acme.test", "acme").await;
    let second = begin_in(&app, browser, "response-only@acme.test", "acme").await;
    for (login, who, extra) in [
        (
            second,
            "response-only@acme.test",
            json!({ "sign_assertion": false }),
        ),
        (
            first,
            "assertion-only@acme.test",
            json!({ "sign_response": false }),
        ),
    ] {
        let response = login
            .post(&app, &idp.sign(login.fields(&app, who, extra)))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{who}");
        assert_eq!(me(&app, &login.browser).await["email"], who);
    }
}

async fn a_second_provider_with_other_attribute_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = Idp::new(ACME);
    register(&app, &acme, Provider::default()).await;
    // Another IdP, ECDSA-signed, with OID attribute names and a default role.
    let globex = Idp::with_key("https://login.globex.test", KeyKind::Ec);
    register(
        &app,
        &globex,
        Provider {
            name: "globex",
            domains: &["globex.test", "globex-corp.test"],
            email_attribute: Some("urn:oid:0.9.2342.19200300.100.1.3"),
            name_attribute: Some("urn:oid:2.16.840.1.113730.3.1.241"),
            groups_attribute: Some("memberOf"),
            map: &[("cn=ops,ou=groups", "operator")],
            default_role: Some("staff"),
            ..Provider::default()
        },
    )
    .await;
    let login = begin(&app, "hank@globex-corp.test", "globex").await;
    let signed = globex.sign(login.fields(
        &app,
        "opaque-id-4711",
        json!({ "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "attributes": {
            "urn:oid:0.9.2342.19200300.100.1.3": ["hank@globex-corp.test"],
            "urn:oid:2.16.840.1.113730.3.1.241": ["Hank Scorpio"],
            "memberOf": ["cn=ops,ou=groups", "cn=all,ou=groups"],
        }}),
    ));
    let response = login.post(&app, &signed).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let me = me(&app, &login.browser).await;
    assert_eq!(me["email"], "hank@globex-corp.test");
    assert_eq!(me["name"], "Hank Scorpio");
    assert_eq!(me["roles"], json!(["operator", "staff"]));
    let list = saml::list(&app.ctx).await.expect("list");
    assert_eq!(
        list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["acme", "globex"]
    );
    // A domain belongs to one provider only.
    let taken = saml::update(
        &app.ctx,
        &Actor::cli(),
        "globex",
        saml::ProviderChanges {
            domains: Some(vec!["acme.test".into()]),
            ..Default::default()
        },
        app.clock_now(),
    )
    .await
    .expect_err("acme.test is taken");
    assert!(
        taken
            .to_string()
            .contains("already belongs to the provider `acme`"),
        "{taken}"
    );
}

async fn existing_accounts_are_linked_only_by_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    // Password accounts made before SSO came to the domain: one verified, one not.
    app.verified_user("carol@acme.test").await;
    assert_eq!(
        app.signup("dave@acme.test").await.status(),
        StatusCode::CREATED
    );
    register(&app, &idp, Provider::default()).await;
    let sign_in = |login: &Login| idp.sign(login.fields(&app, "carol@acme.test", json!({})));

    let login = begin(&app, "carol@acme.test", "acme").await;
    let before = sessions(&app).await;
    let response = login.post(&app, &sign_in(&login)).await;
    assert_refused(
        &app,
        "link policy none",
        response,
        "account_exists_not_linked",
        before,
        &[],
    )
    .await;

    saml::update(
        &app.ctx,
        &Actor::cli(),
        "acme",
        saml::ProviderChanges {
            link_policy: Some(LinkPolicy::VerifiedEmail),
            ..Default::default()
        },
        app.clock_now(),
    )
    .await
    .expect("update");
    let login = begin(&app, "carol@acme.test", "acme").await;
    let response = login.post(&app, &sign_in(&login)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(users_named(&app, "carol@acme.test").await, 1);
    // The domain signs in through its IdP now: the old password no longer opens the account.
    let browser = TestApp::browser();
    assert_error(
        app.login(&browser, "carol@acme.test", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "sso_required",
    )
    .await;

    // A disabled account is refused before anything about it changes.
    authctl::service::users::disable(&app.ctx, &Actor::cli(), "carol@acme.test", app.clock_now())
        .await
        .expect("disable");
    let login = begin(&app, "carol@acme.test", "acme").await;
    let renamed = idp.sign(login.fields(
        &app,
        "carol@acme.test",
        json!({ "attributes": { "email": ["carol@acme.test"], "name": ["Renamed At IdP"] } }),
    ));
    let before = sessions(&app).await;
    let response = login.post(&app, &renamed).await;
    assert_refused(&app, "disabled", response, "account_disabled", before, &[]).await;
    let carol = user::Entity::find()
        .filter(user::Column::Email.eq("carol@acme.test"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("carol");
    assert_ne!(carol.name, "Renamed At IdP");

    // An unverified account is never linked, whatever the policy.
    let login = begin(&app, "dave@acme.test", "acme").await;
    let before = sessions(&app).await;
    let response = login
        .post(
            &app,
            &idp.sign(login.fields(&app, "dave@acme.test", json!({}))),
        )
        .await;
    assert_refused(
        &app,
        "unverified account",
        response,
        "account_exists_not_linked",
        before,
        &[],
    )
    .await;
}

async fn sso_domains_are_told_to_use_sso(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    // An account with a password from before SSO came to the domain.
    assert_eq!(
        app.signup("frank@acme.test").await.status(),
        StatusCode::CREATED
    );
    let mails_before = app.mails().await.len();
    register(&app, &idp, Provider::default()).await;
    let login = begin(&app, "erin@acme.test", "acme").await;
    let response = login
        .post(
            &app,
            &idp.sign(login.fields(&app, "erin@acme.test", json!({}))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Password login and reset for an SSO domain point to SSO: for the SSO-only account and for
    // an address with no account alike (so nothing beyond the domain lookup is revealed).
    for (email, password) in [
        ("erin@acme.test", "whatever-password"),
        ("nobody@acme.test", "whatever-password"),
        ("frank@acme.test", PASSWORD),
    ] {
        let response = app.login(&TestApp::browser(), email, password).await;
        let body = assert_error(response, StatusCode::FORBIDDEN, "sso_required").await;
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("acme.test")
        );
        let reset = app
            .post("/password-reset", &json!({ "email": email }))
            .await;
        assert_error(reset, StatusCode::FORBIDDEN, "sso_required").await;
        // Magic links and passkeys do not go around the IdP either.
        let magic = app
            .post("/login/magic-link", &json!({ "email": email }))
            .await;
        assert_error(magic, StatusCode::FORBIDDEN, "sso_required").await;
    }
    assert_eq!(
        app.mails().await.len(),
        mails_before,
        "no reset mail was sent"
    );
    // Nor can anyone sign up there with a password.
    assert_error(
        app.signup("grace@acme.test").await,
        StatusCode::FORBIDDEN,
        "sso_required",
    )
    .await;

    // Starting a login for a domain nobody serves, or to an off-site target, is refused.
    let browser = TestApp::browser();
    assert_error(
        start(&app, &browser, "email=someone@example.com").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sso_not_configured",
    )
    .await;
    for target in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/..//evil.example",
        "/.//evil.example",
        "/app//evil.example",
        "/app/\u{2028}",
    ] {
        let query = format!("provider=acme&redirect={}", urlencode(target));
        assert_error(
            start(&app, &browser, &query).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_redirect",
        )
        .await;
    }
    // Our SP metadata for the IdP admin.
    let metadata = app.get("/saml/acme/metadata").await;
    assert_eq!(metadata.status(), StatusCode::OK);
    let xml = metadata.text().await.expect("text");
    assert!(xml.contains(&app.url("/saml/acme/acs")), "{xml}");
    assert!(
        xml.contains(&format!("entityID=\"{}\"", app.url("/saml/metadata"))),
        "{xml}"
    );
    assert!(xml.contains("AuthnRequestsSigned=\"true\""), "{xml}");
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// Every attack of SAML.md's list: refused, audited with its reason, nobody created, no session.
async fn attacks_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    register(&app, &idp, Provider::default()).await;
    let other_idp = Idp::new("https://idp.other.test");
    register(
        &app,
        &other_idp,
        Provider {
            name: "other",
            domains: &["other.test"],
            ..Provider::default()
        },
    )
    .await;
    let victim = "victim@acme.test";
    let evil = "mallory@acme.test";
    let nobody = [victim, evil];

    // Responses from the real IdP, each wrong in one way.
    let signed_but_wrong = [
        // Signature stripped: nothing signed at all.
        (
            "stripped",
            json!({ "sign_response": false, "sign_assertion": false }),
            "unsigned",
        ),
        // An unsigned extra assertion beside the signed one.
        (
            "extra assertion",
            json!({ "extra_unsigned_assertion": true, "evil_name_id": evil, "sign_response": false }),
            "several_assertions",
        ),
        // SHA-1, even with the right key.
        (
            "sha1",
            json!({ "algorithm": "rsa-sha1" }),
            "invalid_signature",
        ),
        // Another audience; no audience restriction at all.
        (
            "audience",
            json!({ "audience": "https://other-sp.test" }),
            "audience",
        ),
        (
            "no conditions",
            json!({ "audience": null }),
            "no_conditions",
        ),
        // Another recipient; another destination.
        (
            "recipient",
            json!({ "recipient": "https://other-sp.test/acs" }),
            "recipient",
        ),
        (
            "destination",
            json!({ "destination": "https://other-sp.test/acs" }),
            "destination",
        ),
        // The same with only the Assertion signed: the Response's Destination is still checked.
        (
            "unsigned destination",
            json!({ "destination": "https://other-sp.test/acs", "sign_response": false }),
            "destination",
        ),
        // Expired, and not yet valid.
        (
            "expired",
            json!({ "not_on_or_after_offset": -600, "issue_instant_offset": -60 }),
            "expired",
        ),
        (
            "not yet valid",
            json!({ "not_before_offset": 900 }),
            "not_yet_valid",
        ),
    ];
    for (case, overrides, reason) in signed_but_wrong {
        let login = begin(&app, victim, "acme").await;
        let signed = idp.sign(login.fields(&app, victim, overrides));
        assert_refused(
            &app,
            case,
            login.post(&app, &signed).await,
            reason,
            0,
            &nobody,
        )
        .await;
    }

    // The NameID (and e-mail) changed after signing.
    let login = begin(&app, victim, "acme").await;
    let xml = idp.sign_xml(login.fields(&app, victim, json!({})));
    let tampered = idp::encode(&xml.replace(victim, evil));
    assert_refused(
        &app,
        "tampered",
        login.post(&app, &tampered).await,
        "invalid_signature",
        0,
        &nobody,
    )
    .await;

    // The eight signature-wrapping variants: the pre-filter refuses each outright.
    for n in 1..=8 {
        let login = begin(&app, victim, "acme").await;
        let wrapped = idp.sign(login.fields(
            &app,
            victim,
            json!({ "xsw": n, "evil_name_id": evil, "sign_response": n <= 2 }),
        ));
        let response = login.post(&app, &wrapped).await;
        let reason = last_reason_after(&app, response).await;
        assert!(
            [
                "several_assertions",
                "assertion_position",
                "signature_content",
                "signature_position",
                "duplicate_id",
                "reference_uri",
                "reference_count",
                "transform",
            ]
            .contains(&reason.as_str()),
            "XSW{n}: refused for {reason}"
        );
        assert_eq!(sessions(&app).await, 0, "XSW{n}");
        assert_eq!(users_named(&app, evil).await, 0, "XSW{n}");
        assert_eq!(users_named(&app, victim).await, 0, "XSW{n}");
    }

    // Comment injection in the NameID (CVE-2017-11427): the IdP signed
    // victim@acme.test.evil.example; a comment makes naive parsers read victim@acme.test.
    let login = begin(&app, victim, "acme").await;
    let long = "victim@acme.test.evil.example";
    let xml = idp.sign_xml(login.fields(&app, long, json!({})));
    let injected = idp::encode(&xml.replace(long, "victim@acme.test<!---->.evil.example"));
    assert_refused(
        &app,
        "comment",
        login.post(&app, &injected).await,
        "comment",
        0,
        &nobody,
    )
    .await;

    // The attacker's own key and certificate in KeyInfo.
    let attacker = Idp::new(ACME);
    let login = begin(&app, victim, "acme").await;
    let forged = attacker.sign(login.fields(&app, victim, json!({})));
    assert_refused(
        &app,
        "attacker key",
        login.post(&app, &forged).await,
        "invalid_signature",
        0,
        &nobody,
    )
    .await;

    // Unsolicited: a browser that started no login.
    let login = begin(&app, victim, "acme").await;
    let signed = idp.sign(login.fields(&app, victim, json!({})));
    let stranger = Login {
        browser: TestApp::browser(),
        ..login
    };
    assert_refused(
        &app,
        "unsolicited",
        stranger.post(&app, &signed).await,
        "unsolicited",
        0,
        &nobody,
    )
    .await;

    // A response for another browser's request, posted from a browser with a login of its own.
    let victims = begin(&app, victim, "acme").await;
    let attackers = begin(&app, evil, "acme").await;
    let for_victim = idp.sign(victims.fields(&app, victim, json!({})));
    assert_refused(
        &app,
        "another browser",
        attackers.post(&app, &for_victim).await,
        "no_pending_request",
        0,
        &nobody,
    )
    .await;
    // A request is spent by its first answer, even a failed one.
    let xml = idp.sign_xml(attackers.fields(&app, evil, json!({})));
    let broken = idp::encode(&xml.replace("<saml:Issuer>", "<saml:Issuer> "));
    assert_refused(
        &app,
        "broken answer",
        attackers.post(&app, &broken).await,
        "invalid_signature",
        0,
        &nobody,
    )
    .await;
    let for_attacker = idp.sign(attackers.fields(&app, evil, json!({})));
    assert_refused(
        &app,
        "used request",
        attackers.post(&app, &for_attacker).await,
        "no_pending_request",
        0,
        &nobody,
    )
    .await;

    // Replay cache: an assertion ID seen before is refused even inside a fresh, valid request.
    let first = begin(&app, "replay@other.test", "other").await;
    let fixed = json!({ "assertion_id": "_fixed-assertion-id-0001" });
    let ok = first
        .post(
            &app,
            &other_idp.sign(first.fields(&app, "replay@other.test", fixed.clone())),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let sessions_now = sessions(&app).await;
    let second = begin(&app, "replay@other.test", "other").await;
    let replay = other_idp.sign(second.fields(&app, "replay@other.test", fixed));
    assert_refused(
        &app,
        "replay cache",
        second.post(&app, &replay).await,
        "replayed",
        sessions_now,
        &nobody,
    )
    .await;

    // Another IdP's valid signature asserting an address in this IdP's domain: through its own
    // ACS the domain is not its to assert; through ours its signature is not ours to accept.
    let login = begin(&app, "x@other.test", "other").await;
    let cross = other_idp.sign(login.fields(&app, victim, json!({})));
    assert_refused(
        &app,
        "cross-tenant",
        login.post(&app, &cross).await,
        "domain_not_owned",
        sessions_now,
        &nobody,
    )
    .await;
    let login = begin(&app, victim, "acme").await;
    let foreign = other_idp.sign(login.fields(&app, victim, json!({ "issuer": ACME })));
    assert_refused(
        &app,
        "foreign signature",
        login.post(&app, &foreign).await,
        "invalid_signature",
        sessions_now,
        &nobody,
    )
    .await;

    // DOCTYPE: external entity, entity expansion.
    for (case, doctype) in [
        (
            "xxe",
            r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>"#,
        ),
        (
            "billion laughs",
            r#"<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>"#,
        ),
    ] {
        let login = begin(&app, victim, "acme").await;
        let xml = idp.sign_xml(login.fields(&app, victim, json!({})));
        let with_dtd = idp::encode(&format!("{doctype}{xml}"));
        assert_refused(
            &app,
            case,
            login.post(&app, &with_dtd).await,
            "doctype",
            sessions_now,
            &nobody,
        )
        .await;
    }

    // A declared encoding libxml2 would honour and a UTF-8 reader would not (UTF-7).
    let login = begin(&app, victim, "acme").await;
    let xml = idp.sign_xml(login.fields(&app, victim, json!({})));
    let utf7 = idp::encode(&format!("<?xml version=\"1.0\" encoding=\"UTF-7\"?>{xml}"));
    assert_refused(
        &app,
        "utf-7",
        login.post(&app, &utf7).await,
        "encoding",
        sessions_now,
        &nobody,
    )
    .await;

    // An oversized body.
    let login = begin(&app, victim, "acme").await;
    let huge = "A".repeat(2 * 1024 * 1024);
    assert_refused(
        &app,
        "oversized",
        login.post(&app, &huge).await,
        "too_large",
        sessions_now,
        &nobody,
    )
    .await;

    // Valid by the IdP's clock, expired by ours (authctl checks times with its own clock).
    let login = begin(&app, victim, "acme").await;
    let short = idp.sign(login.fields(&app, victim, json!({ "not_on_or_after_offset": 60 })));
    app.clock.advance(std::time::Duration::from_secs(300));
    assert_refused(
        &app,
        "expired by our clock",
        login.post(&app, &short).await,
        "expired",
        sessions_now,
        &nobody,
    )
    .await;
}

/// The audited reason of a refusal (asserting the generic answer).
async fn last_reason_after(app: &TestApp, response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(response).await["error"], "sso_failed");
    last_rejection(app).await.expect("an audit entry")
}

async fn starting_logins_is_limited_per_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.saml.logins_per_ip_per_hour = 2).await;
    register(&app, &Idp::new(ACME), Provider::default()).await;
    let browser = TestApp::browser();
    for _ in 0..2 {
        let response = start(&app, &browser, "provider=acme").await;
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    assert_error(
        start(&app, &browser, "provider=acme").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}

on_every_backend!(
    sso_users_step_up_at_their_idp,
    sso_logins_of_authenticator_app_accounts_ask_for_the_code_unless_the_idp_is_trusted,
    a_burst_of_logins_started_from_one_ip_stops_at_the_limit,
);

const MFA: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract";

/// SECURITY.md SAML-4 / MFA: an SSO login does not skip an account's authenticator app unless the
/// provider is trusted (`--trust-idp-mfa`) for the context the IdP asserted.
async fn sso_logins_of_authenticator_app_accounts_ask_for_the_code_unless_the_idp_is_trusted(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let idp = Idp::new(ACME);
    register(
        &app,
        &idp,
        Provider {
            mfa_contexts: &[MFA],
            ..Provider::default()
        },
    )
    .await;
    // Alice signs in once (JIT), then turns the authenticator app on.
    let first = begin(&app, "alice@acme.test", "acme").await;
    let response = first
        .post(
            &app,
            &idp.sign(first.fields(&app, "alice@acme.test", json!({}))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let raw = totp_rs::Secret::try_from_base32(secret)
        .expect("base32")
        .as_bytes()
        .to_vec();
    let sealed = app.ctx.key.seal(&app.ctx.config, &raw).await.expect("seal");
    let alice = user::Entity::find()
        .filter(user::Column::Email.eq("alice@acme.test"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("alice");
    let mut active: user::ActiveModel = alice.into();
    active.totp_secret = sea_orm::ActiveValue::Set(Some(sealed));
    active.totp_enabled_at = sea_orm::ActiveValue::Set(Some(app.clock_now()));
    sea_orm::ActiveModelTrait::update(active, &app.ctx.db)
        .await
        .expect("update");

    // A password-only context at the IdP: the session only waits for the code.
    let login = begin(&app, "alice@acme.test", "acme").await;
    let response = login
        .post(
            &app,
            &idp.sign(login.fields(&app, "alice@acme.test", json!({}))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/?twoFactorRequired=true");
    let me = login
        .browser
        .get(app.url("/me"))
        .send()
        .await
        .expect("request");
    assert_error(me, StatusCode::FORBIDDEN, "second_factor_required").await;
    let wrong = login
        .browser
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": "000000" }))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let code = crate::helpers::totp_code(secret, app.clock_now());
    let finished = login
        .browser
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("request");
    assert_eq!(finished.status(), StatusCode::OK);
    assert_eq!(me_status(&app, &login.browser).await, StatusCode::OK);

    // The trusted multi-factor context: a full session at once, and the audit entry says why.
    let trusted = begin(&app, "alice@acme.test", "acme").await;
    let fields = trusted.fields(&app, "alice@acme.test", json!({ "authn_context": MFA }));
    let response = trusted.post(&app, &idp.sign(fields)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    assert_eq!(me_status(&app, &trusted.browser).await, StatusCode::OK);
    let logins: Vec<Value> = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("login"))
        .all(&app.ctx.db)
        .await
        .expect("query")
        .iter()
        .map(|e| serde_json::from_str(e.detail.as_deref().expect("detail")).expect("json"))
        .collect();
    let trusted: Vec<&Value> = logins
        .iter()
        .filter(|d| d["idpMfaTrusted"] == true)
        .collect();
    assert_eq!(trusted.len(), 1, "{logins:?}");
    assert_eq!(trusted[0]["authnContext"], MFA);
    // The login finished with the code says so.
    assert!(
        logins
            .iter()
            .any(|d| d["secondFactor"] == "totp" && d["method"] == "sso"),
        "{logins:?}"
    );
}

async fn me_status(app: &TestApp, browser: &reqwest::Client) -> StatusCode {
    browser
        .get(app.url("/me"))
        .send()
        .await
        .expect("request")
        .status()
}

async fn a_burst_of_logins_started_from_one_ip_stops_at_the_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.saml.logins_per_ip_per_hour = 20).await;
    register(&app, &Idp::new(ACME), Provider::default()).await;
    let browser = TestApp::browser();
    let statuses: Vec<StatusCode> = futures_util::future::join_all(
        (0..50).map(|_| browser.get(app.url("/sso/login?provider=acme")).send()),
    )
    .await
    .into_iter()
    .map(|r| r.expect("request").status())
    .collect();
    let started = statuses.iter().filter(|s| **s == StatusCode::FOUND).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((started, refused), (20, 30), "{statuses:?}");
}

/// Step-up for an account without a password: the user re-authenticates at the IdP
/// (`ForceAuthn`), and only a fresh authentication of the session's own identity opens the window.
async fn sso_users_step_up_at_their_idp(backend: Backend) {
    // Tokens rotate every second here, so starting a step-up also rotates the session token.
    let app = TestApp::spawn_with(backend, |c| {
        c.session.rotation_interval = std::time::Duration::from_secs(1)
    })
    .await;
    let idp = Idp::new(ACME);
    register(&app, &idp, Provider::default()).await;
    let sign_in = |login: &Login, who: &str| idp.sign(login.fields(&app, who, json!({})));
    let create_key = |browser: &reqwest::Client| {
        browser
            .post(app.url("/me/api-keys"))
            .json(&json!({ "name": "deploy" }))
            .send()
    };

    let alice = begin(&app, "alice@acme.test", "acme").await;
    let response = alice.post(&app, &sign_in(&alice, "alice@acme.test")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let browser = alice.browser;
    assert_error(
        create_key(&browser).await.expect("request"),
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;

    // There is no password to confirm with: the answer says where to go instead.
    let confirm = browser
        .post(app.url("/auth/confirm"))
        .json(&json!({ "password": "anything-at-all" }))
        .send()
        .await
        .expect("request");
    assert_error(confirm, StatusCode::FORBIDDEN, "sso_step_up_required").await;

    // Step-up: a ForceAuthn request to alice's IdP, answered with a fresh authentication.
    // The session token was due for rotation: the new one comes with the binding cookie.
    app.clock.advance(std::time::Duration::from_secs(2));
    let response = start(&app, &browser, "stepUp=true&redirect=/account/keys").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("authctl_saml="))
            && cookies.iter().any(|c| c.starts_with("authctl_session=")),
        "{cookies:?}"
    );
    let (xml, _) = idp::authn_request(response.headers()["location"].to_str().expect("ascii"));
    assert_eq!(idp::attribute(&xml, "ForceAuthn"), "true");
    let step_up = Login {
        browser,
        provider: "acme".into(),
        request_id: idp::attribute(&xml, "ID"),
    };
    let response = step_up
        .post(&app, &sign_in(&step_up, "alice@acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/account/keys");
    let me = me(&app, &step_up.browser).await;
    assert!(me["stepUpUntil"].is_string(), "{me}");
    assert_eq!(
        create_key(&step_up.browser)
            .await
            .expect("request")
            .status(),
        StatusCode::CREATED
    );

    // Bob's step-up answered with alice's identity is refused; so is a stale authentication.
    let bob = begin(&app, "bob@acme.test", "acme").await;
    let response = bob.post(&app, &sign_in(&bob, "bob@acme.test")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sessions_now = sessions(&app).await;
    for (case, reason, advance) in [
        ("another identity", "step_up_other_user", 0),
        ("no fresh authentication", "not_reauthenticated", 240),
    ] {
        app.clock.advance(std::time::Duration::from_secs(advance));
        let response = start(&app, &bob.browser, "stepUp=true").await;
        let (xml, _) = idp::authn_request(response.headers()["location"].to_str().expect("ascii"));
        let attempt = Login {
            browser: bob.browser.clone(),
            provider: "acme".into(),
            request_id: idp::attribute(&xml, "ID"),
        };
        let who = if advance == 0 {
            "alice@acme.test"
        } else {
            "bob@acme.test"
        };
        let response = attempt.post(&app, &sign_in(&attempt, who)).await;
        assert_refused(&app, case, response, reason, sessions_now, &[]).await;
        assert_error(
            create_key(&bob.browser).await.expect("request"),
            StatusCode::FORBIDDEN,
            "reauthentication_required",
        )
        .await;
    }

    // Started from another site: refused (any page could otherwise bounce a user to the IdP).
    let response = bob
        .browser
        .get(app.url("/sso/login?stepUp=true"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_error(response, StatusCode::FORBIDDEN, "cross_site_request").await;
    // An account with an authenticator app confirms with its code, not with the IdP.
    let bob_user = user::Entity::find()
        .filter(user::Column::Email.eq("bob@acme.test"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("bob");
    let mut active: user::ActiveModel = bob_user.into();
    active.totp_enabled_at = sea_orm::ActiveValue::Set(Some(app.clock_now()));
    sea_orm::ActiveModelTrait::update(active, &app.ctx.db)
        .await
        .expect("update");
    assert_error(
        start(&app, &bob.browser, "stepUp=true").await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;

    // Without a session, or for an account that does not sign in through SSO.
    assert_error(
        start(&app, &TestApp::browser(), "stepUp=true").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.verified_user("pat@example.com").await;
    let response = app
        .client
        .get(app.url("/sso/login?stepUp=true"))
        .send()
        .await
        .expect("request");
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_sso_identity",
    )
    .await;
}
