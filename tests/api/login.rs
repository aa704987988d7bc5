use std::time::Duration;

use authctl::entity::user;
use authctl::service::{Actor, users};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    login_with_the_right_password_sets_a_cookie_that_opens_me,
    a_wrong_password_and_an_unknown_address_get_the_same_401,
    the_address_is_matched_in_any_case,
    repeated_failures_are_throttled_with_a_growing_retry_after,
    a_success_clears_the_account_throttle,
    failures_from_one_ip_are_throttled_across_accounts,
    forwarded_for_is_only_believed_from_trusted_proxies,
    an_old_hash_is_upgraded_at_the_next_login,
    a_disabled_account_loses_its_sessions_and_cannot_sign_in,
    overlong_passwords_are_refused_before_hashing,
);

async fn login_with_the_right_password_sets_a_cookie_that_opens_me(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("login@example.com").await;
    let device = TestApp::browser();

    let response = app.login(&device, "login@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .starts_with("authctl_session=")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let signed_in = body(response).await;
    assert_eq!(signed_in["user"]["email"], "login@example.com");
    assert_eq!(signed_in["twoFactorRequired"], false);
    let me = device.get(app.url("/me")).send().await.expect("request");
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(body(me).await["emailVerified"], true);
}

async fn a_wrong_password_and_an_unknown_address_get_the_same_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("exists@example.com").await;
    let device = TestApp::browser();

    let wrong = app
        .login(&device, "exists@example.com", "not-the-password")
        .await;
    let unknown = app.login(&device, "ghost@example.com", PASSWORD).await;

    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (wrong, unknown) = (body(wrong).await, body(unknown).await);
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "invalid_credentials");
    let me = device.get(app.url("/me")).send().await.expect("request");
    assert_error(me, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn the_address_is_matched_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("case@example.com").await;
    let response = app
        .login(&TestApp::browser(), "CASE@Example.Com", PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn repeated_failures_are_throttled_with_a_growing_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("victim@example.com").await;
    let device = TestApp::browser();
    let free = app.ctx.config.throttle.account_free_failures;

    for _ in 0..free {
        assert_eq!(
            app.login(&device, "victim@example.com", "wrong-guess")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // One more failure starts the first wait (1 s).
    assert_eq!(
        app.login(&device, "victim@example.com", "wrong-guess")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let blocked = app.login(&device, "victim@example.com", PASSWORD).await;
    assert_eq!(blocked.headers()["retry-after"], "1");
    assert_error(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;

    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.login(&device, "victim@example.com", "wrong-guess")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let blocked = app.login(&device, "victim@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.headers()["retry-after"], "2", "the wait doubles");

    // Throttled, not locked: once the wait is over the right password works.
    app.clock.advance(Duration::from_secs(3));
    assert_eq!(
        app.login(&device, "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_success_clears_the_account_throttle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("forgetful@example.com").await;
    let device = TestApp::browser();
    let free = app.ctx.config.throttle.account_free_failures;
    for _ in 0..free {
        app.login(&device, "forgetful@example.com", "wrong-guess")
            .await;
    }
    assert_eq!(
        app.login(&device, "forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    for _ in 0..free {
        assert_eq!(
            app.login(&device, "forgetful@example.com", "wrong-guess")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login(&device, "forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn failures_from_one_ip_are_throttled_across_accounts(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.throttle.ip_free_failures = 3).await;
    app.signup("sprayed@example.com").await;
    let device = TestApp::browser();
    for i in 0..4 {
        let response = app
            .login(&device, &format!("target{i}@example.com"), "password-spray")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = app.login(&device, "sprayed@example.com", PASSWORD).await;
    assert_error(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn forwarded_for_is_only_believed_from_trusted_proxies(backend: Backend) {
    // Without trusted proxies, a forged X-Forwarded-For does not get a fresh IP bucket.
    let app = TestApp::spawn_with(backend.clone(), |c| c.throttle.ip_free_failures = 2).await;
    let device = TestApp::browser();
    for i in 0..3 {
        device
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({ "email": format!("u{i}@example.com"), "password": "wrong-guess" }))
            .send()
            .await
            .expect("request");
    }
    let forged = device
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.99")
        .json(&serde_json::json!({ "email": "other@example.com", "password": "wrong-guess" }))
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy each client address has its own bucket, and it is what gets recorded.
    let app = TestApp::spawn_with(backend, |c| {
        c.throttle.ip_free_failures = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    for i in 0..3 {
        device
            .post(app.url("/login"))
            .header("x-forwarded-for", "198.51.100.1")
            .json(&serde_json::json!({ "email": format!("u{i}@example.com"), "password": "wrong-guess" }))
            .send()
            .await
            .expect("request");
    }
    let other_client = device
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.2")
        .json(&serde_json::json!({ "email": "other@example.com", "password": "wrong-guess" }))
        .send()
        .await
        .expect("request");
    assert_eq!(other_client.status(), StatusCode::UNAUTHORIZED);
    let entries = authctl::service::audit::list(&app.ctx, None, None, 10)
        .await
        .expect("audit");
    assert!(
        entries.iter().all(|e| e.ip.as_deref() != Some("127.0.0.1")),
        "the proxy's address is not the client's"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.ip.as_deref() == Some("198.51.100.2"))
    );
}

async fn an_old_hash_is_upgraded_at_the_next_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A hash made with weaker, older parameters, as an earlier release would have stored it.
    let old = authctl::password::Hasher::new(&authctl::config::PasswordConfig {
        hash_memory_kib: 4096,
        hash_iterations: 1,
        ..Default::default()
    })
    .expect("params");
    users::create(
        &app.ctx,
        &Actor::Cli("test".into()),
        users::NewUser {
            email: "legacy@example.com".into(),
            name: String::new(),
            password: None,
            verified: true,
        },
        app.clock_now(),
    )
    .await
    .expect("create");
    let legacy_hash = old.hash(&PASSWORD.into()).await.expect("hash");
    user::Entity::update_many()
        .col_expr(
            user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(legacy_hash),
        )
        .filter(user::Column::Email.eq("legacy@example.com"))
        .exec(&app.ctx.db)
        .await
        .expect("update");

    assert_eq!(
        app.login(&TestApp::browser(), "legacy@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    let stored = user::Entity::find()
        .filter(user::Column::Email.eq("legacy@example.com"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("user");
    assert!(
        stored
            .password_hash
            .expect("hash")
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert_eq!(
        app.login(&TestApp::browser(), "legacy@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_disabled_account_loses_its_sessions_and_cannot_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("leaver@example.com").await;
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);

    users::disable(
        &app.ctx,
        &Actor::Cli("ops".into()),
        "leaver@example.com",
        app.clock_now(),
    )
    .await
    .expect("disable");

    assert_error(
        app.get("/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let login = app
        .login(&TestApp::browser(), "leaver@example.com", PASSWORD)
        .await;
    assert_error(login, StatusCode::FORBIDDEN, "account_disabled").await;
    users::enable(
        &app.ctx,
        &Actor::Cli("ops".into()),
        "leaver@example.com",
        app.clock_now(),
    )
    .await
    .expect("enable");
    assert_eq!(
        app.login(&TestApp::browser(), "leaver@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn overlong_passwords_are_refused_before_hashing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .login(&TestApp::browser(), "a@example.com", &"x".repeat(5000))
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_long",
    )
    .await;
}
