//! Device sessions, session security, login history and fingerprint drift.
use std::time::Duration;

use authctl::config::FingerprintPolicy;
use authctl::entity::session;
use reqwest::{Client, Response, StatusCode};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    every_device_is_listed_with_a_readable_name_and_the_current_flag,
    a_revoked_session_fails_on_its_next_request,
    another_users_session_cannot_be_revoked,
    revoke_others_signs_out_everywhere_else,
    the_token_rotates_with_a_grace_and_a_stale_token_kills_the_session,
    the_oldest_session_is_evicted_beyond_the_cap,
    a_new_ip_gets_one_alert_and_a_known_ip_none,
    login_history_lists_attempts_newest_first,
    a_changed_fingerprint_flags_the_session_and_mails_once,
    the_revoke_policy_ends_a_session_whose_fingerprint_changed,
    the_janitor_prunes_ended_sessions_and_spent_tokens,
);

/// Logs in from a client with a user agent and, behind the trusted proxy, a client IP.
async fn login_as(
    app: &TestApp,
    client: &Client,
    email: &str,
    password: &str,
    user_agent: &str,
    ip: Option<&str>,
) -> Response {
    let mut request = client
        .post(app.url("/login"))
        .header("user-agent", user_agent)
        .json(&json!({ "email": email, "password": password }));
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.expect("request")
}

async fn sessions_of(app: &TestApp, client: &Client) -> Vec<Value> {
    let response = client
        .get(app.url("/me/sessions"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await.as_array().expect("a list").clone()
}

fn by_device<'a>(list: &'a [Value], device: &str) -> &'a Value {
    list.iter()
        .find(|s| s["deviceName"] == device)
        .unwrap_or_else(|| panic!("no {device} in {list:?}"))
}

fn trusted(app_backend: Backend) -> impl std::future::Future<Output = TestApp> {
    TestApp::spawn_with(app_backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")]
    })
}

async fn every_device_is_listed_with_a_readable_name_and_the_current_flag(backend: Backend) {
    let app = trusted(backend).await;
    app.verified_user("devices@example.com").await;
    let (mac, phone) = (TestApp::browser(), TestApp::browser());
    login_as(
        &app,
        &mac,
        "devices@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        Some("198.51.100.10"),
    )
    .await;
    login_as(
        &app,
        &phone,
        "devices@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        Some("203.0.113.20"),
    )
    .await;

    let list = sessions_of(&app, &mac).await;

    assert_eq!(
        list.len(),
        3,
        "the signup session and two devices: {list:?}"
    );
    let chrome = by_device(&list, "Chrome on macOS");
    assert_eq!(chrome["current"], true);
    assert_eq!(chrome["ip"], "198.51.100.10");
    assert_eq!(chrome["userAgent"], "Chrome/120 macOS");
    assert_eq!(chrome["authMethod"], "password");
    for key in ["id", "createdAt", "lastActiveAt"] {
        assert!(chrome[key].is_string(), "{key} in {chrome}");
    }
    let safari = by_device(&list, "Safari on iPhone");
    assert_eq!(safari["current"], false);
    assert_eq!(safari["ip"], "203.0.113.20");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
}

async fn a_revoked_session_fails_on_its_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("revoke@example.com").await;
    let (mac, phone) = (TestApp::browser(), TestApp::browser());
    login_as(
        &app,
        &mac,
        "revoke@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        None,
    )
    .await;
    login_as(
        &app,
        &phone,
        "revoke@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        None,
    )
    .await;
    let list = sessions_of(&app, &mac).await;
    let phone_id = by_device(&list, "Safari on iPhone")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let revoked = mac
        .delete(app.url(&format!("/me/sessions/{phone_id}")))
        .send()
        .await
        .expect("request");

    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let next = phone.get(app.url("/me")).send().await.expect("request");
    assert_error(next, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(sessions_of(&app, &mac).await.len(), 2);
    let again = mac
        .delete(app.url(&format!("/me/sessions/{phone_id}")))
        .send()
        .await
        .expect("request");
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;
}

async fn another_users_session_cannot_be_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("alice@example.com").await;
    let bob = TestApp::browser();
    let signup = bob
        .post(app.url("/signup"))
        .json(&json!({ "email": "bob@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(signup.status(), StatusCode::CREATED);
    let bob_id = user_id(&app, "bob@example.com").await;
    let bob_session = session::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query")
        .into_iter()
        .find(|s| s.user_id == bob_id)
        .expect("bob's session");

    let attempt = app
        .client
        .delete(app.url(&format!("/me/sessions/{}", bob_session.id)))
        .send()
        .await
        .expect("request");

    assert_error(attempt, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        bob.get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK,
        "bob's session lives on"
    );
}

async fn user_id(app: &TestApp, email: &str) -> String {
    authctl::service::users::get_by_email(&app.ctx, email)
        .await
        .expect("user")
        .id
}

async fn revoke_others_signs_out_everywhere_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("everywhere@example.com").await;
    let devices: Vec<Client> = (0..3).map(|_| TestApp::browser()).collect();
    for d in &devices {
        login_as(
            &app,
            d,
            "everywhere@example.com",
            PASSWORD,
            "Firefox/121 Linux",
            None,
        )
        .await;
    }

    let response = devices[0]
        .post(app.url("/me/sessions/revoke-others"))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body(response).await["revoked"],
        3,
        "two devices and the signup session"
    );
    assert_eq!(
        devices[0]
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
    for d in &devices[1..] {
        assert_eq!(
            d.get(app.url("/me"))
                .send()
                .await
                .expect("request")
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.get("/me").await.status(), StatusCode::UNAUTHORIZED);
}

async fn the_token_rotates_with_a_grace_and_a_stale_token_kills_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signup = app.signup("rotate@example.com").await;
    let old = cookie_pair(&signup);
    let id_before = session::Entity::find()
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("session")
        .id;

    app.clock
        .advance(app.ctx.config.session.rotation_interval + Duration::from_secs(1));
    let raw = TestApp::browser();
    let rotated = raw
        .get(app.url("/me"))
        .header("cookie", &old)
        .send()
        .await
        .expect("request");
    assert_eq!(rotated.status(), StatusCode::OK);
    let new = cookie_pair(&rotated);
    assert_ne!(new, old, "a new token after the rotation interval");
    let row = session::Entity::find()
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("session");
    assert_eq!(row.id, id_before, "the session id stays the same");

    // A parallel request that still carries the old token works during the grace.
    app.clock.advance(Duration::from_secs(10));
    let parallel = raw
        .get(app.url("/me"))
        .header("cookie", &old)
        .send()
        .await
        .expect("request");
    assert_eq!(parallel.status(), StatusCode::OK);
    assert!(
        parallel.headers().get("set-cookie").is_none(),
        "no second rotation from the old token"
    );
    assert_eq!(
        raw.get(app.url("/me"))
            .header("cookie", &new)
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );

    // After the grace the old token is dead, and presenting it ends the whole session.
    app.clock.advance(Duration::from_secs(25));
    let stale = raw
        .get(app.url("/me"))
        .header("cookie", &old)
        .send()
        .await
        .expect("request");
    assert_error(stale, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let after = raw
        .get(app.url("/me"))
        .header("cookie", &new)
        .send()
        .await
        .expect("request");
    assert_error(after, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let audit = authctl::service::audit::list(&app.ctx, None, None, 20)
        .await
        .expect("audit");
    assert!(audit.iter().any(|e| e.action == "session_token_reused"));
}

fn cookie_pair(response: &Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

async fn the_oldest_session_is_evicted_beyond_the_cap(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.session.max_per_user = 2).await;
    app.signup("capped@example.com").await; // session 1 (the app's client)
    app.clock.advance(Duration::from_secs(1));
    let second = TestApp::browser();
    login_as(
        &app,
        &second,
        "capped@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        None,
    )
    .await;
    app.clock.advance(Duration::from_secs(1));
    let third = TestApp::browser();
    login_as(
        &app,
        &third,
        "capped@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        None,
    )
    .await;

    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::UNAUTHORIZED,
        "the oldest was evicted"
    );
    assert_eq!(
        second
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        third
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        session::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .len(),
        2
    );
}

async fn count_mails(app: &TestApp, subject: &str) -> usize {
    app.mails()
        .await
        .iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .count()
}

async fn wait_for_mails(app: &TestApp, subject: &str, n: usize) {
    let found = count_mails(app, subject).await;
    assert!(
        found >= n,
        "expected {n} mail(s) with subject {subject:?}, found {found}"
    );
}

async fn a_new_ip_gets_one_alert_and_a_known_ip_none(backend: Backend) {
    let app = trusted(backend).await;
    let signup = app
        .client
        .post(app.url("/signup"))
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({ "email": "alerts@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(signup.status(), StatusCode::CREATED);
    let device = TestApp::browser();

    // The first login after signup is never an alert, even from another IP.
    login_as(
        &app,
        &device,
        "alerts@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        Some("198.51.100.2"),
    )
    .await;
    login_as(
        &app,
        &device,
        "alerts@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        Some("198.51.100.1"),
    )
    .await;
    login_as(
        &app,
        &device,
        "alerts@example.com",
        PASSWORD,
        "Chrome/120 macOS",
        Some("198.51.100.2"),
    )
    .await;
    // A new IP.
    login_as(
        &app,
        &device,
        "alerts@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        Some("203.0.113.7"),
    )
    .await;
    wait_for_mails(&app, "New sign-in to your account", 1).await;
    // The same IP again: nothing more.
    login_as(
        &app,
        &device,
        "alerts@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        Some("203.0.113.7"),
    )
    .await;
    // The outbox is delivered before counting: no mail is still on its way.
    assert_eq!(count_mails(&app, "New sign-in to your account").await, 1);
    let mail = app
        .mails()
        .await
        .into_iter()
        .find(|m| m.contains("Subject: New sign-in"))
        .expect("mail");
    assert!(
        mail.contains("203.0.113.7") && mail.contains("Safari on iPhone"),
        "{mail}"
    );
    assert!(
        mail.contains("revoke-others"),
        "says how to sign out everywhere: {mail}"
    );
    let audit = authctl::service::audit::list(&app.ctx, None, None, 50)
        .await
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "new_ip_sign_in")
            .count(),
        1
    );
}

async fn login_history_lists_attempts_newest_first(backend: Backend) {
    let app = trusted(backend).await;
    app.verified_user("history@example.com").await;
    let device = TestApp::browser();
    login_as(
        &app,
        &device,
        "history@example.com",
        "wrong-guess",
        "Chrome/120 macOS",
        Some("198.51.100.5"),
    )
    .await;
    app.clock.advance(Duration::from_secs(1));
    login_as(
        &app,
        &device,
        "history@example.com",
        PASSWORD,
        "Safari/17 iPhone",
        Some("198.51.100.6"),
    )
    .await;
    // Attempts on unknown addresses are not stored where anyone could list them.
    login_as(
        &app,
        &device,
        "nobody@example.com",
        "wrong-guess",
        "curl/8",
        None,
    )
    .await;

    let response = device
        .get(app.url("/me/login-history"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let history = body(response).await;
    let entries = history.as_array().expect("list");
    assert_eq!(entries.len(), 2, "{history}");
    assert_eq!(entries[0]["success"], true);
    assert_eq!(entries[0]["deviceName"], "Safari on iPhone");
    assert_eq!(entries[0]["ip"], "198.51.100.6");
    assert_eq!(entries[0]["method"], "password");
    assert_eq!(entries[1]["success"], false);
    assert_eq!(entries[1]["reason"], "wrong_password");

    let one = body(
        device
            .get(app.url("/me/login-history?limit=1"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(one.as_array().expect("list").len(), 1);
    for bad in ["0", "101", "lots"] {
        let response = device
            .get(app.url(&format!("/me/login-history?limit={bad}")))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_client_error(),
            "limit={bad} gave {}",
            response.status()
        );
    }
    let stored = authctl::entity::login_event::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("query");
    assert!(
        stored
            .iter()
            .all(|e| e.user_agent.as_deref() != Some("curl/8"))
    );
}

async fn a_changed_fingerprint_flags_the_session_and_mails_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("fp@example.com").await;
    let device = TestApp::browser();
    let berlin = r#"{"screen":"1920x1080","timezone":"Europe/Berlin","language":"de-DE"}"#;
    let same_reordered = r#"{"language":"de-DE","timezone":"Europe/Berlin","screen":"1920x1080"}"#;
    let other = r#"{"screen":"1366x768","timezone":"Asia/Tokyo","language":"ja-JP"}"#;
    let login = device
        .post(app.url("/login"))
        .header("x-client-fingerprint", berlin)
        .json(&json!({ "email": "fp@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(login.status(), StatusCode::OK);
    let get = |fp: Option<&'static str>| {
        let mut request = device.get(app.url("/me/sessions"));
        if let Some(fp) = fp {
            request = request.header("x-client-fingerprint", fp);
        }
        request.send()
    };

    for fp in [Some(same_reordered), None] {
        let list = body(get(fp).await.expect("request")).await;
        let me = list
            .as_array()
            .expect("list")
            .iter()
            .find(|s| s["current"] == true)
            .expect("current")
            .clone();
        assert_eq!(
            me["flags"],
            json!([]),
            "an unchanged or absent fingerprint flags nothing"
        );
    }
    let list = body(get(Some(other)).await.expect("request")).await;
    let me = list
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["current"] == true)
        .expect("current")
        .clone();
    assert_eq!(me["flags"], json!(["fingerprint_changed"]));
    get(Some(berlin)).await.expect("request");
    get(Some(other)).await.expect("request");
    wait_for_mails(&app, "Unusual activity on one of your sessions", 1).await;
    assert_eq!(
        count_mails(&app, "Unusual activity on one of your sessions").await,
        1,
        "one alert per session"
    );
    // The operator sees the flag too.
    let user_id = user_id(&app, "fp@example.com").await;
    let views =
        authctl::service::sessions::list_for_user(&app.ctx, &user_id, None, app.clock_now())
            .await
            .expect("list");
    assert_eq!(
        views
            .iter()
            .filter(|v| v.flags == ["fingerprint_changed"])
            .count(),
        1
    );
    let audit = authctl::service::audit::list(&app.ctx, Some(&user_id), None, 50)
        .await
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "session_fingerprint_changed")
            .count(),
        1
    );
}

async fn the_revoke_policy_ends_a_session_whose_fingerprint_changed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.session.fingerprint_policy = FingerprintPolicy::Revoke
    })
    .await;
    app.verified_user("strict@example.com").await;
    let device = TestApp::browser();
    device
        .post(app.url("/login"))
        .header("x-client-fingerprint", r#"{"timezone":"Europe/Berlin"}"#)
        .json(&json!({ "email": "strict@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");

    let hijacked = device
        .get(app.url("/me"))
        .header("x-client-fingerprint", r#"{"timezone":"Asia/Tokyo"}"#)
        .send()
        .await
        .expect("request");

    assert_error(hijacked, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let again = device
        .get(app.url("/me"))
        .header("x-client-fingerprint", r#"{"timezone":"Europe/Berlin"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "the session is gone"
    );
    wait_for_mails(&app, "Unusual activity on one of your sessions", 1).await;
}

async fn the_janitor_prunes_ended_sessions_and_spent_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("janitor@example.com").await; // one session, one used token
    app.signup("other@example.com").await; // another session (the client's cookie is replaced), one live token

    let report = authctl::service::janitor::prune(&app.ctx, app.clock_now(), Some(1))
        .await
        .expect("prune");
    assert_eq!(
        (report.sessions, report.verification_tokens),
        (0, 1),
        "only the used token"
    );

    app.clock
        .advance(app.ctx.config.session.idle_timeout + Duration::from_secs(1));
    let report = authctl::service::janitor::prune(&app.ctx, app.clock_now(), Some(1))
        .await
        .expect("prune");
    assert_eq!(
        report.sessions, 2,
        "both idle sessions, one batch at a time"
    );
    assert_eq!(report.verification_tokens, 1, "the expired token");
    assert!(
        session::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .is_empty()
    );
    let again = authctl::service::janitor::prune(&app.ctx, app.clock_now(), Some(1))
        .await
        .expect("prune");
    assert_eq!(again, Default::default(), "nothing left to do");
}
