use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    every_response_carries_the_security_headers,
    https_deployments_get_a_host_prefixed_secure_cookie_and_hsts,
    cross_site_state_changes_with_a_session_cookie_are_refused,
    oversized_bodies_get_413,
    unknown_routes_and_methods_get_json_errors,
    health_and_readiness_answer,
    a_database_outage_answers_503_not_500,
    every_route_is_in_the_openapi_document,
);

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for response in [
        app.get("/healthz").await,
        app.get("/me").await,
        app.signup("h@example.com").await,
    ] {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
    }
}

async fn https_deployments_get_a_host_prefixed_secure_cookie_and_hsts(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.public_url = "https://auth.example.com".parse().expect("url")
    })
    .await;
    let response = app.signup("tls@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("__Host-authctl_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && !cookie.contains("Domain"),
        "{cookie}"
    );
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let link = app.wait_for_links(1).await.remove(0);
    assert!(
        link.starts_with("https://auth.example.com/verify-email?token="),
        "{link}"
    );
}

async fn cross_site_state_changes_with_a_session_cookie_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("csrf@example.com").await;

    let evil = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert_error(evil, StatusCode::FORBIDDEN, "cross_site_request").await;
    let fetch = app
        .client
        .post(app.url("/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_error(fetch, StatusCode::FORBIDDEN, "cross_site_request").await;
    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::OK,
        "the session survived"
    );

    let same = app
        .client
        .post(app.url("/logout"))
        .header("origin", app.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("request");
    assert_eq!(same.status(), StatusCode::NO_CONTENT);
    // Without a session cookie there is nothing to forge: a cross-site signup form still works.
    let anonymous = TestApp::browser()
        .post(app.url("/signup"))
        .header("origin", "https://partner.example")
        .json(&json!({ "email": "other@example.com", "password": "pass12345" }))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::CREATED);
}

async fn oversized_bodies_get_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = json!({ "email": "a@example.com", "password": "p", "name": "x".repeat(70_000) });
    assert_error(
        app.post("/signup", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

async fn unknown_routes_and_methods_get_json_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(app.get("/nope").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(
        app.get("/logout").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        body(app.get("/healthz").await).await,
        json!({ "status": "ok" })
    );
    assert_eq!(
        body(app.get("/readyz").await).await,
        json!({ "status": "ready" })
    );
}

async fn a_database_outage_answers_503_not_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("outage@example.com").await;

    app.ctx.db.close_by_ref().await.expect("close the pool");
    // The read connections too (on PostgreSQL they are the same pool).
    app.ctx
        .read
        .close_by_ref()
        .await
        .expect("close the read pool");

    assert_error(
        app.get("/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert_error(
        app.get("/me").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    let login = app
        .login(&TestApp::browser(), "outage@example.com", "pass12345")
        .await;
    assert_error(
        login,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
}

/// Every route the service serves, with the method the OpenAPI document must list.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/signup"),
    ("post", "/login"),
    ("post", "/login/2fa"),
    ("post", "/login/magic-link"),
    ("get", "/login/magic"),
    ("post", "/login/magic"),
    ("post", "/login/magic-link/confirm"),
    ("post", "/login/passkey/start"),
    ("post", "/login/passkey/finish"),
    ("post", "/auth/confirm/passkey/start"),
    ("post", "/auth/confirm/passkey/finish"),
    ("post", "/me/passkeys/register/start"),
    ("post", "/me/passkeys/register/finish"),
    ("get", "/me/passkeys"),
    ("patch", "/me/passkeys/{id}"),
    ("delete", "/me/passkeys/{id}"),
    ("post", "/logout"),
    ("get", "/auth/verify"),
    ("post", "/auth/confirm"),
    ("post", "/me/2fa/totp/setup"),
    ("post", "/me/2fa/totp/enable"),
    ("delete", "/me/2fa/totp"),
    ("post", "/me/2fa/recovery-codes"),
    ("put", "/me/email"),
    ("get", "/confirm-email-change"),
    ("delete", "/me/email/pending"),
    ("get", "/cancel-email-change"),
    ("post", "/cancel-email-change"),
    ("put", "/me/password"),
    ("post", "/password-reset"),
    ("post", "/password-reset/confirm"),
    ("post", "/me/api-keys"),
    ("get", "/me/api-keys"),
    ("delete", "/me/api-keys/{id}"),
    ("post", "/me/delete"),
    ("get", "/me/delete/status"),
    ("post", "/me/delete/cancel"),
    ("get", "/me"),
    ("patch", "/me"),
    ("get", "/me/sessions"),
    ("delete", "/me/sessions/{id}"),
    ("post", "/me/sessions/revoke-others"),
    ("get", "/me/login-history"),
    ("get", "/sso/lookup"),
    ("get", "/sso/login"),
    ("post", "/saml/{provider}/acs"),
    ("get", "/saml/{provider}/metadata"),
    ("get", "/verify-email"),
    ("post", "/verify-email/resend"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

async fn every_route_is_in_the_openapi_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec: Value = body(app.get("/openapi.json").await).await;
    let paths = spec["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is missing from /openapi.json"
        );
        // And the route is really served (anything but a 404 or 405 from the router).
        let response = app
            .client
            .request(
                method.to_uppercase().parse().expect("method"),
                app.url(path),
            )
            .send()
            .await
            .expect("request");
        // (A handler's own 404, such as an unknown provider, names what was not found.)
        let status = response.status();
        let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND
                && body(response).await["message"] == "no such route");
        assert!(
            !unrouted,
            "{method} {path} is documented but not served ({status})"
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "the document lists a route this test does not know: add it to ROUTES"
    );
}

on_every_backend!(instances_starting_at_once_migrate_without_racing);

/// Several `serve` instances start at once on a fresh database: every one of them migrates
/// successfully (PostgreSQL: an advisory lock; SQLite: a lock file beside the database).
async fn instances_starting_at_once_migrate_without_racing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A fresh, empty database next to the app's (same server or folder).
    let url = match app.ctx.config.database_url.expose() {
        u if u.starts_with("sqlite:") => u.replace("authctl.db", "fresh.db"),
        u => {
            let name = format!("authctl_test_{}", uuid::Uuid::new_v4().simple());
            sea_orm::ConnectionTrait::execute_unprepared(
                &app.ctx.db,
                &format!("CREATE DATABASE \"{name}\""),
            )
            .await
            .expect("create");
            let mut parsed = url::Url::parse(u).expect("url");
            parsed.set_path(&name);
            parsed.to_string()
        }
    };
    let url = authctl::config::DatabaseUrl::new(url);
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        starts.push(tokio::spawn(async move {
            let db = authctl::db::connect(&url).await.expect("connect");
            authctl::db::migrate(&db, &url).await.map(|()| db)
        }));
    }
    for start in starts {
        let db = start.await.expect("task").expect("every instance migrates");
        authctl::db::ensure_migrated(&db)
            .await
            .expect("schema is current");
        db.close().await.expect("close");
    }
    if url.is_postgres() {
        let name = url::Url::parse(url.expose())
            .expect("url")
            .path()
            .trim_start_matches('/')
            .to_owned();
        sea_orm::ConnectionTrait::execute_unprepared(
            &app.ctx.db,
            &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
        )
        .await
        .expect("drop");
    }
}

on_every_backend!(metrics_count_responses_and_read_gauges_from_the_database);

async fn metrics_count_responses_and_read_gauges_from_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("metrics@example.com").await;
    app.get("/nope").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("text");
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("{name} missing from {text}"))
    };
    assert!(value("authctl_http_responses_total{class=\"2xx\"}") >= 1);
    assert!(value("authctl_http_responses_total{class=\"4xx\"}") >= 1);
    assert_eq!(value("authctl_users "), 1);
    assert_eq!(value("authctl_sessions_unexpired "), 1);
    assert_eq!(value("authctl_users_pending_deletion "), 0);
}
