//! Step-up authentication and the order of checks on sensitive routes.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    the_seed_walkthrough_needs_a_confirmation_before_changing_the_email,
    a_sensitive_route_checks_each_step_in_order,
    the_window_closes_after_five_minutes,
    wrong_confirmations_are_refused_and_throttled,
    confirming_rotates_the_session_token,
);

async fn the_seed_walkthrough_needs_a_confirmation_before_changing_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("walk@example.com").await;
    let device = TestApp::browser();
    assert_eq!(
        app.login(&device, "walk@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    let first = device
        .put(app.url("/me/email"))
        .json(&json!({ "email": "new@example.com" }))
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(first).await,
        json!({ "error": "reauthentication_required", "message": "Re-authentication required" })
    );

    let confirm = device
        .post(app.url("/auth/confirm"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(confirm.status(), StatusCode::OK);
    let confirmed = body(confirm).await;
    assert_eq!(confirmed["confirmed"], true);
    assert!(confirmed["stepUpUntil"].is_string());

    let second = device
        .put(app.url("/me/email"))
        .json(&json!({ "email": "new@example.com" }))
        .send()
        .await
        .expect("request");
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        body(second).await,
        json!({ "email": "walk@example.com", "pendingEmail": "new@example.com" })
    );
}

async fn a_sensitive_route_checks_each_step_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let change = |client: &reqwest::Client| {
        client
            .put(app.url("/me/email"))
            .json(&json!({ "email": "other@example.com" }))
            .send()
    };
    // 1. Not signed in.
    assert_error(
        change(&TestApp::browser()).await.expect("request"),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // 2. Signed in, stepped up, but restricted: the address is not verified.
    app.signup("order@example.com").await;
    let confirm = app
        .post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert_error(
        change(&app.client).await.expect("request"),
        StatusCode::FORBIDDEN,
        "email_not_verified",
    )
    .await;
    // 3. Verified, but no recent authentication.
    let link = app.wait_for_links(1).await.remove(0);
    app.client.get(link).send().await.expect("verify");
    let device = TestApp::browser();
    app.login(&device, "order@example.com", PASSWORD).await;
    assert_error(
        change(&device).await.expect("request"),
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    // 4. Recent authentication, but the action is not allowed (2FA is not on).
    device
        .post(app.url("/auth/confirm"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    let disable = device
        .delete(app.url("/me/2fa/totp"))
        .send()
        .await
        .expect("request");
    assert_error(disable, StatusCode::CONFLICT, "two_factor_not_enabled").await;
    // 5. Everything holds: the action runs.
    assert_eq!(
        change(&device).await.expect("request").status(),
        StatusCode::OK
    );
}

async fn the_window_closes_after_five_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("window@example.com").await;
    assert_eq!(
        body(app.get("/me").await).await["stepUpUntil"],
        serde_json::Value::Null,
        "login alone opens nothing"
    );
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    assert!(body(app.get("/me").await).await["stepUpUntil"].is_string());

    app.clock.advance(Duration::from_secs(4 * 60 + 59));
    let inside = app
        .client
        .put(app.url("/me/email"))
        .json(&json!({ "email": "a1@example.com" }))
        .send()
        .await
        .expect("request");
    assert_eq!(inside.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(2));
    let outside = app
        .client
        .put(app.url("/me/email"))
        .json(&json!({ "email": "a2@example.com" }))
        .send()
        .await
        .expect("request");
    assert_error(outside, StatusCode::FORBIDDEN, "reauthentication_required").await;
    assert_eq!(
        body(app.get("/me").await).await["stepUpUntil"],
        serde_json::Value::Null
    );
}

async fn wrong_confirmations_are_refused_and_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("confirm@example.com").await;
    let free = app.ctx.config.throttle.account_free_failures;
    for _ in 0..=free {
        let wrong = app
            .post("/auth/confirm", &json!({ "password": "not-it" }))
            .await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let throttled = app
        .post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    assert_error(
        throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    assert_error(
        app.post("/auth/confirm", &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::OK,
        "a wrong confirmation does not sign out"
    );
}

async fn confirming_rotates_the_session_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signup = app.signup("rot@example.com").await;
    let old = signup.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let confirm = app
        .post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let new = confirm.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    assert_ne!(old, new);
    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::OK,
        "the client carries the new token"
    );
    app.clock.advance(Duration::from_secs(31));
    let stale = TestApp::browser()
        .get(app.url("/me"))
        .header("cookie", old)
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
}
