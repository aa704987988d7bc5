//! Passkeys with a software authenticator (webauthn-authenticator-rs's `SoftPasskey`): real
//! ceremonies, real signatures, verified by the service's webauthn-rs. Registration behind
//! step-up, sign-in with and without an address, step-up, management, and every refusal.
use std::time::Duration;

use base64::Engine;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, body, enrolled, mails_with_subject,
};
use crate::on_every_backend;

on_every_backend!(
    register_sign_in_step_up_and_remove,
    assertions_that_must_be_refused_are,
    discoverable_credentials_name_their_account,
    a_counter_that_goes_backwards_is_refused_and_reported,
    one_ceremony_finishes_once_under_a_burst,
    management_is_the_owners_and_needs_step_up,
    a_throttled_password_does_not_lock_out_passkeys_or_links,
    chromium_registers_signs_in_and_steps_up,
    a_disabled_account_and_odd_ids_are_refused_on_the_record,
);

/// An app whose public URL is on a domain name (WebAuthn needs one): `localhost`.
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        let port = c.public_url.port().expect("port");
        c.public_url = format!("http://localhost:{port}").parse().expect("url");
    })
    .await
}

fn origin(app: &TestApp) -> Url {
    app.ctx.config.public_url.clone()
}

/// The authenticator of one device.
fn authenticator() -> SoftPasskey {
    // `true`: it reports user verification (the "PIN or fingerprint" a real one asks for).
    SoftPasskey::new(true)
}

async fn post(app: &TestApp, browser: &Client, path: &str, body: &Value) -> reqwest::Response {
    browser
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn step_up(app: &TestApp, browser: &Client) {
    let response = post(
        app,
        browser,
        "/auth/confirm",
        &json!({ "password": PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Registers a passkey for the signed-in `browser` (stepped up) and returns its view.
async fn register(app: &TestApp, browser: &Client, device: &mut SoftPasskey, name: &str) -> Value {
    let start = post(app, browser, "/me/passkeys/register/start", &json!({})).await;
    assert_eq!(start.status(), StatusCode::OK);
    let start = body(start).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["publicKey"] })).expect("options");
    let credential = device
        .do_registration(origin(app), options)
        .expect("the authenticator registers");
    let finish = post(
        app,
        browser,
        "/me/passkeys/register/finish",
        &json!({ "ceremonyId": start["ceremonyId"], "name": name, "credential": credential }),
    )
    .await;
    assert_eq!(finish.status(), StatusCode::CREATED);
    body(finish).await
}

/// Starts a login; returns the ceremony id and the options.
async fn login_start(app: &TestApp, browser: &Client, body_json: Value) -> (String, Value) {
    let start = post(app, browser, "/login/passkey/start", &body_json).await;
    assert_eq!(start.status(), StatusCode::OK);
    let start = body(start).await;
    (start["ceremonyId"].as_str().expect("id").to_owned(), start)
}

/// Discoverable-credential options as the authenticator sees them after picking its own
/// credential `credential_id` (SoftPasskey only signs with a credential it is offered).
fn offering(start: &Value, credential_id: &str) -> RequestChallengeResponse {
    let mut public_key = start["publicKey"].clone();
    public_key["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    serde_json::from_value(json!({ "publicKey": public_key })).expect("options")
}

fn request_options(start: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": start["publicKey"] })).expect("options")
}

async fn finish(
    app: &TestApp,
    browser: &Client,
    path: &str,
    ceremony: &str,
    credential: &Value,
) -> reqwest::Response {
    post(
        app,
        browser,
        path,
        &json!({ "ceremonyId": ceremony, "credential": credential }),
    )
    .await
}

/// A full passkey login of `email` in a new browser; returns it.
async fn passkey_login(app: &TestApp, device: &mut SoftPasskey, email: &str) -> Client {
    let browser = TestApp::browser();
    let (ceremony, start) = login_start(app, &browser, json!({ "email": email })).await;
    let assertion = device
        .do_authentication(origin(app), request_options(&start))
        .expect("the authenticator signs");
    let response = finish(
        app,
        &browser,
        "/login/passkey/finish",
        &ceremony,
        &serde_json::to_value(assertion).expect("json"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in = body(response).await;
    assert_eq!(signed_in["user"]["email"], email);
    assert_eq!(signed_in["twoFactorRequired"], false);
    browser
}

async fn get(app: &TestApp, browser: &Client, path: &str) -> reqwest::Response {
    browser.get(app.url(path)).send().await.expect("request")
}

async fn register_sign_in_step_up_and_remove(backend: Backend) {
    let app = spawn(backend).await;
    // An account with an authenticator app: a passkey login still asks for no code.
    let (secret, _) = enrolled(&app, "sam@example.com").await;
    let browser = app.client.clone();
    // Registration needs a fresh confirmation.
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_error(
        post(&app, &browser, "/me/passkeys/register/start", &json!({})).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    let code = crate::helpers::totp_code(&secret, app.clock_now());
    let confirmed = post(&app, &browser, "/auth/confirm", &json!({ "code": code })).await;
    assert_eq!(confirmed.status(), StatusCode::OK);

    let start = body(post(&app, &browser, "/me/passkeys/register/start", &json!({})).await).await;
    let public_key = &start["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost", "{start}");
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(public_key["challenge"].as_str().expect("challenge"))
        .expect("base64url");
    assert!(challenge.len() >= 16, "at least 128 bits");
    assert!(start["ceremonyId"].is_string());

    let mut device = authenticator();
    let view = register(&app, &browser, &mut device, "Work laptop").await;
    assert_eq!(view["name"], "Work laptop");
    assert!(view["lastUsedAt"].is_null());
    let listed = body(get(&app, &browser, "/me/passkeys").await).await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert_eq!(listed[0]["id"], view["id"]);
    assert_eq!(
        mails_with_subject(&app, "A passkey was added to your account")
            .await
            .len(),
        1
    );
    let me = body(get(&app, &browser, "/me").await).await;
    assert_eq!(
        me["factors"],
        json!(["password", "totp", "passkey"]),
        "{me}"
    );

    // Sign in on another device with it: a full session, no code asked.
    let other = passkey_login(&app, &mut device, "sam@example.com").await;
    assert_eq!(get(&app, &other, "/me").await.status(), StatusCode::OK);
    let history = body(get(&app, &other, "/me/login-history").await).await;
    assert_eq!(history[0]["method"], "passkey", "{history}");
    let used = body(get(&app, &other, "/me/passkeys").await).await;
    assert!(used[0]["lastUsedAt"].is_string(), "{used}");
    assert!(used[0]["signCount"].as_i64().expect("count") >= 1);

    // Step up with it: the window opens, and removing a factor is allowed.
    assert_error(
        other
            .delete(app.url(&format!(
                "/me/passkeys/{}",
                view["id"].as_str().expect("id")
            )))
            .send()
            .await
            .expect("request"),
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    let start = post(&app, &other, "/auth/confirm/passkey/start", &json!({})).await;
    assert_eq!(start.status(), StatusCode::OK);
    let start = body(start).await;
    let assertion = device
        .do_authentication(origin(&app), request_options(&start))
        .expect("sign");
    let confirmed = finish(
        &app,
        &other,
        "/auth/confirm/passkey/finish",
        start["ceremonyId"].as_str().expect("id"),
        &serde_json::to_value(assertion).expect("json"),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed = body(confirmed).await;
    assert_eq!(confirmed["confirmed"], true);
    assert!(confirmed["stepUpUntil"].is_string());
    let removed = other
        .delete(app.url(&format!(
            "/me/passkeys/{}",
            view["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("request");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        mails_with_subject(&app, "A passkey was removed from your account")
            .await
            .len(),
        1
    );
    // A removed passkey fails at its next use.
    let late = TestApp::browser();
    let (ceremony, start) = login_start(&app, &late, json!({})).await;
    let options = offering(&start, view["credentialId"].as_str().expect("id"));
    let assertion = device
        .do_authentication(origin(&app), options)
        .expect("sign");
    assert_error(
        finish(
            &app,
            &late,
            "/login/passkey/finish",
            &ceremony,
            &serde_json::to_value(assertion).expect("json"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "passkey_rejected",
    )
    .await;
    let me = body(get(&app, &other, "/me").await).await;
    assert_eq!(me["factors"], json!(["password", "totp"]));
}

async fn assertions_that_must_be_refused_are(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("tia@example.com").await;
    let browser = app.client.clone();
    step_up(&app, &browser).await;
    let mut device = authenticator();
    register(&app, &browser, &mut device, "Phone").await;
    let login = |body_json: Value| {
        let app = &app;
        async move {
            let b = TestApp::browser();
            let (ceremony, start) = login_start(app, &b, body_json).await;
            (b, ceremony, start)
        }
    };
    let refused = |response: reqwest::Response, code: &'static str| async move {
        assert_error(response, StatusCode::UNAUTHORIZED, code).await;
    };

    // A replay of an accepted assertion: the ceremony is used, and another ceremony has
    // another challenge.
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let assertion = serde_json::to_value(
        device
            .do_authentication(origin(&app), request_options(&start))
            .expect("sign"),
    )
    .expect("json");
    let ok = finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await;
    assert_eq!(ok.status(), StatusCode::OK);
    refused(
        finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await,
        "ceremony_invalid",
    )
    .await;
    let (b2, ceremony2, _) = login(json!({ "email": "tia@example.com" })).await;
    refused(
        finish(&app, &b2, "/login/passkey/finish", &ceremony2, &assertion).await,
        "passkey_rejected",
    )
    .await;

    // A wrong origin (a phishing site relaying the challenge).
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let phished: Url = "http://localhost:1".parse().expect("url");
    let assertion = device
        .do_authentication(phished, request_options(&start))
        .expect("sign");
    refused(
        finish(
            &app,
            &b,
            "/login/passkey/finish",
            &ceremony,
            &serde_json::to_value(assertion).expect("json"),
        )
        .await,
        "passkey_rejected",
    )
    .await;

    // No user verification (the page's options asked for none; the service requires it).
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let mut lax = start.clone();
    lax["publicKey"]["userVerification"] = json!("discouraged");
    let assertion = device
        .do_authentication(origin(&app), request_options(&lax))
        .expect("sign");
    refused(
        finish(
            &app,
            &b,
            "/login/passkey/finish",
            &ceremony,
            &serde_json::to_value(assertion).expect("json"),
        )
        .await,
        "passkey_rejected",
    )
    .await;

    // An expired ceremony (5 minutes).
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let assertion = serde_json::to_value(
        device
            .do_authentication(origin(&app), request_options(&start))
            .expect("sign"),
    )
    .expect("json");
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    refused(
        finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await,
        "ceremony_invalid",
    )
    .await;

    // Another browser than the one that started it: refused, and the ceremony stays usable.
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let assertion = serde_json::to_value(
        device
            .do_authentication(origin(&app), request_options(&start))
            .expect("sign"),
    )
    .expect("json");
    refused(
        finish(
            &app,
            &TestApp::browser(),
            "/login/passkey/finish",
            &ceremony,
            &assertion,
        )
        .await,
        "ceremony_invalid",
    )
    .await;
    let late = finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await;
    assert_eq!(late.status(), StatusCode::OK);

    // Another account's passkey: uma's own, signing tia's challenges.
    let uma = TestApp::browser();
    let signed_up = uma
        .post(app.url("/signup"))
        .json(&json!({ "email": "uma@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(signed_up.status(), StatusCode::CREATED);
    let none = post(&app, &uma, "/auth/confirm/passkey/start", &json!({})).await;
    assert_error(none, StatusCode::UNPROCESSABLE_ENTITY, "no_passkeys").await;
    authctl::service::users::mark_verified(
        &app.ctx,
        &authctl::service::Actor::cli(),
        "uma@example.com",
        app.clock_now(),
    )
    .await
    .expect("verify");
    step_up(&app, &uma).await;
    let mut uma_device = authenticator();
    let uma_key = register(&app, &uma, &mut uma_device, "Uma's key").await;
    let uma_cred = uma_key["credentialId"].as_str().expect("id");
    step_up(&app, &browser).await;
    let start = body(post(&app, &browser, "/auth/confirm/passkey/start", &json!({})).await).await;
    let assertion = serde_json::to_value(
        uma_device
            .do_authentication(origin(&app), offering(&start, uma_cred))
            .expect("sign"),
    )
    .expect("json");
    refused(
        finish(
            &app,
            &browser,
            "/auth/confirm/passkey/finish",
            start["ceremonyId"].as_str().expect("id"),
            &assertion,
        )
        .await,
        "passkey_rejected",
    )
    .await;
    let (b, ceremony, start) = login(json!({ "email": "tia@example.com" })).await;
    let assertion = serde_json::to_value(
        uma_device
            .do_authentication(origin(&app), offering(&start, uma_cred))
            .expect("sign"),
    )
    .expect("json");
    refused(
        finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await,
        "passkey_rejected",
    )
    .await;
    assert_eq!(
        get(&app, &b, "/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Every refusal is in the login history of the account it was for.
    let history = body(get(&app, &browser, "/me/login-history").await).await;
    let reasons: Vec<&str> = history
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["success"] == false)
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"verification_failed"), "{history}");
}

async fn discoverable_credentials_name_their_account(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("vera@example.com").await;
    let vera = app.client.clone();
    step_up(&app, &vera).await;
    let mut device = authenticator();
    let view = register(&app, &vera, &mut device, "Key").await;
    let vera_id = body(get(&app, &vera, "/me").await).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let walt = TestApp::browser();
    walt.post(app.url("/signup"))
        .json(&json!({ "email": "walt@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    let walt_id = body(get(&app, &walt, "/me").await).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let handle = |id: &str| {
        let uuid = uuid::Uuid::parse_str(id).expect("uuid");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid.as_bytes())
    };

    // No address: the options offer no credential and are a plain (modal) request; an
    // unknown address gets the same shape.
    for request in [json!({}), json!({ "email": "nobody@example.com" })] {
        let (_, start) = login_start(&app, &TestApp::browser(), request).await;
        assert_eq!(start["publicKey"]["allowCredentials"], json!([]), "{start}");
        assert!(start.get("mediation").is_none(), "{start}");
    }
    let (_, start) = login_start(&app, &TestApp::browser(), json!({ "conditional": true })).await;
    assert_eq!(start["mediation"], "conditional");
    // An empty body is fine too.
    let empty = TestApp::browser()
        .post(app.url("/login/passkey/start"))
        .send()
        .await
        .expect("request");
    assert_eq!(empty.status(), StatusCode::OK);

    let credential_id = view["credentialId"].as_str().expect("id");
    for (named, expected) in [
        (&walt_id, StatusCode::UNAUTHORIZED),
        (&vera_id, StatusCode::OK),
    ] {
        let b = TestApp::browser();
        let (ceremony, start) = login_start(&app, &b, json!({})).await;
        let mut assertion = serde_json::to_value(
            device
                .do_authentication(origin(&app), offering(&start, credential_id))
                .expect("sign"),
        )
        .expect("json");
        // A resident credential returns its user handle (unsigned, as the spec has it).
        assertion["response"]["userHandle"] = json!(handle(named));
        let response = finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await;
        assert_eq!(response.status(), expected);
        if expected == StatusCode::OK {
            assert_eq!(body(response).await["user"]["email"], "vera@example.com");
            assert_eq!(get(&app, &b, "/me").await.status(), StatusCode::OK);
        } else {
            assert_eq!(body(response).await["error"], "passkey_rejected");
            assert_eq!(
                get(&app, &b, "/me").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
    }
}

async fn a_counter_that_goes_backwards_is_refused_and_reported(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("xena@example.com").await;
    let browser = app.client.clone();
    step_up(&app, &browser).await;
    let mut device = authenticator();
    let view = register(&app, &browser, &mut device, "Yubikey").await;
    passkey_login(&app, &mut device, "xena@example.com").await;
    // A copy of the key signed meanwhile and moved the stored counter past this one's.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    authctl::entity::passkey::Entity::update_many()
        .col_expr(
            authctl::entity::passkey::Column::SignCount,
            Expr::value(1000_i64),
        )
        .filter(authctl::entity::passkey::Column::Id.eq(view["id"].as_str().expect("id")))
        .exec(&app.ctx.db)
        .await
        .expect("update");
    let b = TestApp::browser();
    let (ceremony, start) = login_start(&app, &b, json!({ "email": "xena@example.com" })).await;
    let assertion = device
        .do_authentication(origin(&app), request_options(&start))
        .expect("sign");
    assert_error(
        finish(
            &app,
            &b,
            "/login/passkey/finish",
            &ceremony,
            &serde_json::to_value(assertion).expect("json"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "passkey_rejected",
    )
    .await;
    assert_eq!(
        mails_with_subject(&app, "A copy of your passkey may exist")
            .await
            .len(),
        1
    );
    let audit = authctl::service::audit::list(&app.ctx, None, None, 50)
        .await
        .expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "passkey_clone_suspected"),
        "{audit:?}"
    );
    let listed = body(get(&app, &browser, "/me/passkeys").await).await;
    assert_eq!(
        listed[0]["signCount"], 1000,
        "the counter did not move back"
    );
}

async fn one_ceremony_finishes_once_under_a_burst(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("yara@example.com").await;
    let browser = app.client.clone();
    step_up(&app, &browser).await;
    let mut device = authenticator();
    register(&app, &browser, &mut device, "Laptop").await;
    let b = TestApp::browser();
    let (ceremony, start) = login_start(&app, &b, json!({ "email": "yara@example.com" })).await;
    let assertion = serde_json::to_value(
        device
            .do_authentication(origin(&app), request_options(&start))
            .expect("sign"),
    )
    .expect("json");
    let tries: Vec<_> = (0..20)
        .map(|_| finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion))
        .collect();
    let statuses: Vec<StatusCode> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

async fn management_is_the_owners_and_needs_step_up(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("zoe@example.com").await;
    let zoe = app.client.clone();
    step_up(&app, &zoe).await;
    let mut device = authenticator();
    let view = register(&app, &zoe, &mut device, "Old name").await;
    let id = view["id"].as_str().expect("id").to_owned();
    let renamed = zoe
        .patch(app.url(&format!("/me/passkeys/{id}")))
        .json(&json!({ "name": "  New name " }))
        .send()
        .await
        .expect("request");
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(body(renamed).await["name"], "New name");
    for bad in ["", "   ", &"x".repeat(65)] {
        let response = zoe
            .patch(app.url(&format!("/me/passkeys/{id}")))
            .json(&json!({ "name": bad }))
            .send()
            .await
            .expect("request");
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;
    }
    // Another account sees none of it: its id is not found.
    let other = TestApp::browser();
    other
        .post(app.url("/signup"))
        .json(&json!({ "email": "ann@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert!(
        body(get(&app, &other, "/me/passkeys").await)
            .await
            .as_array()
            .expect("list")
            .is_empty()
    );
    let response = other
        .patch(app.url(&format!("/me/passkeys/{id}")))
        .json(&json!({ "name": "mine" }))
        .send()
        .await
        .expect("request");
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // A registration ceremony belongs to the session that started it.
    let start = body(post(&app, &zoe, "/me/passkeys/register/start", &json!({})).await).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["publicKey"] })).expect("options");
    let credential = authenticator()
        .do_registration(origin(&app), options)
        .expect("register");
    let stolen = post(
        &app,
        &other,
        "/me/passkeys/register/finish",
        &json!({ "ceremonyId": start["ceremonyId"], "credential": credential }),
    )
    .await;
    // (ann is not stepped up, so the guard answers first.)
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    let wrong = post(
        &app,
        &zoe,
        "/me/passkeys/register/finish",
        &json!({ "ceremonyId": "00000000-0000-4000-8000-000000000000", "credential": credential }),
    )
    .await;
    assert_error(wrong, StatusCode::UNPROCESSABLE_ENTITY, "ceremony_invalid").await;
    let malformed = post(
        &app,
        &zoe,
        "/me/passkeys/register/finish",
        &json!({ "ceremonyId": start["ceremonyId"], "credential": { "id": 1 } }),
    )
    .await;
    assert_error(
        malformed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    // The right session finishes it; unnamed, it is called "Passkey".
    let done = post(
        &app,
        &zoe,
        "/me/passkeys/register/finish",
        &json!({ "ceremonyId": start["ceremonyId"], "credential": credential }),
    )
    .await;
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(body(done).await["name"], "Passkey");
    assert_eq!(
        body(get(&app, &zoe, "/me/passkeys").await)
            .await
            .as_array()
            .expect("list")
            .len(),
        2
    );
}

async fn a_throttled_password_does_not_lock_out_passkeys_or_links(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("lock@example.com").await;
    let browser = app.client.clone();
    step_up(&app, &browser).await;
    let mut device = authenticator();
    register(&app, &browser, &mut device, "Phone").await;
    // Someone guesses the password until the account is throttled.
    let attacker = TestApp::browser();
    let mut throttled = false;
    for _ in 0..10 {
        let response = app
            .login(&attacker, "lock@example.com", "wrong-guess-123")
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the account's password is throttled");
    assert_eq!(
        app.login(&TestApp::browser(), "lock@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner still signs in with the passkey...
    passkey_login(&app, &mut device, "lock@example.com").await;
    // ...and with a mailed link.
    let b = TestApp::browser();
    let asked = post(
        &app,
        &b,
        "/login/magic-link",
        &json!({ "email": "lock@example.com" }),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mails = mails_with_subject(&app, "Your sign-in link").await;
    let link = crate::helpers::link_in(mails.last().expect("mail"), "/login/magic?token=");
    let used = post(
        &app,
        &b,
        "/login/magic-link/confirm",
        &json!({ "token": TestApp::token_of(&link) }),
    )
    .await;
    assert_eq!(used.status(), StatusCode::OK);
}

/// Debian's Chromium with a virtual authenticator (CDP), driven by Playwright
/// (`tests/browser/passkeys.py`): what a real browser sends, `toJSON()` and all, for registration,
/// a discoverable login, a login with the address, step-up and a replay.
async fn chromium_registers_signs_in_and_steps_up(backend: Backend) {
    let app = spawn(backend).await;
    authctl::service::users::create(
        &app.ctx,
        &authctl::service::Actor::cli(),
        authctl::service::users::NewUser {
            email: "chromium@example.com".into(),
            name: "Chromium".into(),
            password: Some(PASSWORD.into()),
            verified: true,
        },
        app.clock_now(),
    )
    .await
    .expect("create");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("AUTHCTL_BROWSER_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join("target/browser-venv"));
    let setup = tokio::process::Command::new(repo.join("scripts/browser-setup.sh"))
        .env("AUTHCTL_BROWSER_VENV", &venv)
        .status()
        .await
        .expect("run scripts/browser-setup.sh");
    assert!(setup.success(), "scripts/browser-setup.sh failed");
    let base = app.ctx.config.public_base();
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(repo.join("tests/browser/passkeys.py"))
        .args([base.as_str(), "chromium@example.com", PASSWORD])
        .output()
        .await
        .expect("run tests/browser/passkeys.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser run failed:\n{said}");
    assert!(said.contains("all steps passed"), "{said}");
    // What the browser did is on the record.
    let user = authctl::service::users::get_by_email(&app.ctx, "chromium@example.com")
        .await
        .expect("user");
    let passkeys = authctl::service::webauthn::list(&app.ctx, &user.id)
        .await
        .expect("list");
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].transports, vec!["internal".to_owned()]);
}

async fn a_disabled_account_and_odd_ids_are_refused_on_the_record(backend: Backend) {
    let app = spawn(backend).await;
    app.verified_user("dora@example.com").await;
    let browser = app.client.clone();
    step_up(&app, &browser).await;
    let mut device = authenticator();
    let view = register(&app, &browser, &mut device, "Key").await;
    // Ids that are not UUIDs (a NUL byte among them) are unknown, never a server error.
    for id in ["%00", "not-an-id", "x%00y"] {
        let response = browser
            .patch(app.url(&format!("/me/passkeys/{id}")))
            .json(&json!({ "name": "x" }))
            .send()
            .await
            .expect("request");
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = browser
            .delete(app.url(&format!("/me/sessions/{id}")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let b = TestApp::browser();
    let (_, start) = login_start(&app, &b, json!({ "email": "dora@example.com" })).await;
    let assertion = serde_json::to_value(
        device
            .do_authentication(origin(&app), request_options(&start))
            .expect("sign"),
    )
    .expect("json");
    assert_error(
        finish(&app, &b, "/login/passkey/finish", "\u{0}", &assertion).await,
        StatusCode::UNAUTHORIZED,
        "ceremony_invalid",
    )
    .await;
    // A body that is not sent as JSON is refused (no cross-site form can start a login).
    let text = b
        .post(app.url("/login/passkey/start"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_error(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // A disabled account: refused, on the record, and the passkey is not counted as used.
    authctl::service::users::disable(
        &app.ctx,
        &authctl::service::Actor::cli(),
        "dora@example.com",
        app.clock_now(),
    )
    .await
    .expect("disable");
    let b = TestApp::browser();
    let (ceremony, start) = login_start(&app, &b, json!({})).await;
    let mut assertion = serde_json::to_value(
        device
            .do_authentication(
                origin(&app),
                offering(&start, view["credentialId"].as_str().expect("id")),
            )
            .expect("sign"),
    )
    .expect("json");
    let user = authctl::service::users::get_by_email(&app.ctx, "dora@example.com")
        .await
        .expect("user");
    let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(uuid::Uuid::parse_str(&user.id).expect("uuid").as_bytes());
    assertion["response"]["userHandle"] = json!(handle);
    assert_error(
        finish(&app, &b, "/login/passkey/finish", &ceremony, &assertion).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    let history = authctl::service::history::list(&app.ctx.db, &user.id, 5)
        .await
        .expect("history");
    assert_eq!(history[0].reason.as_deref(), Some("account_disabled"));
    assert_eq!(history[0].method, "passkey");
    let keys = authctl::service::webauthn::list(&app.ctx, &user.id)
        .await
        .expect("list");
    assert!(keys[0].last_used_at.is_none(), "not counted as used");
}
