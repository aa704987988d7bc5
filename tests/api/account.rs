//! Email change, password change and password reset.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, body, link_in, totp_code, wait_for_subject,
};
use crate::on_every_backend;

on_every_backend!(
    an_email_change_waits_for_the_link_from_the_new_address,
    two_users_racing_for_one_address_get_it_once,
    a_password_change_needs_the_current_one_and_ends_other_sessions,
    a_reset_link_sets_the_password_once_and_signs_everyone_out,
    a_reset_does_not_skip_the_second_factor,
    reset_requests_are_limited_per_client_ip,
);

async fn stepped_up(app: &TestApp, email: &str) {
    app.verified_user(email).await;
    assert_eq!(
        app.post("/auth/confirm", &json!({ "password": PASSWORD }))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn an_email_change_waits_for_the_link_from_the_new_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    stepped_up(&app, "old@example.com").await;

    let request = app
        .client
        .put(app.url("/me/email"))
        .json(&json!({ "email": "New@Example.com" }))
        .send()
        .await
        .expect("request");
    assert_eq!(
        body(request).await,
        json!({ "email": "old@example.com", "pendingEmail": "new@example.com" })
    );

    let confirmation = wait_for_subject(&app, "Confirm your new email address", 1)
        .await
        .remove(0);
    assert!(
        confirmation.contains("To: new@example.com"),
        "{confirmation}"
    );
    let notice = wait_for_subject(&app, "Your email address is about to change", 1)
        .await
        .remove(0);
    assert!(notice.contains("To: old@example.com") && notice.contains("new@example.com"));
    assert_eq!(
        body(app.get("/me").await).await["email"],
        "old@example.com",
        "unchanged until confirmed"
    );

    let link = link_in(&confirmation, "/confirm-email-change?token=");
    let confirm = TestApp::browser().get(&link).send().await.expect("request");
    assert_eq!(confirm.status(), StatusCode::OK, "works without a session");
    assert_eq!(body(app.get("/me").await).await["email"], "new@example.com");
    assert_eq!(
        app.login(&TestApp::browser(), "new@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        TestApp::browser().get(&link).send().await.expect("request"),
        StatusCode::GONE,
        "token_used",
    )
    .await;

    // An expired link.
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    app.client
        .put(app.url("/me/email"))
        .json(&json!({ "email": "third@example.com" }))
        .send()
        .await
        .expect("request");
    let second = wait_for_subject(&app, "Confirm your new email address", 2).await;
    let expired = second
        .into_iter()
        .map(|m| link_in(&m, "/confirm-email-change?token="))
        .find(|l| *l != link)
        .expect("second link");
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_error(
        TestApp::browser()
            .get(&expired)
            .send()
            .await
            .expect("request"),
        StatusCode::GONE,
        "token_expired",
    )
    .await;
}

async fn two_users_racing_for_one_address_get_it_once(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    stepped_up(&app, "first@example.com").await;
    let second = TestApp::browser();
    second
        .post(app.url("/signup"))
        .json(&json!({ "email": "second@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("signup");
    let verify = crate::helpers::mails_with_subject(&app, "Verify your email address")
        .await
        .into_iter()
        .find(|m| m.contains("To: second@example.com"))
        .map(|m| link_in(&m, "/verify-email?token="))
        .expect("second's link");
    second.get(verify).send().await.expect("verify");
    second
        .post(app.url("/auth/confirm"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("confirm");

    for client in [&app.client, &second] {
        let r = client
            .put(app.url("/me/email"))
            .json(&json!({ "email": "wanted@example.com" }))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let links: Vec<String> = wait_for_subject(&app, "Confirm your new email address", 2)
        .await
        .iter()
        .map(|m| link_in(m, "/confirm-email-change?token="))
        .collect();
    let browser = TestApp::browser();
    let (a, b) = tokio::join!(browser.get(&links[0]).send(), browser.get(&links[1]).send());
    let mut statuses = vec![a.expect("a").status(), b.expect("b").status()];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT]);
    let users = authctl::service::users::list(&app.ctx, false)
        .await
        .expect("users");
    assert_eq!(
        users
            .iter()
            .filter(|u| u.email == "wanted@example.com")
            .count(),
        1
    );
}

async fn a_password_change_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    stepped_up(&app, "pw@example.com").await;
    let other = TestApp::browser();
    app.login(&other, "pw@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| {
        app.client
            .put(app.url("/me/password"))
            .json(&json!({ "currentPassword": current, "newPassword": new }))
            .send()
    };

    assert_error(
        change("wrong-one", "a new long passphrase")
            .await
            .expect("request"),
        StatusCode::FORBIDDEN,
        "invalid_current_password",
    )
    .await;
    assert_error(
        change(PASSWORD, "password1").await.expect("request"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_common",
    )
    .await;
    let done = change(PASSWORD, "a new long passphrase")
        .await
        .expect("request");
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(
        done.headers().get("set-cookie").is_some(),
        "this session gets a new token"
    );

    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    assert_eq!(
        other
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    wait_for_subject(&app, "Your password was changed", 1).await;
    assert_eq!(
        app.login(&TestApp::browser(), "pw@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(
            &TestApp::browser(),
            "pw@example.com",
            "a new long passphrase"
        )
        .await
        .status(),
        StatusCode::OK
    );
}

async fn request_reset(app: &TestApp, email: &str) -> serde_json::Value {
    let response = TestApp::browser()
        .post(app.url("/password-reset"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    body(response).await
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).expect("token").to_owned()
}

async fn a_reset_link_sets_the_password_once_and_signs_everyone_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("forgot@example.com").await;
    assert_eq!(
        request_reset(&app, "nobody@example.com").await,
        request_reset(&app, "forgot@example.com").await
    );
    let mail = wait_for_subject(&app, "Reset your password", 1)
        .await
        .remove(0);
    assert!(!mail.contains("nobody@example.com"));
    let first = token_of(&link_in(&mail, "/reset-password?token="));

    // A newer link replaces the older one.
    app.clock.advance(Duration::from_secs(61));
    request_reset(&app, "forgot@example.com").await;
    let mails = wait_for_subject(&app, "Reset your password", 2).await;
    let second = mails
        .iter()
        .map(|m| token_of(&link_in(m, "/reset-password?token=")))
        .find(|t| *t != first)
        .expect("second token");
    let confirm = |token: String, password: &'static str| {
        TestApp::browser()
            .post(app.url("/password-reset/confirm"))
            .json(&json!({ "token": token, "newPassword": password }))
            .send()
    };
    assert_error(
        confirm(first, "brand new passphrase")
            .await
            .expect("request"),
        StatusCode::GONE,
        "token_invalid",
    )
    .await;
    assert_error(
        confirm(second.clone(), "password").await.expect("request"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_common",
    )
    .await;

    let done = confirm(second.clone(), "brand new passphrase")
        .await
        .expect("request");
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(
        done.headers().get("set-cookie").is_none(),
        "a reset does not sign anyone in"
    );
    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::UNAUTHORIZED,
        "every session ended"
    );
    let reused = confirm(second, "another passphrase!")
        .await
        .expect("request");
    assert_eq!(reused.status(), StatusCode::GONE, "a used link is dead");
    assert_eq!(
        app.login(
            &TestApp::browser(),
            "forgot@example.com",
            "brand new passphrase"
        )
        .await
        .status(),
        StatusCode::OK
    );
    wait_for_subject(&app, "Your password was reset", 1).await;

    // Expiry after 30 minutes.
    app.clock.advance(Duration::from_secs(61));
    request_reset(&app, "forgot@example.com").await;
    let third = wait_for_subject(&app, "Reset your password", 3).await;
    let used: Vec<String> = third
        .iter()
        .map(|m| token_of(&link_in(m, "/reset-password?token=")))
        .collect();
    app.clock.advance(Duration::from_secs(31 * 60));
    let late = confirm(
        used.last().expect("token").clone(),
        "yet another passphrase",
    )
    .await
    .expect("request");
    assert_eq!(late.status(), StatusCode::GONE);
}

async fn a_reset_does_not_skip_the_second_factor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("mfa-reset@example.com").await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let secret = body(app.post("/me/2fa/totp/setup", &json!({})).await).await["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    app.post(
        "/me/2fa/totp/enable",
        &json!({ "code": totp_code(&secret, app.clock_now()) }),
    )
    .await;

    request_reset(&app, "mfa-reset@example.com").await;
    let mail = wait_for_subject(&app, "Reset your password", 1)
        .await
        .remove(0);
    let token = token_of(&link_in(&mail, "/reset-password?token="));
    let done = TestApp::browser()
        .post(app.url("/password-reset/confirm"))
        .json(&json!({ "token": token, "newPassword": "fresh passphrase 1" }))
        .send()
        .await
        .expect("request");
    assert_eq!(done.status(), StatusCode::NO_CONTENT);

    let login = app
        .login(
            &TestApp::browser(),
            "mfa-reset@example.com",
            "fresh passphrase 1",
        )
        .await;
    assert_eq!(body(login).await["twoFactorRequired"], true);
}

async fn reset_requests_are_limited_per_client_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.password_reset.ip_limit_per_hour = 3).await;
    // Three requests an hour from one IP are answered; the fourth is refused.
    for i in 0..3 {
        request_reset(&app, &format!("x{i}@example.com")).await;
    }
    let blocked = TestApp::browser()
        .post(app.url("/password-reset"))
        .json(&json!({ "email": "z@example.com" }))
        .send()
        .await
        .expect("request");
    assert!(blocked.headers().get("retry-after").is_some());
    assert_error(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
