//! TOTP enrolment, login with a second factor, replay, recovery codes.
use std::time::Duration;

use reqwest::{Client, StatusCode};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, body, enrolled, totp_code, wait_for_subject,
};
use crate::on_every_backend;

on_every_backend!(
    enrolment_then_login_asks_for_the_code,
    a_code_is_accepted_once_per_time_step,
    a_recovery_code_used_twice_at_once_works_once,
    wrong_codes_are_throttled_and_the_pending_login_expires,
    two_factor_accounts_step_up_with_a_code,
    disabling_and_regenerating_need_step_up_and_mail_the_user,
);

async fn password_step(app: &TestApp, client: &Client, email: &str) -> Value {
    let response = app.login(client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn second_step(app: &TestApp, client: &Client, payload: Value) -> reqwest::Response {
    client
        .post(app.url("/login/2fa"))
        .json(&payload)
        .send()
        .await
        .expect("request")
}

async fn enrolment_then_login_asks_for_the_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("totp@example.com").await;
    assert_error(
        app.post("/me/2fa/totp/setup", &json!({})).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let setup = body(app.post("/me/2fa/totp/setup", &json!({})).await).await;
    let secret = setup["secret"].as_str().expect("secret").to_owned();
    let bytes = data_encoding_base32(&secret);
    assert!(bytes >= 20, "at least 160 bits, got {bytes} bytes");
    assert!(
        setup["otpauthUri"]
            .as_str()
            .expect("uri")
            .starts_with("otpauth://totp/")
    );
    assert!(setup["qrSvg"].as_str().expect("svg").contains("<svg"));
    // Before a correct code nothing changes: login does not ask for one.
    assert_eq!(
        password_step(&app, &TestApp::browser(), "totp@example.com").await["twoFactorRequired"],
        false
    );
    assert_error(
        app.post("/me/2fa/totp/enable", &json!({ "code": "000000" }))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let enable = app
        .post(
            "/me/2fa/totp/enable",
            &json!({ "code": totp_code(&secret, app.clock_now()) }),
        )
        .await;
    let codes = body(enable).await["recoveryCodes"]
        .as_array()
        .expect("codes")
        .len();
    assert_eq!(codes, 10);
    let stored = authctl::service::users::get_by_email(&app.ctx, "totp@example.com")
        .await
        .expect("user");
    assert!(
        !stored.totp_secret.expect("sealed").contains(&secret),
        "the secret is stored encrypted"
    );
    app.clock.advance(Duration::from_secs(30));

    let device = TestApp::browser();
    assert_eq!(
        password_step(&app, &device, "totp@example.com").await["twoFactorRequired"],
        true
    );
    let me = device.get(app.url("/me")).send().await.expect("request");
    assert_error(me, StatusCode::FORBIDDEN, "second_factor_required").await;
    let done = second_step(
        &app,
        &device,
        json!({ "code": totp_code(&secret, app.clock_now()) }),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(body(done).await["twoFactorRequired"], false);
    let me = body(device.get(app.url("/me")).send().await.expect("request")).await;
    assert_eq!(me["twoFactorEnabled"], true);
}

fn data_encoding_base32(secret: &str) -> usize {
    totp_rs::Secret::try_from_base32(secret)
        .expect("base32")
        .as_ref()
        .len()
}

async fn a_code_is_accepted_once_per_time_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrolled(&app, "replay@example.com").await;
    let code = totp_code(&secret, app.clock_now());
    let first = TestApp::browser();
    password_step(&app, &first, "replay@example.com").await;
    assert_eq!(
        second_step(&app, &first, json!({ "code": code }))
            .await
            .status(),
        StatusCode::OK
    );

    let second = TestApp::browser();
    password_step(&app, &second, "replay@example.com").await;
    let replay = second_step(&app, &second, json!({ "code": code })).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "invalid_code").await;
    // A code 90 seconds old is outside the ±1 step window.
    app.clock.advance(Duration::from_secs(90));
    let old = totp_code(&secret, app.clock_now() - chrono::Duration::seconds(90));
    assert_error(
        second_step(&app, &second, json!({ "code": old })).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let fresh = totp_code(&secret, app.clock_now());
    assert_eq!(
        second_step(&app, &second, json!({ "code": fresh }))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_recovery_code_used_twice_at_once_works_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, codes) = enrolled(&app, "recover@example.com").await;
    let (a, b) = (TestApp::browser(), TestApp::browser());
    password_step(&app, &a, "recover@example.com").await;
    password_step(&app, &b, "recover@example.com").await;
    let code = codes[0].to_lowercase();

    let (ra, rb) = tokio::join!(
        second_step(&app, &a, json!({ "recoveryCode": code })),
        second_step(&app, &b, json!({ "recoveryCode": code }))
    );

    let mut statuses = vec![ra.status(), rb.status()];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::UNAUTHORIZED]);
    wait_for_subject(&app, "A recovery code was used", 1).await;
    let rows = authctl::entity::recovery_code::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query");
    assert!(
        rows.iter()
            .all(|r| !r.code_hash.contains(&codes[0].replace('-', ""))),
        "only hashes are stored"
    );
    assert_eq!(rows.iter().filter(|r| r.used_at.is_some()).count(), 1);
}

async fn wrong_codes_are_throttled_and_the_pending_login_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrolled(&app, "guess@example.com").await;
    let device = TestApp::browser();
    password_step(&app, &device, "guess@example.com").await;
    for _ in 0..=app.ctx.config.throttle.account_free_failures {
        assert_error(
            second_step(&app, &device, json!({ "code": "123456" })).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    // A new login does not reset the count.
    let again = TestApp::browser();
    password_step(&app, &again, "guess@example.com").await;
    let throttled = second_step(
        &app,
        &again,
        json!({ "code": totp_code(&secret, app.clock_now()) }),
    )
    .await;
    assert_error(
        throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;

    app.clock
        .advance(app.ctx.config.two_factor.pending_ttl + Duration::from_secs(1));
    let expired = second_step(
        &app,
        &again,
        json!({ "code": totp_code(&secret, app.clock_now()) }),
    )
    .await;
    assert_error(expired, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let history = authctl::service::history::list(
        &app.ctx.db,
        &authctl::service::users::get_by_email(&app.ctx, "guess@example.com")
            .await
            .expect("user")
            .id,
        20,
    )
    .await
    .expect("history");
    assert!(
        history
            .iter()
            .any(|e| e.reason.as_deref() == Some("wrong_second_factor"))
    );
}

async fn two_factor_accounts_step_up_with_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrolled(&app, "mfa@example.com").await;
    let with_password = app
        .post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    assert_error(
        with_password,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    let with_code = app
        .post(
            "/auth/confirm",
            &json!({ "code": totp_code(&secret, app.clock_now()) }),
        )
        .await;
    assert_eq!(with_code.status(), StatusCode::OK);
}

async fn disabling_and_regenerating_need_step_up_and_mail_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, old_codes) = enrolled(&app, "off@example.com").await;
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_error(
        app.client
            .delete(app.url("/me/2fa/totp"))
            .send()
            .await
            .expect("request"),
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    app.post(
        "/auth/confirm",
        &json!({ "code": totp_code(&secret, app.clock_now()) }),
    )
    .await;

    let regenerated = app.post("/me/2fa/recovery-codes", &json!({})).await;
    assert_eq!(regenerated.status(), StatusCode::OK);
    let new_codes = body(regenerated).await["recoveryCodes"]
        .as_array()
        .expect("codes")
        .clone();
    assert_eq!(new_codes.len(), 10);
    let device = TestApp::browser();
    password_step(&app, &device, "off@example.com").await;
    let old = second_step(&app, &device, json!({ "recoveryCode": old_codes[1] })).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_code").await;

    let off = app
        .client
        .delete(app.url("/me/2fa/totp"))
        .send()
        .await
        .expect("request");
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    wait_for_subject(&app, "Two-factor authentication is off", 1).await;
    assert_eq!(
        password_step(&app, &TestApp::browser(), "off@example.com").await["twoFactorRequired"],
        false
    );
}
