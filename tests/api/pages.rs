//! The pages at the HTTP level: what a mailed link's GET changes (nothing), the buttons' POSTs,
//! the sign-in steps and where they send the browser, forms from other sites, step-up in place,
//! and forward-auth as a reverse proxy calls it. (The browser walks the same pages in
//! `tests/browser/walkthrough.py`.)
use reqwest::{Client, StatusCode, header};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, body, mails_with_subject};
use crate::on_every_backend;

on_every_backend!(
    a_verification_link_opened_by_a_browser_waits_for_its_button,
    signing_in_goes_step_by_step_and_returns_to_next,
    forms_from_other_sites_are_refused,
    a_sensitive_action_asks_for_confirmation_in_place_and_carries_on,
    forward_auth_answers_a_proxy,
);

const HTML: &str = "text/html,application/xhtml+xml";

async fn form(
    app: &TestApp,
    browser: &Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .header(header::ACCEPT, HTML)
        // What a browser sends on a form post from our pages (Referrer-Policy: no-referrer).
        .header(header::ORIGIN, "null")
        .header("sec-fetch-site", "same-origin")
        .form(fields)
        .send()
        .await
        .expect("request")
}

async fn page(browser: &Client, url: &str) -> reqwest::Response {
    browser
        .get(url)
        .header(header::ACCEPT, HTML)
        .send()
        .await
        .expect("request")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned()
}

async fn a_verification_link_opened_by_a_browser_waits_for_its_button(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = TestApp::browser();
    let made = form(
        &app,
        &browser,
        "/sign-up",
        &[
            ("email", "page@example.com"),
            ("password", PASSWORD),
            ("name", "Page"),
        ],
    )
    .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&made), "/account/security");
    // Until the address is verified the settings page only asks for that.
    let security = page(&browser, &app.url("/account/security")).await;
    let html = security.text().await.expect("html");
    assert!(html.contains("not verified yet"), "{html}");
    assert!(!html.contains("Where you're signed in"), "{html}");
    let refused = form(&app, &browser, "/account/sessions/revoke-others", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let mails = mails_with_subject(&app, "Verify your email address").await;
    let link = crate::helpers::link_in(mails.last().expect("mail"), "/verify-email?token=");
    // The browser's GET (and a scanner's) is a page with a button; nothing is verified.
    let shown = page(&browser, &link).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let csp = shown.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = shown.text().await.expect("html");
    assert!(html.contains("action=\"/verify-email/confirm\""), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline code"
    );
    let me = body(browser.get(app.url("/me")).send().await.expect("me")).await;
    assert_eq!(me["emailVerified"], false);
    // The button verifies.
    let token = TestApp::token_of(&link);
    let pressed = form(
        &app,
        &browser,
        "/verify-email/confirm",
        &[("token", &token)],
    )
    .await;
    assert_eq!(pressed.status(), StatusCode::OK);
    assert!(
        pressed
            .text()
            .await
            .expect("html")
            .contains("Your address is verified")
    );
    let me = body(browser.get(app.url("/me")).send().await.expect("me")).await;
    assert_eq!(me["emailVerified"], true);
    // Again: the page says the link was used, in words, with a 410.
    let again = page(&browser, &link).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(
        again
            .text()
            .await
            .expect("html")
            .contains("already been used")
    );
    // curl (no text/html) keeps the JSON behaviour of the walkthrough.
    let curl = browser.get(&link).send().await.expect("request");
    assert_eq!(curl.status(), StatusCode::GONE);
    assert_eq!(body(curl).await["error"], "token_used");
}

async fn signing_in_goes_step_by_step_and_returns_to_next(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.web.allowed_redirect_origins = vec!["https://app.example.test".parse().expect("url")];
    })
    .await;
    app.verified_user("steps@example.com").await;
    let browser = TestApp::browser();
    let first = page(&browser, &app.url("/sign-in?next=/account/security")).await;
    assert_eq!(first.status(), StatusCode::OK);
    // The page's script only ever gets a vetted target (browsers fold `/\` into `//`).
    for sneaky in [
        "/%5Cevil.example/",
        "/%09/evil.example/",
        "//evil.example",
        "javascript:alert(1)",
    ] {
        let shown = page(&browser, &app.url(&format!("/sign-in?next={sneaky}"))).await;
        let html = shown.text().await.expect("html");
        assert!(
            html.contains("data-next=\"/account/security\""),
            "{sneaky}: {html}"
        );
    }
    // The address step answers the same page for an unknown address.
    let known = form(
        &app,
        &browser,
        "/sign-in",
        &[("email", "steps@example.com"), ("next", "")],
    )
    .await;
    let unknown = form(
        &app,
        &browser,
        "/sign-in",
        &[("email", "nobody@example.com"), ("next", "")],
    )
    .await;
    let (known, unknown) = (
        known.text().await.expect("html"),
        unknown.text().await.expect("html"),
    );
    assert_eq!(
        known.replace("steps@example.com", "X"),
        unknown.replace("nobody@example.com", "X")
    );
    // A wrong password: the page says so.
    let wrong = form(
        &app,
        &browser,
        "/sign-in/password",
        &[
            ("email", "steps@example.com"),
            ("password", "not-the-password"),
            ("next", ""),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("Wrong email or password")
    );
    // The right one goes to `next` when it is allowed...
    for (next, expected) in [
        (
            "https://app.example.test/dashboard?x=1",
            "https://app.example.test/dashboard?x=1",
        ),
        ("https://evil.example/", "/account/security"),
        ("//evil.example/", "/account/security"),
        ("/account/security", "/account/security"),
    ] {
        let b = TestApp::browser();
        let done = form(
            &app,
            &b,
            "/sign-in/password",
            &[
                ("email", "steps@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&done), expected, "{next}");
    }
    // Reloading a step's address after its POST is a page again, not an error.
    for (path, to) in [
        ("/sign-in/password", "/sign-in"),
        ("/account/sessions/revoke-others", "/account/security"),
        ("/verify-email/confirm", "/account/security"),
    ] {
        let reloaded = page(&browser, &app.url(path)).await;
        assert_eq!(reloaded.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&reloaded), to, "{path}");
    }
    // A signed-in browser that opens the sign-in page goes straight on.
    let b = TestApp::browser();
    form(
        &app,
        &b,
        "/sign-in/password",
        &[("email", "steps@example.com"), ("password", PASSWORD)],
    )
    .await;
    let again = page(&b, &app.url("/sign-in")).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let security = page(&b, &app.url("/account/security")).await;
    assert_eq!(security.status(), StatusCode::OK);
    let html = security.text().await.expect("html");
    assert!(
        html.contains("(this device)") && html.contains("Recent sign-ins"),
        "{html}"
    );
}

async fn forms_from_other_sites_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("csrf@example.com").await;
    // Login CSRF: another site posts the attacker's credentials into the victim's browser.
    let victim = TestApp::browser();
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site"), ("origin", "null")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let mut request = victim.post(app.url("/sign-in/password"));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request
            .form(&[("email", "csrf@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }
    // The mailed link's button too.
    let button = victim
        .post(app.url("/login/magic"))
        .header("sec-fetch-site", "cross-site")
        .header(header::ACCEPT, HTML)
        .form(&[("token", "x".repeat(43).as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(button.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        victim
            .get(app.url("/me"))
            .send()
            .await
            .expect("me")
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn a_sensitive_action_asks_for_confirmation_in_place_and_carries_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("inplace@example.com").await;
    let browser = TestApp::browser();
    form(
        &app,
        &browser,
        "/sign-in/password",
        &[("email", "inplace@example.com"), ("password", PASSWORD)],
    )
    .await;
    // Creating an API key needs a fresh confirmation: the form comes back in place, carrying
    // the key's fields.
    let asked = form(
        &app,
        &browser,
        "/account/api-keys",
        &[("name", "deploy"), ("expires_in", "30d")],
    )
    .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let html = asked.text().await.expect("html");
    assert!(html.contains("action=\"/account/confirm\""), "{html}");
    assert!(html.contains("name=\"name\" value=\"deploy\""), "{html}");
    // A wrong password: asked again, nothing created.
    let wrong = form(
        &app,
        &browser,
        "/account/confirm",
        &[
            ("then", "/account/api-keys"),
            ("name", "deploy"),
            ("expires_in", "30d"),
            ("confirm_password", "wrong-password"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The password: a 307 back to the action, which a browser repeats with the same body.
    let confirmed = form(
        &app,
        &browser,
        "/account/confirm",
        &[
            ("then", "/account/api-keys"),
            ("name", "deploy"),
            ("expires_in", "30d"),
            ("confirm_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&confirmed), "/account/api-keys");
    let created = form(
        &app,
        &browser,
        "/account/api-keys",
        &[
            ("then", "/account/api-keys"),
            ("name", "deploy"),
            ("expires_in", "30d"),
            ("confirm_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.expect("html");
    assert!(
        html.contains("authctl_"),
        "the secret is shown once: {html}"
    );
    let keys = body(
        browser
            .get(app.url("/me/api-keys"))
            .send()
            .await
            .expect("keys"),
    )
    .await;
    assert_eq!(keys[0]["name"], "deploy");
    // `then` only carries on to account actions.
    let off_site = form(
        &app,
        &browser,
        "/account/confirm",
        &[
            ("then", "https://evil.example/"),
            ("confirm_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(off_site.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&off_site), "/account/security");
}

async fn forward_auth_answers_a_proxy(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.web.allowed_redirect_origins = vec!["https://app.example.test".parse().expect("url")];
    })
    .await;
    app.verified_user("proxy@example.com").await;
    // The proxy (no cookie jar of its own) asks with the browser's Cookie header.
    let proxy = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let anonymous = proxy
        .get(app.url("/auth/verify"))
        .send()
        .await
        .expect("verify");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(anonymous).await["error"], "unauthenticated");
    // With the forwarded URL of an allowed app: a 302 to sign in and come back.
    let forwarded = proxy
        .get(app.url("/auth/verify"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/reports?q=1")
        .send()
        .await
        .expect("verify");
    assert_eq!(forwarded.status(), StatusCode::FOUND);
    assert_eq!(
        location(&forwarded),
        format!(
            "{}/sign-in?next=https%3A%2F%2Fapp.example.test%2Freports%3Fq%3D1",
            app.base
        )
    );
    // Another origin, or `rd` pointing away: 401, never a redirect there.
    let other = proxy
        .get(app.url("/auth/verify?rd=https://evil.example/"))
        .send()
        .await
        .expect("verify");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let rd = proxy
        .get(app.url("/auth/verify?rd=https://app.example.test/x"))
        .send()
        .await
        .expect("verify");
    assert_eq!(rd.status(), StatusCode::FOUND);

    // Signed in: 200 and who it is.
    let browser = TestApp::browser();
    let signed_in = browser
        .post(app.url("/login"))
        .json(&json!({ "email": "proxy@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let cookie = signed_in.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let ok = proxy
        .get(app.url("/auth/verify"))
        .header(header::COOKIE, &cookie)
        .header("x-forwarded-host", "app.example.test")
        .send()
        .await
        .expect("verify");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-authctl-email"], "proxy@example.com");
    assert!(!ok.headers()["x-authctl-user-id"].is_empty());
    assert_eq!(ok.headers()["x-authctl-roles"], "");
    // Signed out: the next check fails.
    browser
        .post(app.url("/logout"))
        .send()
        .await
        .expect("logout");
    let after = proxy
        .get(app.url("/auth/verify"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("verify");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}
