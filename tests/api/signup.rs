use authctl::entity::{session, user};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    signup_returns_201_a_session_cookie_and_a_verification_mail,
    signup_stores_an_argon2id_hash_and_only_a_hash_of_the_session_token,
    an_address_in_another_case_is_already_taken,
    weak_passwords_are_refused_with_the_reason,
    malformed_or_incomplete_signups_get_json_errors,
);

async fn signup_returns_201_a_session_cookie_and_a_verification_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.signup("  Test@Example.com ").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("authctl_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure over plain http: {cookie}"
    );
    let created = body(response).await;
    assert_eq!(created["user"]["email"], "test@example.com");
    assert_eq!(created["user"]["emailVerified"], false);
    let me = app.get("/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(body(me).await["email"], "test@example.com");
    let links = app.wait_for_links(1).await;
    assert!(
        links[0].starts_with(&format!("{}/verify-email?token=", app.base)),
        "{}",
        links[0]
    );
    let mail = &app.mails().await[0];
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "both parts: {mail}"
    );
}

async fn signup_stores_an_argon2id_hash_and_only_a_hash_of_the_session_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.signup("hash@example.com").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let token = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .expect("cookie")
        .1
        .to_owned();

    let stored = user::Entity::find()
        .filter(user::Column::Email.eq("hash@example.com"))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("user");
    let hash = stored.password_hash.expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
    let sessions = session::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query");
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].token_hash, token);
    assert_eq!(sessions[0].token_hash, authctl::tokens::hash(&token));
}

async fn an_address_in_another_case_is_already_taken(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.signup("taken@example.com").await.status(),
        StatusCode::CREATED
    );

    let again = TestApp::browser()
        .post(app.url("/signup"))
        .json(&json!({ "email": "TAKEN@Example.COM", "password": PASSWORD, "name": "x" }))
        .send()
        .await
        .expect("request");

    let error = assert_error(again, StatusCode::CONFLICT, "email_taken").await;
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("taken@example.com")
    );
    assert_eq!(
        user::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .len(),
        1
    );
}

async fn weak_passwords_are_refused_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("short1", "password_too_short"),
        ("password123", "password_too_common"),
        ("weak@example.com", "password_too_guessable"),
    ];
    for (password, code) in cases {
        let response = app
            .post(
                "/signup",
                &json!({ "email": "weak@example.com", "password": password }),
            )
            .await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let huge = "x".repeat(100_000);
    let response = app
        .post(
            "/signup",
            &json!({ "email": "weak@example.com", "password": huge }),
        )
        .await;
    assert!(
        matches!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{}",
        response.status()
    );
    let long = "correct horse battery staple ".repeat(8);
    let response = app
        .post(
            "/signup",
            &json!({ "email": "weak@example.com", "password": long.trim() }),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "a 231-character passphrase is fine"
    );
    assert!(app.links().await.len() <= 1);
}

async fn malformed_or_incomplete_signups_get_json_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/signup")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };

    assert_error(
        raw("{\"email\":", Some("application/json"))
            .await
            .expect("send"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_error(
        raw("{\"email\":\"a@example.com\"}", Some("application/json"))
            .await
            .expect("send"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_error(
        raw("{}", None).await.expect("send"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let with_hint = app
        .post(
            "/signup",
            &json!({ "email": "a@example.com", "password": PASSWORD, "hint": "my dog" }),
        )
        .await;
    assert_error(
        with_hint,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    let bad_email = app
        .post(
            "/signup",
            &json!({ "email": "not-an-address", "password": PASSWORD }),
        )
        .await;
    assert_error(bad_email, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    assert!(
        user::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .is_empty(),
        "nothing was created"
    );
}

on_every_backend!(signups_from_one_ip_are_limited_per_hour);

async fn signups_from_one_ip_are_limited_per_hour(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.throttle.signups_per_ip_per_hour = 2).await;
    let signup = |email: &'static str| {
        TestApp::browser()
            .post(app.url("/signup"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
    };
    assert_eq!(
        signup("one@example.com").await.expect("request").status(),
        StatusCode::CREATED
    );
    assert_eq!(
        signup("two@example.com").await.expect("request").status(),
        StatusCode::CREATED
    );
    let third = signup("three@example.com").await.expect("request");
    assert!(third.headers().get("retry-after").is_some());
    assert_error(third, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert!(
        authctl::service::users::get_by_email(&app.ctx, "three@example.com")
            .await
            .is_err(),
        "nothing was created"
    );

    app.clock.advance(std::time::Duration::from_secs(3601));
    assert_eq!(
        signup("three@example.com").await.expect("request").status(),
        StatusCode::CREATED
    );
}
