//! SCIM 2.0 provisioning over HTTP, on SQLite and PostgreSQL: tenancy between providers, the
//! effects of deprovisioning, the payloads Okta and Entra ID send (tests/fixtures/scim), filters
//! and pages, uniqueness under parallel requests, versions, deletion, roles from groups, and one
//! identity for SCIM and SSO. scim2-tester runs against a real `serve` in tests/cli/scim.rs.
use authctl::entity::{audit_log, user};
use authctl::service::scim::tokens;
use authctl::service::{Actor, api_keys, roles};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::idp::Idp;
use crate::on_every_backend;
use crate::saml::{ACME, Provider, begin, me, register};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/scim/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

/// A SCIM client of one provider.
struct Scim<'a> {
    app: &'a TestApp,
    token: String,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl<'a> Scim<'a> {
    async fn of(app: &'a TestApp, provider: &str) -> Self {
        let (_, token) = tokens::create(&app.ctx, &Actor::cli(), provider, "test", app.clock_now())
            .await
            .expect("a token");
        Self { app, token }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        if !body.is_null() {
            assert_eq!(
                headers["content-type"], "application/scim+json",
                "{status} {body}"
            );
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }
    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(body), &[]).await
    }
    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
    async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }
    async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates a user; its id.
    async fn user(&self, body: &Value) -> String {
        let a = self.post("/Users", body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["id"].as_str().expect("id").to_owned()
    }

    async fn filter(&self, resource: &str, filter: &str) -> Value {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", filter)
            .finish();
        let a = self.get(&format!("/{resource}?{q}")).await;
        assert_eq!(a.status, StatusCode::OK, "{filter}: {}", a.body);
        a.body
    }
}

fn simple(user_name: &str) -> Value {
    json!({ "schemas": [USER], "userName": user_name })
}

fn assert_scim_error(a: &Answer, status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["schemas"], json!([ERROR]), "{}", a.body);
    assert_eq!(a.body["status"], json!(status.as_u16().to_string()));
    assert_eq!(a.body["scimType"].as_str(), scim_type, "{}", a.body);
    assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

async fn account(app: &TestApp, id: &str) -> user::Model {
    user::Entity::find_by_id(id.to_owned())
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("the account")
}

async fn idp_with(app: &TestApp, provider: Provider<'_>) -> Idp {
    let idp = Idp::new(&format!("https://idp.{}", provider.domains[0]));
    register(app, &idp, provider).await;
    idp
}

/// Signs `name_id` in through the provider's IdP; the browser holding the session.
async fn sso(
    app: &TestApp,
    idp: &Idp,
    provider: &str,
    name_id: &str,
    email: &str,
    groups: &[&str],
) -> reqwest::Client {
    let login = begin(app, email, provider).await;
    let signed = idp.sign(login.fields(
        app,
        name_id,
        json!({ "attributes": { "email": [email], "groups": groups } }),
    ));
    let response = login.post(app, &signed).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "SSO of {name_id}");
    login.browser
}

on_every_backend!(
    okta_and_entra_provision_update_and_deprovision,
    deprovisioning_ends_sessions_and_keys_at_once,
    providers_see_only_their_own,
    filters_and_pages,
    user_names_are_unique_under_parallel_creates,
    versions_and_preconditions,
    delete_removes_the_resource_and_follows_on_delete,
    delete_can_schedule_the_deletion,
    groups_give_roles_through_the_mapping,
    scim_and_sso_are_one_identity,
    refusals_are_scim_errors,
    each_token_is_rate_limited,
);

async fn okta_and_entra_provision_update_and_deprovision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;

    // Okta: create, with a password it may sync (never kept) and a read-only `groups`.
    let created = scim.post("/Users", &fixture("okta-create-user.json")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let dana = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["userName"], "dana.scully@acme.test");
    assert_eq!(created.body["externalId"], "00u1ab2cd3EfGh4iJ5k6");
    assert_eq!(created.body["active"], true);
    assert!(created.body.get("password").is_none(), "{}", created.body);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    let location = created.body["meta"]["location"].as_str().expect("location");
    assert_eq!(location, app.url(&format!("/scim/v2/Users/{dana}")));
    assert_eq!(created.headers["location"], location);
    assert_eq!(
        created.headers["etag"].to_str().expect("ascii"),
        created.body["meta"]["version"]
    );
    let row = account(&app, &dana).await;
    assert_eq!(
        (row.email.as_str(), row.name.as_str()),
        ("dana.scully@acme.test", "Dana Scully")
    );
    assert!(
        row.password_hash.is_none(),
        "an SSO account has no password"
    );
    assert!(
        row.email_verified_at.is_some(),
        "the IdP vouches for the address"
    );
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Actor.eq("scim:acme"))
        .filter(audit_log::Column::Action.eq("user_created"))
        .count(&app.ctx.db)
        .await
        .expect("audit");
    assert_eq!(audited, 1);

    // Okta: a full PUT (id and meta in the body are read-only and ignored).
    let put = scim
        .put(&format!("/Users/{dana}"), &fixture("okta-put-user.json"))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["id"], dana.as_str());
    assert_eq!(put.body["name"]["familyName"], "Katherine Scully");
    assert_eq!(account(&app, &dana).await.name, "Dana Katherine Scully");

    // Okta deactivates with a pathless replace.
    let off = scim
        .patch(&format!("/Users/{dana}"), &fixture("okta-deactivate.json"))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["active"], false);
    assert!(account(&app, &dana).await.disabled_at.is_some());

    // Entra ID: create with the enterprise extension, then its PATCH dialect.
    let fox = scim.user(&fixture("entra-create-user.json")).await;
    let mut patch = fixture("entra-patch-user.json");
    patch["Operations"][4]["value"] = json!(dana);
    let patched = scim.patch(&format!("/Users/{fox}"), &patch).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let b = &patched.body;
    assert_eq!(b["displayName"], "Fox W. Mulder");
    assert_eq!(
        b["name"],
        json!({"familyName": "Mulder", "givenName": "Fox William"})
    );
    assert_eq!(
        b["emails"],
        json!([{"primary": true, "type": "work", "value": "fox.mulder@acme.test"}]),
        "the filtered add found the existing work address"
    );
    assert_eq!(
        b["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 202 555 0101"}])
    );
    assert_eq!(b["title"], "Agent");
    assert_eq!(b[ENTERPRISE]["department"], "Basement");
    assert_eq!(b[ENTERPRISE]["employeeNumber"], "1013");
    assert_eq!(
        b[ENTERPRISE]["manager"],
        json!({"value": dana}),
        "a manager given as its id"
    );
    assert_eq!(b["active"], false, "\"False\" is false");
    assert_eq!(b["schemas"], json!([USER, ENTERPRISE]));
    assert!(account(&app, &fox).await.disabled_at.is_some());
    let on = scim
        .patch(&format!("/Users/{fox}"), &fixture("entra-reactivate.json"))
        .await;
    assert_eq!(on.body["active"], true);
    assert!(account(&app, &fox).await.disabled_at.is_none());

    // What is read back is what was written.
    let read = scim.get(&format!("/Users/{fox}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, on.body);
}

async fn deprovisioning_ends_sessions_and_keys_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let alice = scim
        .user(&json!({"schemas": [USER], "userName": "alice@acme.test"}))
        .await;
    let browser = sso(
        &app,
        &idp,
        "acme",
        "alice@acme.test",
        "alice@acme.test",
        &[],
    )
    .await;
    assert_eq!(me(&app, &browser).await["id"], alice.as_str());
    let (_, key) = api_keys::create(
        &app.ctx,
        &alice,
        "ci",
        None,
        &Default::default(),
        app.clock_now(),
    )
    .await
    .expect("a key");
    let with_key = |k: &str| {
        app.client
            .get(app.url("/me"))
            .bearer_auth(k.to_owned())
            .send()
    };
    assert_eq!(
        with_key(&key).await.expect("request").status(),
        StatusCode::OK
    );

    let off = scim.patch(&format!("/Users/{alice}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let status = browser
        .get(app.url("/me"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended");
    assert_eq!(
        with_key(&key).await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        api_keys::list(&app.ctx, &alice)
            .await
            .expect("keys")
            .is_empty(),
        "the key is gone, not just refused"
    );
    // A disabled account cannot sign in through SSO either.
    let login = begin(&app, "alice@acme.test", "acme").await;
    let signed = idp.sign(login.fields(&app, "alice@acme.test", json!({})));
    assert_eq!(
        login.post(&app, &signed).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // active: true lets them in again.
    let on = scim.patch(&format!("/Users/{alice}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": true}]})).await;
    assert_eq!(on.body["active"], true);
    let again = sso(
        &app,
        &idp,
        "acme",
        "alice@acme.test",
        "alice@acme.test",
        &[],
    )
    .await;
    assert_eq!(me(&app, &again).await["id"], alice.as_str());
}

async fn providers_see_only_their_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _a = idp_with(&app, Provider::default()).await;
    let _b = idp_with(
        &app,
        Provider {
            name: "beta",
            domains: &["beta.test"],
            ..Provider::default()
        },
    )
    .await;
    let acme = Scim::of(&app, "acme").await;
    let beta = Scim::of(&app, "beta").await;
    let alice = acme.user(&simple("alice@acme.test")).await;
    let group = acme
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "eng", "members": [{"value": alice}]}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group = group.body["id"].as_str().expect("id").to_owned();
    // A password account outside both providers' domains is nobody's SCIM user.
    app.verified_user("eve@example.com").await;

    assert_eq!(beta.get("/Users").await.body["totalResults"], 0);
    assert_eq!(beta.get("/Groups").await.body["totalResults"], 0);
    assert_eq!(acme.get("/Users").await.body["totalResults"], 1);
    for a in [
        beta.get(&format!("/Users/{alice}")).await,
        beta.patch(&format!("/Users/{alice}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]})).await,
        beta.put(&format!("/Users/{alice}"), &simple("alice@acme.test")).await,
        beta.delete(&format!("/Users/{alice}")).await,
        beta.get(&format!("/Groups/{group}")).await,
        beta.delete(&format!("/Groups/{group}")).await,
    ] {
        assert_scim_error(&a, StatusCode::NOT_FOUND, None);
    }
    assert!(account(&app, &alice).await.disabled_at.is_none());
    // beta cannot make an account in acme's domain, nor put acme's user in its group.
    let a = beta.post("/Users", &json!({"schemas": [USER], "userName": "mallory@acme.test", "emails": [{"value": "mallory@acme.test", "primary": true}]})).await;
    assert_scim_error(&a, StatusCode::BAD_REQUEST, Some("invalidValue"));
    let a = beta
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "x", "members": [{"value": alice}]}),
        )
        .await;
    assert_scim_error(&a, StatusCode::BAD_REQUEST, Some("invalidValue"));
    // A userName without a domain lands in the provider's own domain.
    let bob = beta.user(&simple("bob")).await;
    assert_eq!(account(&app, &bob).await.email, "bob@beta.test");
    assert_eq!(
        acme.get(&format!("/Users/{bob}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn filters_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let mut ids = Vec::new();
    for (name, ext, title) in [
        ("amy", "e-1", "Engineer"),
        ("ben", "e-2", "Manager"),
        ("cy", "E-3", "Engineer"),
    ] {
        ids.push(scim.user(&json!({
            "schemas": [USER], "userName": format!("{name}@acme.test"), "externalId": ext, "title": title,
            "emails": [{"value": format!("{name}@acme.test"), "type": "work", "primary": true}, {"value": format!("{name}@home.example"), "type": "home"}],
        })).await);
    }
    let names = |list: &Value| -> Vec<String> {
        list["Resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["userName"].as_str().expect("name").to_owned())
            .collect()
    };
    // What Okta and Entra ID ask before creating: userName eq, case-insensitively.
    let found = scim.filter("Users", r#"userName eq "BEN@acme.TEST""#).await;
    assert_eq!(
        (found["totalResults"].clone(), names(&found)),
        (json!(1), vec!["ben@acme.test".to_owned()])
    );
    assert_eq!(
        scim.filter("Users", r#"userName eq "nobody@acme.test""#)
            .await["totalResults"],
        0
    );
    // externalId is case-exact.
    assert_eq!(
        names(&scim.filter("Users", r#"externalId eq "E-3""#).await),
        ["cy@acme.test"]
    );
    assert_eq!(
        scim.filter("Users", r#"externalId eq "e-3""#).await["totalResults"],
        0
    );
    assert_eq!(
        names(
            &scim
                .filter("Users", r#"title eq "engineer" and not (userName sw "c")"#)
                .await
        ),
        ["amy@acme.test"]
    );
    assert_eq!(names(&scim.filter("Users", r#"emails[type eq "home" and value ew "home.example"] and (userName sw "b" or userName sw "c")"#).await), ["ben@acme.test", "cy@acme.test"]);
    assert_eq!(
        names(
            &scim
                .filter(
                    "Users",
                    r#"emails[type eq "work"].value eq "amy@acme.test""#
                )
                .await
        ),
        ["amy@acme.test"]
    );
    assert_eq!(
        scim.filter("Users", &format!(r#"id eq "{}""#, ids[1]))
            .await["totalResults"],
        1
    );
    assert_eq!(
        scim.filter("Users", "meta.created gt \"2000-01-01T00:00:00Z\"")
            .await["totalResults"],
        3
    );
    // Pages: 1-based startIndex, count, totalResults of the whole set.
    let page = scim.get("/Users?startIndex=2&count=1").await.body;
    assert_eq!(
        (
            page["totalResults"].clone(),
            page["startIndex"].clone(),
            page["itemsPerPage"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(names(&page), ["ben@acme.test"]);
    let counted = scim.get("/Users?count=0").await.body;
    assert_eq!(
        (
            counted["totalResults"].clone(),
            counted["Resources"].clone()
        ),
        (json!(3), json!([]))
    );
    assert_eq!(
        names(&scim.get("/Users?startIndex=-5&count=500").await.body).len(),
        3
    );
    // attributes / excludedAttributes; id and schemas always.
    let only = scim
        .get(&format!(
            "/Users/{}?attributes=userName,name.givenName",
            ids[0]
        ))
        .await
        .body;
    let mut keys: Vec<&str> = only
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    let without = scim.get("/Users?excludedAttributes=emails,meta").await.body;
    assert!(
        without["Resources"][0].get("emails").is_none()
            && without["Resources"][0].get("meta").is_none()
    );
    // A search by POST says the same as the query.
    let searched = scim.post("/Users/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "title eq \"Manager\"", "attributes": ["userName"]})).await;
    assert_eq!(names(&searched.body), ["ben@acme.test"]);
}

async fn user_names_are_unique_under_parallel_creates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let first = scim.user(&simple("zed@acme.test")).await;
    let again = scim.post("/Users", &simple("ZED@ACME.test")).await;
    assert_scim_error(&again, StatusCode::CONFLICT, Some("uniqueness"));
    // Another userName with the same address is the same account: refused too.
    let same_address = scim.post("/Users", &json!({"schemas": [USER], "userName": "zedd", "emails": [{"value": "zed@acme.test", "primary": true}]})).await;
    assert_scim_error(&same_address, StatusCode::CONFLICT, Some("uniqueness"));
    // 20 clients create one new userName at once: one account, the rest 409, nothing else.
    let race = simple("race@acme.test");
    let attempts = (0..20).map(|_| scim.post("/Users", &race));
    let answers = futures_util::future::join_all(attempts).await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, refused),
        (1, 19),
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, a.body.clone()))
            .collect::<Vec<_>>()
    );
    let accounts = user::Entity::find()
        .filter(user::Column::Email.eq("race@acme.test"))
        .count(&app.ctx.db)
        .await
        .expect("count");
    assert_eq!(accounts, 1);
    // Renaming onto a taken userName is refused, and changes nothing.
    let rename = scim.patch(&format!("/Users/{first}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "Race@acme.test"}]})).await;
    assert_scim_error(&rename, StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(
        scim.get(&format!("/Users/{first}")).await.body["userName"],
        "zed@acme.test"
    );
}

async fn versions_and_preconditions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let id = scim.user(&simple("vera@acme.test")).await;
    let path = format!("/Users/{id}");
    let read = scim.get(&path).await;
    let v1 = read.headers["etag"].to_str().expect("ascii").to_owned();
    assert!(v1.starts_with("W/\""), "{v1}");
    let unchanged = scim
        .send(Method::GET, &path, None, &[("if-none-match", &v1)])
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    let body = json!({"schemas": [USER], "userName": "vera@acme.test", "title": "Lead"});
    let put = scim
        .send(Method::PUT, &path, Some(&body), &[("if-match", &v1)])
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let v2 = put.headers["etag"].to_str().expect("ascii").to_owned();
    assert_ne!(v1, v2, "the version moves with the representation");
    let stale = json!({"schemas": [USER], "userName": "vera@acme.test", "title": "Intern"});
    let refused = scim
        .send(Method::PUT, &path, Some(&stale), &[("if-match", &v1)])
        .await;
    assert_scim_error(&refused, StatusCode::PRECONDITION_FAILED, None);
    let refused = scim
        .send(Method::DELETE, &path, None, &[("if-match", &v1)])
        .await;
    assert_scim_error(&refused, StatusCode::PRECONDITION_FAILED, None);
    assert_eq!(scim.get(&path).await.body["title"], "Lead");
    // Two changes made with the same version: one wins.
    let a = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "A"}]});
    let b = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "B"}]});
    let condition = [("if-match", v2.as_str())];
    let (x, y) = tokio::join!(
        scim.send(Method::PATCH, &path, Some(&a), &condition),
        scim.send(Method::PATCH, &path, Some(&b), &condition)
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let ok = scim
        .send(Method::DELETE, &path, None, &[("if-match", "*")])
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
}

async fn delete_removes_the_resource_and_follows_on_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let id = scim.user(&simple("gone@acme.test")).await;
    let browser = sso(&app, &idp, "acme", "gone@acme.test", "gone@acme.test", &[]).await;
    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(
        (deleted.status, deleted.body.clone()),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_scim_error(
        &scim.get(&format!("/Users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &scim.delete(&format!("/Users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_eq!(scim.get("/Users").await.body["totalResults"], 0);
    assert_eq!(
        scim.filter("Users", r#"userName eq "gone@acme.test""#)
            .await["totalResults"],
        0
    );
    // scim.on_delete = disable (the default): the account stays, disabled, signed out.
    assert!(account(&app, &id).await.disabled_at.is_some());
    assert!(account(&app, &id).await.deletion_due_at.is_none());
    assert_eq!(
        browser
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Created again (a re-hire): the same account, enabled.
    let back = scim.user(&simple("gone@acme.test")).await;
    assert_eq!(back, id);
    assert!(account(&app, &id).await.disabled_at.is_none());
}

async fn delete_can_schedule_the_deletion(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.scim.on_delete = authctl::config::ScimOnDelete::ScheduleDeletion
    })
    .await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let id = scim.user(&simple("leaver@acme.test")).await;
    assert_eq!(
        scim.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let row = account(&app, &id).await;
    assert!(row.deletion_due_at.is_some(), "scheduled for the sweep");
    assert!(row.disabled_at.is_some(), "and cannot sign in to cancel it");
    let scheduled = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("deletion_scheduled"))
        .filter(audit_log::Column::Actor.eq("scim:acme"))
        .count(&app.ctx.db)
        .await
        .expect("audit");
    assert_eq!(scheduled, 1);
}

async fn groups_give_roles_through_the_mapping(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = idp_with(
        &app,
        Provider {
            default_role: Some("employee"),
            groups_attribute: Some("groups"),
            ..Provider::default()
        },
    )
    .await;
    let scim = Scim::of(&app, "acme").await;
    let a = scim.user(&simple("a@acme.test")).await;
    let b = scim.user(&simple("b@acme.test")).await;
    let roles = |id: String| {
        let ctx = app.ctx.clone();
        async move { roles::roles_of(&ctx.db, &id).await.expect("roles") }
    };
    assert_eq!(
        roles(a.clone()).await,
        ["employee"],
        "the provider's default role"
    );
    let created = scim.post("/Groups", &json!({"schemas": [GROUP], "displayName": "engineering", "externalId": "g-1", "members": [{"value": a, "display": "A"}]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let g = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.body["members"],
        json!([{"value": a, "display": "A"}])
    );
    assert_eq!(roles(a.clone()).await, ["developer", "employee"]);
    let user = scim.get(&format!("/Users/{a}")).await.body;
    assert_eq!(user["groups"][0]["value"], g.as_str());
    assert_eq!(user["groups"][0]["display"], "engineering");

    // Entra ID's add/remove by value, then Okta's remove by filter.
    let mut entra = fixture("entra-group-members.json");
    entra["Operations"][0]["value"] = json!([{"value": a}, {"value": b}]);
    entra["Operations"][1]["value"] = json!([{"value": a}]);
    let patched = scim.patch(&format!("/Groups/{g}"), &entra).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["members"], json!([{"value": b}]));
    assert_eq!(roles(a.clone()).await, ["employee"]);
    assert_eq!(roles(b.clone()).await, ["developer", "employee"]);
    let okta = serde_json::to_string(&fixture("okta-group-members.json"))
        .expect("json")
        .replace("MEMBER_A", &a)
        .replace("MEMBER_B", &b);
    let patched = scim
        .patch(
            &format!("/Groups/{g}"),
            &serde_json::from_str(&okta).expect("json"),
        )
        .await;
    assert_eq!(
        patched.body["members"],
        json!([{"value": a, "display": "fox.mulder@acme.test"}])
    );
    assert_eq!(
        (roles(a.clone()).await, roles(b.clone()).await),
        (
            vec!["developer".to_owned(), "employee".to_owned()],
            vec!["employee".to_owned()]
        )
    );

    // A role given by SCIM and by a SAML assertion stays until both take it away.
    let browser = sso(
        &app,
        &idp,
        "acme",
        "a@acme.test",
        "a@acme.test",
        &["engineering"],
    )
    .await;
    assert_eq!(
        me(&app, &browser).await["roles"],
        json!(["developer", "employee"])
    );
    let renamed = scim.patch(&format!("/Groups/{g}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"displayName": "eng-old"}}]})).await;
    assert_eq!(renamed.body["displayName"], "eng-old");
    assert_eq!(
        roles(a.clone()).await,
        ["developer", "employee"],
        "the SAML assertion still gives it"
    );
    let _ = sso(&app, &idp, "acme", "a@acme.test", "a@acme.test", &[]).await;
    assert_eq!(roles(a.clone()).await, ["employee"]);

    // A large group in batches, as IdPs send them: 250 members in five PATCHes of 50.
    let mut many = Vec::new();
    for i in 0..250 {
        many.push(scim.user(&simple(&format!("m{i}@acme.test"))).await);
    }
    let big = scim
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "admins"}),
        )
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for batch in many.chunks(50) {
        let members: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
        let a = scim.patch(&format!("/Groups/{big}"), &json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": members}]})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let listed = scim.get(&format!("/Groups/{big}")).await.body;
    assert_eq!(listed["members"].as_array().expect("members").len(), 250);
    assert_eq!(roles(many[249].clone()).await, ["admin", "employee"]);
    let without = scim
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22ADMINS%22")
        .await
        .body;
    assert_eq!(without["totalResults"], 1);
    assert!(without["Resources"][0].get("members").is_none());
    let member_filter = scim
        .filter("Groups", &format!(r#"members[value eq "{}"]"#, many[10]))
        .await;
    assert_eq!(member_filter["totalResults"], 1);

    // Deleting the group takes its roles away.
    assert_eq!(
        scim.delete(&format!("/Groups/{big}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(roles(many[249].clone()).await, ["employee"]);
    assert_eq!(
        scim.get(&format!("/Groups/{big}")).await.status,
        StatusCode::NOT_FOUND
    );
    let duplicate = scim
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "ENG-old"}),
        )
        .await;
    assert_scim_error(&duplicate, StatusCode::CONFLICT, Some("uniqueness"));
}

async fn scim_and_sso_are_one_identity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    // Made by SCIM, signed in by SSO (NameID = userName): the same account.
    let alice = scim.user(&simple("alice@acme.test")).await;
    let browser = sso(
        &app,
        &idp,
        "acme",
        "alice@acme.test",
        "alice@acme.test",
        &[],
    )
    .await;
    assert_eq!(me(&app, &browser).await["id"], alice.as_str());
    // Made by SCIM with a userName that is not the NameID: found by its address, linked
    // although the provider's link policy is `none` (the provider made the account).
    let carol = scim.user(&json!({"schemas": [USER], "userName": "carol", "emails": [{"value": "carol@acme.test", "primary": true}]})).await;
    let browser = sso(&app, &idp, "acme", "C-7781", "carol@acme.test", &[]).await;
    assert_eq!(me(&app, &browser).await["id"], carol.as_str());
    let count = user::Entity::find()
        .count(&app.ctx.db)
        .await
        .expect("count");
    assert_eq!(count, 2, "no duplicate account");
    // Made by JIT, found by SCIM under its NameID, and refused as a second create.
    let browser = sso(&app, &idp, "acme", "bob@acme.test", "bob@acme.test", &[]).await;
    let bob = me(&app, &browser).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let found = scim.filter("Users", r#"userName eq "bob@acme.test""#).await;
    assert_eq!(found["Resources"][0]["id"], bob.as_str());
    assert_eq!(found["Resources"][0]["emails"][0]["value"], "bob@acme.test");
    assert_scim_error(
        &scim.post("/Users", &simple("bob@acme.test")).await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    // SCIM takes it over from there: a rename keeps SSO working under the new NameID.
    let renamed = scim.patch(&format!("/Users/{bob}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "robert@acme.test"}, {"op": "replace", "path": "emails", "value": [{"value": "robert@acme.test", "primary": true}]}]})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(account(&app, &bob).await.email, "robert@acme.test");
    let browser = sso(
        &app,
        &idp,
        "acme",
        "robert@acme.test",
        "robert@acme.test",
        &[],
    )
    .await;
    assert_eq!(me(&app, &browser).await["id"], bob.as_str());
    assert_eq!(
        user::Entity::find()
            .count(&app.ctx.db)
            .await
            .expect("count"),
        3
    );
    let _ = ACME;
}

async fn refusals_are_scim_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let raw = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.expect("request");
        let status = r.status();
        let www = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body: Value = r.json().await.expect("JSON");
        (status, www, body)
    };
    let (status, www, body) = raw(app.client.get(app.url("/scim/v2/Users"))).await;
    assert_eq!(
        (status, body["schemas"].clone()),
        (StatusCode::UNAUTHORIZED, json!([ERROR]))
    );
    assert!(www.is_some_and(|w| w.starts_with("Bearer")));
    let (status, _, _) = raw(app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth("authctl_scim_x_y"))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A revoked token stops at once.
    let listed = tokens::list(&app.ctx, Some("acme")).await.expect("tokens");
    let (_, spare) = tokens::create(&app.ctx, &Actor::cli(), "acme", "spare", app.clock_now())
        .await
        .expect("token");
    let (status, _, _) = raw(app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(&spare))
    .await;
    assert_eq!(status, StatusCode::OK);
    let newest = tokens::list(&app.ctx, Some("acme")).await.expect("tokens");
    let spare_id = newest
        .iter()
        .find(|t| !listed.iter().any(|l| l.id == t.id))
        .expect("the new token")
        .id
        .clone();
    tokens::revoke(&app.ctx, &Actor::cli(), &spare_id, app.clock_now())
        .await
        .expect("revoke");
    let (status, _, _) = raw(app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(&spare))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_scim_error(&scim.get("/Nope").await, StatusCode::NOT_FOUND, None);
    assert_scim_error(
        &scim.get("/ResourceTypes/Nope").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &scim.get("/Schemas/urn:nope").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &scim
            .send(Method::DELETE, "/ServiceProviderConfig", None, &[])
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        None,
    );
    assert_scim_error(
        &scim
            .send(Method::POST, "/Bulk", Some(&json!({})), &[])
            .await,
        StatusCode::NOT_IMPLEMENTED,
        None,
    );
    let text = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&scim.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let junk = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&scim.token)
        .header("content-type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        junk.json::<Value>().await.expect("JSON")["scimType"],
        "invalidSyntax"
    );
    for (body, want) in [
        (json!({"schemas": [USER]}), "invalidValue"),
        (json!({"schemas": [USER], "userName": 7}), "invalidValue"),
        (
            json!({"schemas": [USER], "userName": "x@acme.test", "active": "maybe"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x@acme.test", "emails": "not-a-list-of-objects"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [GROUP], "userName": "x@acme.test"}),
            "invalidSyntax",
        ),
        (json!([1, 2]), "invalidSyntax"),
        // PostgreSQL refuses NUL in text: refused before it reaches the database.
        (
            json!({"schemas": [USER], "userName": "nul\u{0}@acme.test"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "n@acme.test", "externalId": "a\u{0}"}),
            "invalidValue",
        ),
    ] {
        assert_scim_error(
            &scim.post("/Users", &body).await,
            StatusCode::BAD_REQUEST,
            Some(want),
        );
    }
    assert_scim_error(
        &scim.get("/Users?filter=userName%20xx%20%22a%22").await,
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &scim.get("/Users?count=many").await,
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
    );
    for path in ["/Users/%00", "/Groups/%00", "/Users/not-a-uuid"] {
        assert_scim_error(&scim.get(path).await, StatusCode::NOT_FOUND, None);
    }
    assert_eq!(
        scim.filter("Users", r#"userName eq "a\u0000b""#).await["totalResults"],
        0
    );
    let nul_member = scim
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "\u{0}"}]}),
        )
        .await;
    assert_scim_error(&nul_member, StatusCode::BAD_REQUEST, Some("invalidValue"));
    let id = scim.user(&simple("x@acme.test")).await;
    for (ops, want) in [
        (
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            "mutability",
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            "invalidValue",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "move", "path": "title", "value": "x"}]),
            "invalidSyntax",
        ),
    ] {
        let a = scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"schemas": [PATCH], "Operations": ops}),
            )
            .await;
        assert_scim_error(&a, StatusCode::BAD_REQUEST, Some(want));
    }
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.body["userName"],
        "x@acme.test",
        "nothing changed"
    );
    // The discovery documents need no token and name what is served.
    let spc: Value = app
        .client
        .get(app.url("/scim/v2/ServiceProviderConfig"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    let types = scim.get("/ResourceTypes").await.body;
    assert_eq!(types["totalResults"], 2);
    let user_schema = scim.get(&format!("/Schemas/{USER}")).await.body;
    assert_eq!(user_schema["attributes"][0]["name"], "userName");
}

async fn each_token_is_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.scim.requests_per_minute = 5).await;
    let _idp = idp_with(&app, Provider::default()).await;
    let scim = Scim::of(&app, "acme").await;
    let other = Scim::of(&app, "acme").await;
    let answers = futures_util::future::join_all((0..12).map(|_| scim.get("/Users"))).await;
    let ok = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        5,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let refused = answers
        .iter()
        .find(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("a 429");
    assert_eq!(refused.body["schemas"], json!([ERROR]));
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        other.get("/Users").await.status,
        StatusCode::OK,
        "per token"
    );
}
