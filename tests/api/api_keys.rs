//! API keys: created behind step-up, shown once, hashed at rest, and never enough for
//! credential changes.
use std::time::Duration;

use authctl::entity::api_key;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    a_key_is_shown_once_and_acts_for_its_user,
    a_key_cannot_change_credentials_or_step_up,
    revoked_expired_and_foreign_keys_do_not_work,
);

async fn create_key(app: &TestApp, payload: serde_json::Value) -> serde_json::Value {
    let response = app.post("/me/api-keys", &payload).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body(response).await
}

async fn a_key_is_shown_once_and_acts_for_its_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("keys@example.com").await;
    assert_error(
        app.post("/me/api-keys", &json!({ "name": "ci" })).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;

    let created = create_key(&app, json!({ "name": "ci", "expiresIn": "30d" })).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let prefix = created["prefix"].as_str().expect("prefix").to_owned();
    assert!(
        secret.starts_with(&format!("{prefix}_")) && prefix.starts_with("authctl_"),
        "{secret}"
    );
    assert!(
        secret.len() >= prefix.len() + 44,
        "256 random bits after the prefix"
    );

    let listed = body(app.get("/me/api-keys").await).await;
    assert_eq!(listed[0]["prefix"], prefix.as_str());
    assert!(listed[0].get("secret").is_none() && !listed.to_string().contains(&secret));
    let stored = api_key::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query");
    assert_eq!(stored[0].key_hash, authctl::tokens::hash(&secret));

    let me = TestApp::browser()
        .get(app.url("/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(body(me).await["email"], "keys@example.com");
    let used = body(
        TestApp::browser()
            .get(app.url("/me/api-keys"))
            .bearer_auth(&secret)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert!(used[0]["lastUsedAt"].is_string());
    let in_url = TestApp::browser()
        .get(app.url(&format!("/me?api_key={secret}")))
        .send()
        .await
        .expect("request");
    assert_eq!(
        in_url.status(),
        StatusCode::UNAUTHORIZED,
        "keys are never taken from URLs"
    );
}

async fn a_key_cannot_change_credentials_or_step_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("limits@example.com").await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let secret = create_key(&app, json!({ "name": "robot" })).await["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let key = TestApp::browser();
    let attempts = [
        key.put(app.url("/me/password"))
            .json(&json!({ "currentPassword": PASSWORD, "newPassword": "hijacked passphrase" })),
        key.post(app.url("/auth/confirm"))
            .json(&json!({ "password": PASSWORD })),
        key.put(app.url("/me/email"))
            .json(&json!({ "email": "thief@example.com" })),
        key.post(app.url("/me/api-keys"))
            .json(&json!({ "name": "more" })),
        key.delete(app.url("/me/2fa/totp")),
    ];
    for attempt in attempts {
        let response = attempt.bearer_auth(&secret).send().await.expect("request");
        assert_error(response, StatusCode::FORBIDDEN, "api_key_not_allowed").await;
    }
    assert_eq!(
        app.login(&TestApp::browser(), "limits@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK,
        "the password is unchanged"
    );
}

async fn revoked_expired_and_foreign_keys_do_not_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("owner@example.com").await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let short = create_key(&app, json!({ "name": "short", "expiresIn": "1h" })).await;
    let long = create_key(&app, json!({ "name": "long" })).await;
    assert_error(
        app.post(
            "/me/api-keys",
            &json!({ "name": "bad", "expiresIn": "soon" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_expiry",
    )
    .await;

    let me_with = |secret: &str| {
        TestApp::browser()
            .get(app.url("/me"))
            .bearer_auth(secret.to_owned())
            .send()
    };
    let revoke = app
        .client
        .delete(app.url(&format!(
            "/me/api-keys/{}",
            long["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("request");
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me_with(long["secret"].as_str().expect("secret"))
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED
    );

    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        me_with(short["secret"].as_str().expect("secret"))
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let stranger = TestApp::browser();
    stranger
        .post(app.url("/signup"))
        .json(&json!({ "email": "stranger@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("signup");
    let foreign = stranger
        .delete(app.url(&format!(
            "/me/api-keys/{}",
            short["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("request");
    assert_error(foreign, StatusCode::NOT_FOUND, "not_found").await;
}
