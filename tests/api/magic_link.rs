//! Magic links: the mail, the page a scanner may open, the button's POST in the browser that
//! asked, reuse, expiry, a newer link, another browser, a second factor, unknown addresses.
use std::time::Duration;

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, body, enrolled, mails_with_subject, totp_code,
};
use crate::on_every_backend;

on_every_backend!(
    a_link_signs_in_the_browser_that_asked_through_its_page,
    a_scanner_or_another_browser_uses_nothing,
    used_expired_and_superseded_links_are_gone,
    an_account_with_an_authenticator_app_still_gives_its_code,
    unknown_addresses_get_the_same_answer_and_no_mail,
    parallel_uses_of_one_link_sign_in_once,
    an_account_made_before_its_owner_verified_is_claimed_by_the_link,
    another_browser_cannot_cancel_or_hold_back_a_link,
);

const SUBJECT: &str = "Your sign-in link";

async fn ask(app: &TestApp, browser: &Client, email: &str) -> (StatusCode, Value) {
    let response = browser
        .post(app.url("/login/magic-link"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, body(response).await)
}

/// The newest sign-in link mailed so far.
async fn newest_link(app: &TestApp) -> String {
    let mails = mails_with_subject(app, SUBJECT).await;
    let mail = mails.last().expect("a sign-in mail");
    crate::helpers::link_in(mail, "/login/magic?token=")
}

async fn page(browser: &Client, link: &str) -> reqwest::Response {
    browser
        .get(link)
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request")
}

async fn press_the_button(app: &TestApp, browser: &Client, token: &str) -> reqwest::Response {
    browser
        .post(app.url("/login/magic"))
        .header(header::ACCEPT, "text/html")
        .form(&[("token", token)])
        .send()
        .await
        .expect("request")
}

async fn confirm(app: &TestApp, browser: &Client, token: &str) -> reqwest::Response {
    browser
        .post(app.url("/login/magic-link/confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("request")
}

async fn me(app: &TestApp, browser: &Client) -> reqwest::Response {
    browser.get(app.url("/me")).send().await.expect("request")
}

async fn a_link_signs_in_the_browser_that_asked_through_its_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // An unverified account: the link proves the address.
    assert_eq!(
        app.signup("mia@example.com").await.status(),
        StatusCode::CREATED
    );
    let browser = TestApp::browser();
    let (status, answer) = ask(&app, &browser, "mia@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(answer["message"].is_string());
    let link = newest_link(&app).await;
    assert!(link.starts_with(&format!("{}/login/magic?token=", app.base)));
    let token = TestApp::token_of(&link);
    assert!(token.len() >= 43, "32 random bytes");

    // Opening the link shows a button and changes nothing.
    let shown = page(&browser, &link).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(
        shown.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    let html = shown.text().await.expect("page");
    assert!(html.contains("method=\"post\""), "{html}");
    assert!(html.contains(&token));
    assert_eq!(me(&app, &browser).await.status(), StatusCode::UNAUTHORIZED);
    // A GET without text/html (curl, scripts) gets JSON.
    let json_view = body(browser.get(&link).send().await.expect("request")).await;
    assert_eq!(json_view["valid"], true, "{json_view}");

    // The button signs this browser in and goes on to a URL without the token.
    let pressed = press_the_button(&app, &browser, &token).await;
    assert_eq!(pressed.status(), StatusCode::SEE_OTHER);
    assert_eq!(pressed.headers()[header::LOCATION], "/account/security");
    let signed_in = body(me(&app, &browser).await).await;
    assert_eq!(signed_in["email"], "mia@example.com");
    assert_eq!(signed_in["emailVerified"], true, "{signed_in}");
    let history = body(
        browser
            .get(app.url("/me/login-history"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(history[0]["method"], "magic_link", "{history}");
    assert_eq!(history[0]["success"], true);
    let sessions = body(
        browser
            .get(app.url("/me/sessions"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    let current: Vec<&Value> = sessions
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current[0]["authMethod"], "magic_link", "{sessions}");
    // The same button again: the link is used.
    let again = press_the_button(&app, &browser, &token).await;
    assert_eq!(again.status(), StatusCode::GONE);
    let html = again.text().await.expect("page");
    assert!(html.contains("already been used"), "{html}");
    assert_error(
        confirm(&app, &browser, &token).await,
        StatusCode::GONE,
        "token_used",
    )
    .await;
}

async fn a_scanner_or_another_browser_uses_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("noah@example.com").await;
    let laptop = TestApp::browser();
    ask(&app, &laptop, "noah@example.com").await;
    let link = newest_link(&app).await;
    let token = TestApp::token_of(&link);

    // A mail scanner fetches the link (with and without text/html) and even posts the form.
    let scanner = TestApp::browser();
    assert_eq!(page(&scanner, &link).await.status(), StatusCode::OK);
    assert_eq!(
        scanner.get(&link).send().await.expect("request").status(),
        StatusCode::OK
    );
    let posted = press_the_button(&app, &scanner, &token).await;
    assert_eq!(posted.status(), StatusCode::FORBIDDEN);
    let html = posted.text().await.expect("page");
    assert!(html.contains("another browser"), "{html}");
    assert_error(
        confirm(&app, &scanner, &token).await,
        StatusCode::FORBIDDEN,
        "magic_link_other_browser",
    )
    .await;
    assert_eq!(me(&app, &scanner).await.status(), StatusCode::UNAUTHORIZED);

    // The browser that asked still signs in with it, over the API this time.
    let response = confirm(&app, &laptop, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in = body(response).await;
    assert_eq!(signed_in["user"]["email"], "noah@example.com");
    assert_eq!(signed_in["twoFactorRequired"], false);
    assert_eq!(me(&app, &laptop).await.status(), StatusCode::OK);
}

async fn used_expired_and_superseded_links_are_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("olga@example.com").await;
    let browser = TestApp::browser();
    ask(&app, &browser, "olga@example.com").await;
    let first = TestApp::token_of(&newest_link(&app).await);
    // Asking again at once sends no second mail (one per address per minute)...
    ask(&app, &browser, "olga@example.com").await;
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 1);
    // ...a minute later it does, and only the newest link works.
    app.clock.advance(Duration::from_secs(61));
    ask(&app, &browser, "olga@example.com").await;
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 2);
    let second = TestApp::token_of(&newest_link(&app).await);
    assert_ne!(first, second);
    let superseded = page(&browser, &app.url(&format!("/login/magic?token={first}"))).await;
    assert_eq!(superseded.status(), StatusCode::GONE);
    assert!(superseded.text().await.expect("page").contains("newer one"));
    assert_error(
        confirm(&app, &browser, &first).await,
        StatusCode::GONE,
        "token_invalid",
    )
    .await;
    // Ten minutes and a second later the newest has expired too.
    app.clock.advance(Duration::from_secs(10 * 60 + 1));
    assert_error(
        browser
            .get(app.url(&format!("/login/magic?token={second}")))
            .send()
            .await
            .expect("request"),
        StatusCode::GONE,
        "token_expired",
    )
    .await;
    assert_error(
        confirm(&app, &browser, &second).await,
        StatusCode::GONE,
        "token_expired",
    )
    .await;
    assert_eq!(me(&app, &browser).await.status(), StatusCode::UNAUTHORIZED);
    // A malformed token is told apart from a dead one.
    assert_error(
        confirm(&app, &browser, "not-a-token").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_token",
    )
    .await;
}

async fn an_account_with_an_authenticator_app_still_gives_its_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrolled(&app, "pia@example.com").await;
    let browser = TestApp::browser();
    ask(&app, &browser, "pia@example.com").await;
    let token = TestApp::token_of(&newest_link(&app).await);
    let pressed = press_the_button(&app, &browser, &token).await;
    assert_eq!(pressed.status(), StatusCode::SEE_OTHER);
    assert_eq!(pressed.headers()[header::LOCATION], "/sign-in/code");
    // The link is one factor: the session only finishes the login.
    assert_eq!(me(&app, &browser).await.status(), StatusCode::FORBIDDEN);
    let wrong = browser
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": "000000" }))
        .send()
        .await
        .expect("request");
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    app.clock.advance(Duration::from_secs(30));
    let code = totp_code(&secret, app.clock_now());
    let done = browser
        .post(app.url("/login/2fa"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("request");
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(me(&app, &browser).await.status(), StatusCode::OK);
    // Signing in by link opens no step-up window.
    let me_now = body(me(&app, &browser).await).await;
    assert_eq!(me_now["stepUpUntil"], Value::Null);
}

async fn unknown_addresses_get_the_same_answer_and_no_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("quinn@example.com").await;
    let before = app.mails().await.len();
    let browser = TestApp::browser();
    let known = ask(&app, &browser, "quinn@example.com").await;
    let unknown = ask(&app, &browser, "nobody-here@example.com").await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, StatusCode::ACCEPTED);
    let mails = app.mails().await;
    assert_eq!(mails.len(), before + 1, "one mail, to the known address");
    assert!(mails.last().expect("mail").contains("quinn@example.com"));
    // A disabled account gets no link either, with the same answer.
    authctl::service::users::disable(
        &app.ctx,
        &authctl::service::Actor::cli(),
        "quinn@example.com",
        app.clock_now(),
    )
    .await
    .expect("disable");
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(ask(&app, &browser, "quinn@example.com").await, known);
    assert_eq!(app.mails().await.len(), before + 1);
    // Not an address at all: said so.
    let (status, answer) = ask(&app, &browser, "not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    // The per-IP hourly limit answers 429 with Retry-After.
    let limited =
        TestApp::spawn_with(Backend::Sqlite, |c| c.magic_link.ip_limit_per_hour = 2).await;
    let b = TestApp::browser();
    for _ in 0..2 {
        assert_eq!(
            ask(&limited, &b, "x@example.com").await.0,
            StatusCode::ACCEPTED
        );
    }
    let response = b
        .post(limited.url("/login/magic-link"))
        .json(&json!({ "email": "x@example.com" }))
        .send()
        .await
        .expect("request");
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn parallel_uses_of_one_link_sign_in_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("rosa@example.com").await;
    let browser = TestApp::browser();
    // Ten requests for one address at the same moment (from a browser that has its binding
    // cookie already): one mail.
    assert_eq!(
        ask(&app, &browser, "nobody@example.com").await.0,
        StatusCode::ACCEPTED
    );
    let asks: Vec<_> = (0..10)
        .map(|_| ask(&app, &browser, "rosa@example.com"))
        .collect();
    for (status, _) in futures_util::future::join_all(asks).await {
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 1);
    let token = TestApp::token_of(&newest_link(&app).await);
    let uses: Vec<_> = (0..20).map(|_| confirm(&app, &browser, &token)).collect();
    let statuses: Vec<StatusCode> = futures_util::future::join_all(uses)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::GONE),
        "{statuses:?}"
    );
    // The password still works beside it.
    let other = TestApp::browser();
    assert_eq!(
        app.login(&other, "rosa@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn an_account_made_before_its_owner_verified_is_claimed_by_the_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Someone signs up with an address that is not theirs, and keeps the session.
    let squatter = TestApp::browser();
    let made = squatter
        .post(app.url("/signup"))
        .json(&json!({ "email": "owner@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(made.status(), StatusCode::CREATED);
    assert_eq!(me(&app, &squatter).await.status(), StatusCode::OK);
    // The address's owner signs in with a link.
    let owner = TestApp::browser();
    ask(&app, &owner, "owner@example.com").await;
    let token = TestApp::token_of(&newest_link(&app).await);
    assert_eq!(confirm(&app, &owner, &token).await.status(), StatusCode::OK);
    let mine = body(me(&app, &owner).await).await;
    assert_eq!(mine["emailVerified"], true);
    // The squatter's session and password are gone.
    assert_eq!(me(&app, &squatter).await.status(), StatusCode::UNAUTHORIZED);
    assert_error(
        app.login(&TestApp::browser(), "owner@example.com", PASSWORD)
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(mine["factors"], json!([]), "{mine}");
}

async fn another_browser_cannot_cancel_or_hold_back_a_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("vic@example.com").await;
    let victim = TestApp::browser();
    ask(&app, &victim, "vic@example.com").await;
    let first = TestApp::token_of(&newest_link(&app).await);
    // Someone else asks for a link to the same address at once: it is mailed (to the victim)
    // but bound to their browser, and the victim's link keeps working.
    let other = TestApp::browser();
    ask(&app, &other, "vic@example.com").await;
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 2);
    assert_eq!(
        confirm(&app, &victim, &first).await.status(),
        StatusCode::OK
    );
    // The inbox is not flooded: at most five sign-in mails an hour, whoever asks.
    for _ in 0..6 {
        ask(&app, &TestApp::browser(), "vic@example.com").await;
    }
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 5);
    app.clock.advance(Duration::from_secs(3601));
    ask(&app, &victim, "vic@example.com").await;
    assert_eq!(mails_with_subject(&app, SUBJECT).await.len(), 6);
}
