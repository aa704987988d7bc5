use std::time::Duration;

use authctl::entity::verification_token;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    the_link_verifies_the_address_once_and_then_answers_410,
    an_expired_link_answers_410_and_a_resent_one_works,
    tokens_are_stored_only_as_hashes,
    resend_answers_202_alike_for_unknown_and_known_addresses,
    resend_sends_at_most_one_mail_a_minute_per_account,
    unverified_accounts_may_use_me_but_not_routes_that_need_verification,
    malformed_and_missing_tokens_are_refused,
);

async fn the_link_verifies_the_address_once_and_then_answers_410(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("verify@example.com").await;
    let link = app.wait_for_links(1).await.remove(0);
    let token = TestApp::token_of(&link);

    let first = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        body(first).await,
        json!({ "verified": true, "email": "verify@example.com" })
    );
    assert_eq!(body(app.get("/me").await).await["emailVerified"], true);

    let second = app.get(&format!("/verify-email?token={token}")).await;
    assert_error(second, StatusCode::GONE, "token_used").await;
}

async fn an_expired_link_answers_410_and_a_resent_one_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("late@example.com").await;
    let old = TestApp::token_of(&app.wait_for_links(1).await[0]);

    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_error(
        app.get(&format!("/verify-email?token={old}")).await,
        StatusCode::GONE,
        "token_expired",
    )
    .await;
    assert_eq!(body(app.get("/me").await).await["emailVerified"], false);

    let resend = app
        .post(
            "/verify-email/resend",
            &json!({ "email": "late@example.com" }),
        )
        .await;
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    let fresh = TestApp::token_of(&app.wait_for_links(2).await[1]);
    assert_eq!(
        app.get(&format!("/verify-email?token={fresh}"))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn tokens_are_stored_only_as_hashes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("hashed@example.com").await;
    let token = TestApp::token_of(&app.wait_for_links(1).await[0]);

    let rows = verification_token::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].token_hash, token);
    assert_eq!(rows[0].token_hash, authctl::tokens::hash(&token));
    assert_eq!(rows[0].email, "hashed@example.com");
}

async fn resend_answers_202_alike_for_unknown_and_known_addresses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("known@example.com").await;
    app.wait_for_links(1).await;
    app.clock.advance(Duration::from_secs(61));

    let unknown = app
        .post(
            "/verify-email/resend",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    let known = app
        .post(
            "/verify-email/resend",
            &json!({ "email": "KNOWN@example.com" }),
        )
        .await;

    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(body(unknown).await, body(known).await);
    let links = app.wait_for_links(2).await;
    assert_eq!(links.len(), 2, "one new mail, for the known address only");
    assert!(
        app.mails()
            .await
            .iter()
            .all(|m| !m.contains("nobody@example.com"))
    );
}

async fn resend_sends_at_most_one_mail_a_minute_per_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("flood@example.com").await;
    app.wait_for_links(1).await;

    for _ in 0..5 {
        // Without a body the signed-in user's address is used.
        let response = app
            .client
            .post(app.url("/verify-email/resend"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    // Everything the requests queued is delivered before counting: nothing is still on its way.
    assert_eq!(
        app.links().await.len(),
        1,
        "the signup mail went out less than a minute ago"
    );

    app.clock.advance(Duration::from_secs(61));
    app.client
        .post(app.url("/verify-email/resend"))
        .send()
        .await
        .expect("request");
    assert_eq!(app.wait_for_links(2).await.len(), 2);
}

async fn unverified_accounts_may_use_me_but_not_routes_that_need_verification(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("unverified@example.com").await;

    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    let patch = app
        .client
        .patch(app.url("/me"))
        .json(&json!({ "name": "New Name" }))
        .send()
        .await
        .expect("request");
    assert_error(patch, StatusCode::FORBIDDEN, "email_not_verified").await;

    let link = app.wait_for_links(1).await.remove(0);
    app.client.get(link).send().await.expect("verify");
    let patch = app
        .client
        .patch(app.url("/me"))
        .json(&json!({ "name": "New Name" }))
        .send()
        .await
        .expect("request");
    assert_eq!(patch.status(), StatusCode::OK);
    assert_eq!(body(patch).await["name"], "New Name");
    assert_eq!(
        app.client
            .post(app.url("/logout"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::NO_CONTENT
    );
}

async fn malformed_and_missing_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(
        app.get("/verify-email").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_token",
    )
    .await;
    assert_error(
        app.get("/verify-email?token=abc").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_token",
    )
    .await;
    let unknown = authctl::tokens::generate();
    assert_error(
        app.get(&format!("/verify-email?token={unknown}")).await,
        StatusCode::GONE,
        "token_invalid",
    )
    .await;
}
