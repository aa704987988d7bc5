//! Throttles under bursts of parallel requests, IPv6 clients keyed on their /64, and the recovery
//! rules: what a password reset, a password change and "sign out everywhere else" take away.
use std::time::Duration;

use authctl::entity::{api_key, audit_log, session};
use futures_util::future::join_all;
use reqwest::{Client, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, body, enrolled, link_in, mails_with_subject,
    totp_code, wait_for_subject,
};
use crate::on_every_backend;

on_every_backend!(
    parallel_wrong_passwords_are_evaluated_only_up_to_the_allowance,
    parallel_wrong_codes_on_a_pending_login_are_evaluated_only_up_to_the_allowance,
    parallel_wrong_step_up_passwords_are_evaluated_only_up_to_the_allowance,
    hourly_per_ip_limits_hold_under_a_burst,
    ipv6_clients_are_limited_per_64,
    a_success_gives_its_reservation_back,
    a_success_after_the_allowance_leaves_no_wait_behind,
    a_client_in_its_wait_touches_no_account,
    a_correct_password_does_not_reset_the_count_of_wrong_codes,
    parallel_reset_requests_send_one_mail,
    finishing_a_second_factor_never_evicts_the_session_it_finishes,
    a_password_reset_ends_api_keys_and_pending_email_changes,
    a_password_change_and_signing_out_elsewhere_cancel_a_pending_email_change,
    the_old_address_can_cancel_a_pending_change,
    pending_logins_neither_count_toward_the_session_cap_nor_evict_sessions,
    rejections_of_every_extractor_are_json,
    the_document_lists_what_the_extractors_answer,
    metrics_can_be_served_on_a_listener_of_their_own,
);

/// Sends `n` requests at once; returns their statuses.
async fn burst(n: usize, request: impl Fn(usize) -> reqwest::RequestBuilder) -> Vec<StatusCode> {
    join_all((0..n).map(|i| request(i).send()))
        .await
        .into_iter()
        .map(|r| r.expect("request").status())
        .collect()
}

/// Exactly `evaluated` of the burst were answered `status`, and every other one 429.
fn assert_split(statuses: &[StatusCode], status: StatusCode, evaluated: usize) {
    let count = |wanted: StatusCode| statuses.iter().filter(|s| **s == wanted).count();
    assert_eq!(count(status), evaluated, "{statuses:?}");
    assert_eq!(
        count(StatusCode::TOO_MANY_REQUESTS),
        statuses.len() - evaluated,
        "{statuses:?}"
    );
}

async fn audited(app: &TestApp, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(&app.ctx.db)
        .await
        .expect("count")
}

async fn parallel_wrong_passwords_are_evaluated_only_up_to_the_allowance(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.throttle.ip_free_failures = 1000).await;
    app.verified_user("burst@example.com").await;
    let free = app.ctx.config.throttle.account_free_failures as usize;

    let statuses = burst(50, |_| {
        TestApp::browser()
            .post(app.url("/login"))
            .json(&json!({ "email": "burst@example.com", "password": "wrong-password" }))
    })
    .await;

    // The allowance, plus the one attempt that starts the wait; every other one is refused
    // before its password is hashed.
    assert_split(&statuses, StatusCode::UNAUTHORIZED, free + 1);
    assert_eq!(audited(&app, "login_failed").await, free as u64 + 1);
}

async fn parallel_wrong_codes_on_a_pending_login_are_evaluated_only_up_to_the_allowance(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrolled(&app, "codes@example.com").await;
    let device = TestApp::browser();
    let response = app.login(&device, "codes@example.com", PASSWORD).await;
    assert_eq!(body(response).await["twoFactorRequired"], true);
    let right = totp_code(&secret, app.clock_now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let free = app.ctx.config.throttle.account_free_failures as usize;

    let statuses = burst(60, |_| {
        device
            .post(app.url("/login/2fa"))
            .json(&json!({ "code": wrong }))
    })
    .await;

    assert_split(&statuses, StatusCode::UNAUTHORIZED, free + 1);
    assert_eq!(audited(&app, "login_failed").await, free as u64 + 1);
}

async fn parallel_wrong_step_up_passwords_are_evaluated_only_up_to_the_allowance(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.throttle.ip_free_failures = 1000).await;
    app.verified_user("confirm@example.com").await;
    let free = app.ctx.config.throttle.account_free_failures as usize;

    let statuses = burst(50, |_| {
        app.client
            .post(app.url("/auth/confirm"))
            .json(&json!({ "password": "wrong-password" }))
    })
    .await;

    assert_split(&statuses, StatusCode::UNAUTHORIZED, free + 1);
    assert_eq!(audited(&app, "step_up_failed").await, free as u64 + 1);
}

async fn hourly_per_ip_limits_hold_under_a_burst(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.throttle.signups_per_ip_per_hour = 20;
        c.password_reset.ip_limit_per_hour = 20;
        c.verification.ip_limit_per_hour = 20;
    })
    .await;

    let signups = burst(50, |i| {
        TestApp::browser().post(app.url("/signup")).json(
            &json!({ "email": format!("s{i}@example.com"), "password": PASSWORD, "name": "S" }),
        )
    })
    .await;
    assert_split(&signups, StatusCode::CREATED, 20);
    assert_eq!(audited(&app, "signup").await, 20);

    let resets = burst(50, |i| {
        app.client
            .post(app.url("/password-reset"))
            .json(&json!({ "email": format!("s{i}@example.com") }))
    })
    .await;
    assert_split(&resets, StatusCode::ACCEPTED, 20);

    // Resending verification had no per-IP limit at all before.
    let resends = burst(50, |i| {
        app.client
            .post(app.url("/verify-email/resend"))
            .json(&json!({ "email": format!("nobody{i}@example.com") }))
    })
    .await;
    assert_split(&resends, StatusCode::ACCEPTED, 20);
    // An hour later the limits start again.
    app.clock.advance(Duration::from_secs(3601));
    let again = app
        .post("/verify-email/resend", &json!({ "email": "x@example.com" }))
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
}

async fn ipv6_clients_are_limited_per_64(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.throttle.signups_per_ip_per_hour = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let signup = |ip: &'static str, i: usize| {
        TestApp::browser()
            .post(app.url("/signup"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": format!("v6-{i}@example.com"), "password": PASSWORD, "name": "V" }))
            .send()
    };
    // Three addresses of one /64 share one allowance...
    for (i, ip) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            signup(ip, i).await.expect("request").status(),
            StatusCode::CREATED
        );
    }
    let rotated = signup("2001:db8:1:2:abcd:ef01:2345:6789", 3)
        .await
        .expect("request");
    assert_error(rotated, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // ...while the next /64 is another client.
    assert_eq!(
        signup("2001:db8:1:3::1", 4)
            .await
            .expect("request")
            .status(),
        StatusCode::CREATED
    );
}

async fn a_success_gives_its_reservation_back(backend: Backend) {
    // One IP, an allowance of 3 failures: successes in between never use it up.
    let app = TestApp::spawn_with(backend, |c| {
        c.throttle.ip_free_failures = 3;
        c.throttle.account_free_failures = 100;
    })
    .await;
    app.verified_user("ok@example.com").await;
    let device = TestApp::browser();
    for _ in 0..10 {
        let response = app.login(&device, "ok@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    for _ in 0..3 {
        let response = app.login(&device, "ok@example.com", "wrong-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth failure starts the wait; the next attempt is refused.
    assert_eq!(
        app.login(&device, "ok@example.com", "wrong-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        app.login(&device, "ok@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}

/// A login from `ip` (the test trusts the loopback proxy).
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> StatusCode {
    TestApp::browser()
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request")
        .status()
}

fn behind_proxy(c: &mut authctl::config::Config) {
    c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
}

async fn a_success_after_the_allowance_leaves_no_wait_behind(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        behind_proxy(c);
        c.throttle.ip_free_failures = 3;
        c.throttle.account_free_failures = 100;
    })
    .await;
    app.verified_user("busy@example.com").await;
    let ip = "198.51.100.7";
    for _ in 0..4 {
        let status = login_from(&app, ip, "busy@example.com", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The fourth failure started a wait; once it is over, the client is past its allowance and
    // each attempt starts a wait of its own, but a correct password gives its wait back.
    app.clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, ip, "busy@example.com", PASSWORD).await,
            StatusCode::OK
        );
    }
}

async fn a_client_in_its_wait_touches_no_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        behind_proxy(c);
        c.throttle.ip_free_failures = 1;
        c.throttle.account_free_failures = 2;
    })
    .await;
    app.verified_user("victim@example.com").await;
    // Three clients fail once each on the victim: the third failure starts the account's wait.
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let status = login_from(&app, ip, "victim@example.com", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.clock.advance(Duration::from_secs(2));
    // An attacker's client uses up its own allowance on another address...
    let attacker = "203.0.113.9";
    for _ in 0..2 {
        let status = login_from(&app, attacker, "nobody@example.com", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // ...and is refused on the victim before the victim's account is counted...
    assert_eq!(
        login_from(&app, attacker, "victim@example.com", "wrong-password").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...so the victim, past the allowance but out of the wait, still signs in.
    assert_eq!(
        login_from(&app, "192.0.2.50", "victim@example.com", PASSWORD).await,
        StatusCode::OK
    );
}

async fn a_correct_password_does_not_reset_the_count_of_wrong_codes(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.throttle.ip_free_failures = 1000).await;
    let (secret, _) = enrolled(&app, "guess@example.com").await;
    let free = app.ctx.config.throttle.account_free_failures as usize;
    let right = totp_code(&secret, app.clock_now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let confirm = |code: &str| {
        app.client
            .post(app.url("/auth/confirm"))
            .json(&json!({ "code": code }))
            .send()
    };
    for _ in 0..=free {
        let response = confirm(wrong).await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_error(
        confirm(wrong).await.expect("request"),
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    // The password (which an attacker guessing codes may well have) signs in again and again;
    // the count of wrong codes stays.
    for _ in 0..3 {
        let response = app
            .login(&TestApp::browser(), "guess@example.com", PASSWORD)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_error(
        confirm(wrong).await.expect("request"),
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}

async fn parallel_reset_requests_send_one_mail(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.password_reset.ip_limit_per_hour = 1000).await;
    app.verified_user("reset-burst@example.com").await;

    let statuses = burst(50, |_| {
        TestApp::browser()
            .post(app.url("/password-reset"))
            .json(&json!({ "email": "reset-burst@example.com" }))
    })
    .await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );
    assert_eq!(
        mails_with_subject(&app, "Reset your password").await.len(),
        1
    );
    let tokens = authctl::entity::verification_token::Entity::find()
        .filter(authctl::entity::verification_token::Column::Purpose.eq("password_reset"))
        .count(&app.ctx.db)
        .await
        .expect("count");
    assert_eq!(tokens, 1);
    assert_eq!(audited(&app, "password_reset_requested").await, 1);
}

async fn finishing_a_second_factor_never_evicts_the_session_it_finishes(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.session.max_per_user = 1).await;
    let (secret, _) = enrolled(&app, "one@example.com").await;
    let finish = |device: &Client| {
        device
            .post(app.url("/login/2fa"))
            .json(&json!({ "code": totp_code(&secret, app.clock_now()) }))
            .send()
    };
    // A login waits for its code while another device signs in completely.
    let early = TestApp::browser();
    let response = app.login(&early, "one@example.com", PASSWORD).await;
    assert_eq!(body(response).await["twoFactorRequired"], true);
    let later = TestApp::browser();
    app.login(&later, "one@example.com", PASSWORD).await;
    assert_eq!(
        finish(&later).await.expect("request").status(),
        StatusCode::OK
    );
    // The early login finishes last: it is the newest sign-in, so the other device's session
    // makes room for it, however old the early one's row is.
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(
        finish(&early).await.expect("request").status(),
        StatusCode::OK
    );
    let me = |device: &Client| device.get(app.url("/me")).send();
    assert_eq!(me(&early).await.expect("request").status(), StatusCode::OK);
    assert_eq!(
        me(&later).await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Asks for an address change (with step-up); returns the confirmation link and the cancel link.
async fn request_change(app: &TestApp, client: &Client, to: &str, nth: usize) -> (String, String) {
    let confirm = client
        .post(app.url("/auth/confirm"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(confirm.status(), StatusCode::OK);
    let response = client
        .put(app.url("/me/email"))
        .json(&json!({ "email": to }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let confirmation = wait_for_subject(app, "Confirm your new email address", nth).await;
    let notice = wait_for_subject(app, "Your email address is about to change", nth).await;
    (
        link_in(&confirmation[nth - 1], "/confirm-email-change"),
        link_in(&notice[nth - 1], "/cancel-email-change"),
    )
}

async fn assert_gone(app: &TestApp, link: &str) {
    let response = app.client.get(link).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::GONE, "{link}");
    let error: Value = body(response).await;
    assert!(error["error"].is_string(), "{error}");
}

async fn a_password_reset_ends_api_keys_and_pending_email_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("reset@example.com").await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let key = app.post("/me/api-keys", &json!({ "name": "ci" })).await;
    assert_eq!(key.status(), StatusCode::CREATED);
    let key = body(key).await["secret"].as_str().expect("key").to_owned();
    let (confirm_link, _) = request_change(&app, &app.client, "new-reset@example.com", 1).await;

    app.post("/password-reset", &json!({ "email": "reset@example.com" }))
        .await;
    let mail = wait_for_subject(&app, "Reset your password", 1).await;
    let token = TestApp::token_of(&link_in(&mail[0], "/reset-password"));
    let response = app
        .post(
            "/password-reset/confirm",
            &json!({ "token": token, "newPassword": "a-new-password-1" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let with_key = Client::new()
        .get(app.url("/me"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_error(with_key, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(
        api_key::Entity::find()
            .count(&app.ctx.db)
            .await
            .expect("count"),
        0
    );
    assert_gone(&app, &confirm_link).await;
    let notice = wait_for_subject(&app, "Your password was reset", 1).await;
    assert!(notice[0].contains("API key"), "{}", notice[0]);
}

async fn a_password_change_and_signing_out_elsewhere_cancel_a_pending_email_change(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("change@example.com").await;

    let (by_password, _) = request_change(&app, &app.client, "one@example.com", 1).await;
    let response = app
        .client
        .put(app.url("/me/password"))
        .json(&json!({ "currentPassword": PASSWORD, "newPassword": "another-pass-1" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_gone(&app, &by_password).await;

    // The new password from here on.
    let confirm = app
        .post("/auth/confirm", &json!({ "password": "another-pass-1" }))
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let response = app
        .client
        .put(app.url("/me/email"))
        .json(&json!({ "email": "two@example.com" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let mails = wait_for_subject(&app, "Confirm your new email address", 2).await;
    let by_sign_out = link_in(&mails[1], "/confirm-email-change");
    let response = app.post("/me/sessions/revoke-others", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_gone(&app, &by_sign_out).await;
    let me = body(app.get("/me").await).await;
    assert_eq!(me["email"], "change@example.com");
}

async fn the_old_address_can_cancel_a_pending_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("old@example.com").await;
    let (confirm_link, cancel_link) = request_change(&app, &app.client, "new@example.com", 1).await;

    // Opening the link (as a mail scanner would) changes nothing: it is a page with a button.
    let scanner = Client::new();
    let page = scanner.get(&cancel_link).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("text");
    // The form posts back under the public URL (a base path included).
    let action = format!(
        "<form method=\"post\" action=\"{}/cancel-email-change\"",
        app.ctx.config.public_base()
    );
    assert!(html.contains(&action), "{html}");
    // The button posts the form (a media type is case-insensitive).
    let token = TestApp::token_of(&cancel_link);
    let response = scanner
        .post(app.url("/cancel-email-change"))
        .header(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        )
        .body(format!("token={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.expect("text").contains("cancelled"));
    assert_gone(&app, &confirm_link).await;
    // The cancel link works once.
    let again = scanner
        .post(app.url("/cancel-email-change"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::GONE);

    // From a session: DELETE /me/email/pending.
    let (confirm_link, _) = request_change(&app, &app.client, "newer@example.com", 2).await;
    let deleted = app
        .client
        .delete(app.url("/me/email/pending"))
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_gone(&app, &confirm_link).await;
    let none = app
        .client
        .delete(app.url("/me/email/pending"))
        .send()
        .await
        .expect("request");
    assert_error(none, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(audited(&app, "email_change_cancelled").await, 2);
}

async fn pending_logins_neither_count_toward_the_session_cap_nor_evict_sessions(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.session.max_per_user = 2;
        c.two_factor.max_pending_logins = 2;
    })
    .await;
    let (secret, _) = enrolled(&app, "cap@example.com").await;
    // A second full session (two in all, with the app's own).
    let second = TestApp::browser();
    app.login(&second, "cap@example.com", PASSWORD).await;
    let code = totp_code(&secret, app.clock_now());
    let finished = second
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("request");
    assert_eq!(finished.status(), StatusCode::OK);

    // An attacker with the password alone starts three logins: none touches the real sessions.
    let pending: Vec<Client> = (0..3).map(|_| TestApp::browser()).collect();
    for browser in &pending {
        let response = app.login(browser, "cap@example.com", PASSWORD).await;
        assert_eq!(body(response).await["twoFactorRequired"], true);
    }
    for browser in [&app.client, &second] {
        let me = browser.get(app.url("/me")).send().await.expect("request");
        assert_eq!(me.status(), StatusCode::OK);
    }
    // The oldest pending login went; the two newest still wait for their code.
    let waiting = session::Entity::find()
        .filter(session::Column::State.eq("pending_2fa"))
        .count(&app.ctx.db)
        .await
        .expect("count");
    assert_eq!(waiting, 2);
    app.clock.advance(Duration::from_secs(30));
    let late = pending[0]
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": totp_code(&secret, app.clock_now()) }))
        .send()
        .await
        .expect("request");
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
}

async fn rejections_of_every_extractor_are_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("json@example.com").await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode)> = vec![
        // Query strings: a missing field, a value of the wrong type.
        (
            app.client.get(app.url("/sso/lookup")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            app.client.get(app.url("/me/login-history?limit=many")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Bodies: not JSON, the wrong content type, a wrong field type, too large.
        (
            app.client
                .post(app.url("/login"))
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            app.client.post(app.url("/login")).body("email=a"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            app.client
                .post(app.url("/login"))
                .json(&json!({ "email": 1, "password": [] })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            app.client
                .post(app.url("/verify-email/resend"))
                // The server answers before reading the whole body and then closes the
                // connection; a pooled connection reused for the next case would race that.
                .header("connection", "close")
                .body(vec![b'x'; 200 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            app.client
                .post(app.url("/cancel-email-change"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("nope=1"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Routes and methods.
        (
            app.client.get(app.url("/no/such/route")),
            StatusCode::NOT_FOUND,
        ),
        (
            app.client.get(app.url("/logout")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (request, status) in cases {
        let response = request.send().await.expect("request");
        let url = response.url().clone();
        assert_eq!(response.status(), status, "{url}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json"),
            "{url}"
        );
        let error: Value = response.json().await.expect("a JSON body");
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()) && error["message"].is_string(),
            "{url}: {error}"
        );
    }
}

async fn metrics_can_be_served_on_a_listener_of_their_own(backend: Backend) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let app = TestApp::spawn_with(backend, |c| {
        c.metrics.bind = Some(([127, 0, 0, 1], port).into());
    })
    .await;
    // The public listener no longer has it...
    assert_error(
        app.get("/metrics").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // ...the metrics listener has only it (it may take a moment to bind).
    let mut scraped = None;
    for _ in 0..50 {
        if let Ok(r) = Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            scraped = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scraped = scraped.expect("the metrics listener answers");
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped
            .text()
            .await
            .expect("text")
            .contains("authctl_users ")
    );
    let other = Client::new()
        .get(format!("http://127.0.0.1:{port}/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let posted = Client::new()
        .post(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("request");
    assert_error(posted, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

async fn the_document_lists_what_the_extractors_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec: Value = body(app.get("/openapi.json").await).await;
    let statuses = |method: &str, path: &str| -> Vec<String> {
        spec["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    for status in ["400", "403", "413", "415", "422", "429", "503"] {
        assert!(
            statuses("post", "/login").iter().any(|s| s == status),
            "POST /login {status}"
        );
    }
    for status in ["401", "422", "503"] {
        assert!(
            statuses("get", "/me/login-history")
                .iter()
                .any(|s| s == status),
            "GET /me/login-history {status}"
        );
    }
    assert!(
        statuses("delete", "/me/sessions/{id}")
            .iter()
            .any(|s| s == "401")
    );
    // Query parameters are documented as query parameters.
    let params = spec["paths"]["/confirm-email-change"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "token" && p["in"] == "query"),
        "{params:?}"
    );
    // The health check and the document itself do not touch the database.
    assert!(!statuses("get", "/healthz").iter().any(|s| s == "503"));
}
