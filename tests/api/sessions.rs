use std::time::Duration;

use authctl::entity::session;
use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    logout_ends_the_session_on_the_server,
    an_idle_session_ends_after_the_idle_timeout,
    an_active_session_still_ends_at_the_absolute_timeout,
    last_active_is_written_at_most_once_a_minute,
    a_forged_cookie_is_not_a_session,
);

async fn logout_ends_the_session_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.signup("bye@example.com").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();

    let logout = app
        .client
        .post(app.url("/logout"))
        .send()
        .await
        .expect("request");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(logout.headers()["clear-site-data"], "\"cookies\"");
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );

    // Replaying the saved cookie does not work: the session is gone from the database.
    let replay = TestApp::browser()
        .get(app.url("/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_error(replay, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(
        session::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .is_empty()
    );
}

async fn an_idle_session_ends_after_the_idle_timeout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("idle@example.com").await;
    let idle = app.ctx.config.session.idle_timeout;

    app.clock.advance(idle - Duration::from_secs(1));
    assert_eq!(
        app.get("/me").await.status(),
        StatusCode::OK,
        "activity slides the idle timer"
    );
    app.clock.advance(idle - Duration::from_secs(1));
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    app.clock.advance(idle + Duration::from_secs(1));
    assert_error(
        app.get("/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert!(
        session::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("query")
            .is_empty(),
        "cleaned up"
    );
}

async fn an_active_session_still_ends_at_the_absolute_timeout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("busy@example.com").await;
    let absolute = app.ctx.config.session.absolute_timeout;
    let step = Duration::from_secs(24 * 3600);
    let mut elapsed = Duration::ZERO;
    while elapsed + step < absolute {
        app.clock.advance(step);
        elapsed += step;
        assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    }
    app.clock
        .advance(absolute - elapsed + Duration::from_secs(1));
    assert_error(
        app.get("/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // A new login starts a new session.
    assert_eq!(
        app.login(&app.client, "busy@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
}

async fn last_active_is_written_at_most_once_a_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("touch@example.com").await;
    let created = session::Entity::find()
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("session")
        .last_active_at;

    app.clock.advance(Duration::from_secs(59));
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    let after_59s = session::Entity::find()
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("session")
        .last_active_at;
    assert_eq!(after_59s, created, "no write within the minute");

    app.clock.advance(Duration::from_secs(2));
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    let after_61s = session::Entity::find()
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("session")
        .last_active_at;
    assert_eq!(after_61s, app.clock_now());
}

async fn a_forged_cookie_is_not_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("real@example.com").await;
    for forged in [
        "authctl_session=abc",
        &format!("authctl_session={}", authctl::tokens::generate()),
    ] {
        let response = TestApp::browser()
            .get(app.url("/me"))
            .header("cookie", forged)
            .send()
            .await
            .expect("request");
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let query = TestApp::browser()
        .get(app.url("/me?session=whatever"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        query.status(),
        StatusCode::UNAUTHORIZED,
        "tokens in URLs are ignored"
    );
}
