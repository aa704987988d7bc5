//! Account deletion: the grace period, the limited session, the sweep and what it leaves behind.
use std::time::Duration;

use authctl::context::AppContext;
use authctl::entity::{
    api_key, audit_log, deletion_event, login_event, login_throttle, recovery_code, session, user,
    verification_token,
};
use authctl::service::{Actor, deletion};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, body};
use crate::on_every_backend;

on_every_backend!(
    the_seed_walkthrough_schedules_reports_and_cancels,
    a_pending_account_keeps_only_a_limited_session,
    after_the_grace_period_the_sweep_leaves_nothing_personal,
    a_cancel_racing_the_sweep_never_ends_cancelled_but_deleted,
    concurrent_sweeps_delete_each_account_exactly_once,
    one_account_that_cannot_be_deleted_does_not_hold_back_its_batch,
    a_dry_run_counts_and_changes_nothing,
);

async fn the_seed_walkthrough_schedules_reports_and_cancels(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("leaving@example.com").await;
    let device = TestApp::browser();
    let login = app.login(&device, "leaving@example.com", PASSWORD).await;
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    // As the seed's curl does: the cookie from login, reused for every command.
    let as_written = |method: reqwest::Method, path: &str| {
        TestApp::browser()
            .request(method, app.url(path))
            .header("cookie", cookie.clone())
            .header("content-type", "application/json")
    };

    // The step-up part of the seed, then its deletion part, all with the login cookie.
    let email_change = || {
        as_written(reqwest::Method::PUT, "/me/email")
            .body(json!({ "email": "moved@example.com" }).to_string())
    };
    assert_error(
        email_change().send().await.expect("request"),
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    let confirm = as_written(reqwest::Method::POST, "/auth/confirm")
        .body(json!({ "password": PASSWORD }).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(confirm.status(), StatusCode::OK);
    assert_eq!(
        email_change().send().await.expect("request").status(),
        StatusCode::OK
    );
    // The seed confirms again before deleting: a second rotation of a token the script never
    // stored, after which its login cookie must still work.
    let confirm = as_written(reqwest::Method::POST, "/auth/confirm")
        .body(json!({ "password": PASSWORD }).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(confirm.status(), StatusCode::OK);
    let scheduled = body(
        as_written(reqwest::Method::POST, "/me/delete")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(scheduled["scheduled"], true);
    assert_eq!(scheduled["daysRemaining"], 30);
    assert!(scheduled["scheduledFor"].is_string());
    let status = body(
        as_written(reqwest::Method::GET, "/me/delete/status")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status["scheduled"].clone(), status["daysRemaining"].clone()),
        (json!(true), json!(30))
    );
    let cancelled = as_written(reqwest::Method::POST, "/me/delete/cancel")
        .send()
        .await
        .expect("request");
    assert_eq!(cancelled.status(), StatusCode::OK);
    let status = body(
        as_written(reqwest::Method::GET, "/me/delete/status")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, json!({ "scheduled": false }));
    crate::helpers::wait_for_subject(&app, "Your account will not be deleted", 1).await;
}

async fn a_pending_account_keeps_only_a_limited_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("limited@example.com").await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let key = body(app.post("/me/api-keys", &json!({ "name": "ci" })).await).await["secret"]
        .as_str()
        .expect("key")
        .to_owned();
    let other = TestApp::browser();
    app.login(&other, "limited@example.com", PASSWORD).await;

    let scheduled = app.post("/me/delete", &json!({})).await;
    assert_eq!(scheduled.status(), StatusCode::OK);
    crate::helpers::wait_for_subject(&app, "Your account is scheduled for deletion", 1).await;

    assert_eq!(
        other
            .get(app.url("/me"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED,
        "other sessions ended"
    );
    assert_eq!(
        TestApp::browser()
            .get(app.url("/me"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::UNAUTHORIZED,
        "API keys ended"
    );
    assert_eq!(app.get("/me").await.status(), StatusCode::OK);
    assert_eq!(app.get("/me/delete/status").await.status(), StatusCode::OK);
    assert_error(
        app.get("/me/sessions").await,
        StatusCode::FORBIDDEN,
        "account_pending_deletion",
    )
    .await;
    let rename = app
        .client
        .patch(app.url("/me"))
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .expect("request");
    assert_error(rename, StatusCode::FORBIDDEN, "account_pending_deletion").await;
    assert_error(
        app.post("/auth/confirm", &json!({ "password": PASSWORD }))
            .await,
        StatusCode::FORBIDDEN,
        "account_pending_deletion",
    )
    .await;

    // Signing in during the grace period gives the same limited session, so the user can cancel.
    let back = TestApp::browser();
    assert_eq!(
        app.login(&back, "limited@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        back.get(app.url("/me/sessions"))
            .send()
            .await
            .expect("request"),
        StatusCode::FORBIDDEN,
        "account_pending_deletion",
    )
    .await;
    assert_eq!(
        back.post(app.url("/me/delete/cancel"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        back.get(app.url("/me/sessions"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK,
        "fully restored"
    );
    assert_error(
        back.post(app.url("/me/delete/cancel"))
            .send()
            .await
            .expect("request"),
        StatusCode::CONFLICT,
        "deletion_not_scheduled",
    )
    .await;
}

/// Every row of every table, as text.
async fn everything(ctx: &AppContext) -> Vec<(&'static str, String)> {
    let db = &ctx.db;
    let mut rows: Vec<(&'static str, String)> = Vec::new();
    macro_rules! dump {
        ($($name:literal => $entity:path),* $(,)?) => {$(
            for row in <$entity>::find().all(db).await.expect("query") {
                rows.push(($name, format!("{row:?}")));
            }
        )*};
    }
    dump!(
        "users" => user::Entity, "sessions" => session::Entity, "verification_tokens" => verification_token::Entity,
        "login_events" => login_event::Entity, "recovery_codes" => recovery_code::Entity, "api_keys" => api_key::Entity,
        "audit_log" => audit_log::Entity, "login_throttles" => login_throttle::Entity, "deletion_events" => deletion_event::Entity,
    );
    rows
}

async fn after_the_grace_period_the_sweep_leaves_nothing_personal(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")]
    })
    .await;
    let ip = "198.51.100.77";
    let signup = app
        .client
        .post(app.url("/signup"))
        .header("x-forwarded-for", ip)
        .json(
            &json!({ "email": "gone@example.com", "password": PASSWORD, "name": "Gwendolyn Gone" }),
        )
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), StatusCode::CREATED);
    app.client
        .get(app.wait_for_links(1).await.remove(0))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .expect("verify");
    let device = TestApp::browser();
    device
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": "gone@example.com", "password": "wrong-guess" }))
        .send()
        .await
        .expect("login");
    device
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": "gone@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    app.post("/me/api-keys", &json!({ "name": "ci" })).await;
    app.post("/password-reset", &json!({ "email": "gone@example.com" }))
        .await;
    app.post("/me/delete", &json!({})).await;
    // Someone else stays.
    TestApp::browser()
        .post(app.url("/signup"))
        .json(&json!({ "email": "stays@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("signup");
    let id = authctl::service::users::get_by_email(&app.ctx, "gone@example.com")
        .await
        .expect("user")
        .id;

    // An entry about another account that this user made: it names the user as the actor.
    let stays = authctl::service::users::get_by_email(&app.ctx, "stays@example.com")
        .await
        .expect("user")
        .id;
    audit_log::Entity::insert(audit_log::ActiveModel {
        at: sea_orm::ActiveValue::Set(app.clock_now()),
        actor: sea_orm::ActiveValue::Set(format!("user:{id}")),
        action: sea_orm::ActiveValue::Set("role_granted".into()),
        user_id: sea_orm::ActiveValue::Set(Some(stays)),
        ..Default::default()
    })
    .exec(&app.ctx.db)
    .await
    .expect("audit row");

    let early = deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("sweep");
    assert_eq!(early.accounts, 0, "nothing is due during the grace period");
    app.clock
        .advance(app.ctx.config.deletion.grace_period + Duration::from_secs(1));
    let report = deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("sweep");

    assert_eq!(report.accounts, 1);
    assert!(report.anonymized["audit_log"] > 0);
    for (table, row) in everything(&app.ctx).await {
        for secret in ["gone@example.com", "Gwendolyn", ip] {
            assert!(!row.contains(secret), "{table} still names {secret}: {row}");
        }
        if table != "deletion_events" {
            assert!(
                !row.contains(&id),
                "{table} still names the user's id: {row}"
            );
        }
    }
    let events = deletion::events(&app.ctx, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event.as_str(), events[0].user_id.as_str()),
        ("user.deleted", id.as_str())
    );
    let kept = authctl::service::audit::list(&app.ctx, Some(&deletion::pseudonym(&id)), None, 100)
        .await
        .expect("audit");
    assert!(
        kept.iter().any(|e| e.action == "signup")
            && kept.iter().any(|e| e.action == "deletion_scheduled"),
        "audit kept under a pseudonym"
    );
    assert_eq!(
        app.login(&TestApp::browser(), "gone@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        authctl::service::users::get_by_email(&app.ctx, "stays@example.com")
            .await
            .is_ok()
    );
    let again = deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("sweep");
    assert_eq!(again.accounts, 0, "running it twice is harmless");
}

async fn schedule_many(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let new = authctl::service::users::NewUser {
            email: format!("due{i}@example.com"),
            name: String::new(),
            password: None,
            verified: true,
        };
        let user = authctl::service::users::create(&app.ctx, &Actor::System, new, app.clock_now())
            .await
            .expect("create");
        deletion::schedule(
            &app.ctx,
            &Actor::System,
            &user,
            None,
            Some(Duration::from_secs(60)),
            None,
            app.clock_now(),
        )
        .await
        .expect("schedule");
        ids.push(user.id);
    }
    app.clock.advance(Duration::from_secs(61));
    ids
}

async fn a_cancel_racing_the_sweep_never_ends_cancelled_but_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = schedule_many(&app, 8).await;
    let now = app.clock_now();
    let cancels = ids.iter().map(|id| {
        let (ctx, id) = (app.ctx.clone(), id.clone());
        tokio::spawn(async move { deletion::cancel(&ctx, &Actor::System, &id, None, now).await })
    });
    let ctx = app.ctx.clone();
    let sweep = tokio::spawn(async move { deletion::sweep(&ctx, now, Some(1), |_| {}).await });
    let outcomes: Vec<_> = futures_join(cancels.collect()).await;
    let swept = sweep.await.expect("task").expect("the sweep never errors");

    let mut cancelled = 0;
    for (id, outcome) in ids.iter().zip(outcomes) {
        let exists = user::Entity::find_by_id(id.clone())
            .one(&app.ctx.db)
            .await
            .expect("query");
        match outcome {
            Ok(()) => {
                cancelled += 1;
                let user = exists.expect("a cancelled account exists");
                assert!(user.deletion_due_at.is_none(), "and is no longer scheduled");
            }
            Err(_) => assert!(
                exists.is_none(),
                "a failed cancel means the sweep deleted it"
            ),
        }
    }
    assert_eq!(cancelled + swept.accounts as usize, ids.len());
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn concurrent_sweeps_delete_each_account_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = schedule_many(&app, 12).await;
    let now = app.clock_now();
    // Four "replicas", each with a pool of its own on the same database.
    let mut sweeps = Vec::new();
    for _ in 0..4 {
        let db = authctl::db::connect(&app.ctx.config.database_url)
            .await
            .expect("connect");
        let ctx = AppContext::new((*app.ctx.config).clone(), db).expect("context");
        sweeps.push(tokio::spawn(async move {
            deletion::sweep(&ctx, now, Some(2), |_| {}).await
        }));
    }
    let mut total = 0;
    for s in futures_join(sweeps).await {
        total += s.expect("no sweep errors").accounts;
    }
    assert_eq!(total, ids.len() as u64, "each account exactly once");
    assert_eq!(
        deletion::events(&app.ctx, 100).await.expect("events").len(),
        ids.len()
    );
    assert_eq!(deletion::due_count(&app.ctx, now).await.expect("count"), 0);
}

/// A batch is one transaction; when one of its accounts cannot be deleted (here a trigger
/// refuses it), the others still are, one by one, and the sweep ends instead of retrying forever.
async fn one_account_that_cannot_be_deleted_does_not_hold_back_its_batch(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = schedule_many(&app, 5).await;
    let stuck = ids[2].clone();
    let refuse: Vec<String> = match app.ctx.db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => vec![
            "CREATE FUNCTION refuse_delete() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql".into(),
            format!("CREATE TRIGGER refuse BEFORE DELETE ON users FOR EACH ROW WHEN (OLD.id = '{stuck}') EXECUTE FUNCTION refuse_delete()"),
        ],
        _ => vec![format!(
            "CREATE TRIGGER refuse BEFORE DELETE ON users WHEN OLD.id = '{stuck}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )],
    };
    for sql in refuse {
        app.ctx.db.execute_unprepared(&sql).await.expect("trigger");
    }
    let report = deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("the sweep goes on");
    let mut expected: Vec<String> = ids.iter().filter(|id| **id != stuck).cloned().collect();
    expected.sort();
    // A set: accounts due at the same moment are claimed in no particular order.
    let mut deleted = report.ids.clone();
    deleted.sort();
    assert_eq!(deleted, expected, "every other account of the batch");
    let left: Vec<String> = user::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(left, vec![stuck], "only the refused account is left");
    assert_eq!(
        deletion::events(&app.ctx, 100).await.expect("events").len(),
        4
    );
}

async fn a_dry_run_counts_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.verified_user("dry@example.com").await;
    let user = authctl::service::users::get_by_email(&app.ctx, "dry@example.com")
        .await
        .expect("user");
    deletion::schedule(
        &app.ctx,
        &Actor::System,
        &user,
        None,
        Some(Duration::from_secs(60)),
        None,
        app.clock_now(),
    )
    .await
    .expect("schedule");
    app.clock.advance(Duration::from_secs(61));
    let before = everything(&app.ctx).await.len();

    let report = deletion::dry_run(&app.ctx, app.clock_now())
        .await
        .expect("dry run");

    assert_eq!(report.accounts, 1);
    assert_eq!(report.deleted["users"], 1);
    assert!(
        report.deleted["login_events"] >= 1 && report.anonymized["audit_log"] >= 1,
        "{report:?}"
    );
    assert_eq!(everything(&app.ctx).await.len(), before, "nothing changed");
    let real = deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("sweep");
    assert_eq!(real.deleted["login_events"], report.deleted["login_events"]);
}

/// Every table with a `user_id` column or a foreign key to `users` has a policy in the plan.
#[tokio::test]
async fn every_table_that_references_users_has_a_deletion_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let db = &app.ctx.db;
    let q = |sql: String| Statement::from_string(sea_orm::DatabaseBackend::Sqlite, sql);
    let tables: Vec<String> = db
        .query_all_raw(q("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'".into()))
        .await
        .expect("tables")
        .iter()
        .map(|r| r.try_get_by_index(0).expect("name"))
        .collect();
    assert!(tables.len() >= 9, "{tables:?}");
    for table in tables {
        let columns: Vec<String> = db
            .query_all_raw(q(format!("SELECT name FROM pragma_table_info('{table}')")))
            .await
            .expect("columns")
            .iter()
            .map(|r| r.try_get_by_index(0).expect("column"))
            .collect();
        let foreign: Vec<String> = db
            .query_all_raw(q(format!(
                "SELECT \"table\" FROM pragma_foreign_key_list('{table}')"
            )))
            .await
            .expect("fks")
            .iter()
            .map(|r| r.try_get_by_index(0).expect("target"))
            .collect();
        let references_users =
            columns.iter().any(|c| c == "user_id") || foreign.iter().any(|t| t == "users");
        let covered = deletion::PLAN.iter().any(|rule| rule.table == table)
            || deletion::HANDLED_ELSEWHERE.contains(&table.as_str());
        assert!(
            !references_users || covered,
            "table {table} references users but has no policy in service::deletion::PLAN"
        );
    }
}

on_every_backend!(user_deleted_events_reach_the_webhook_signed_and_retried);

/// A webhook receiver that refuses its first delivery and records the rest.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use axum::http::{HeaderMap, StatusCode as Http};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (log, count) = (seen.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (log, count) = (log.clone(), count.clone());
            async move {
                if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return Http::INTERNAL_SERVER_ERROR;
                }
                let signature = headers
                    .get("x-authctl-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                log.lock().expect("lock").push((signature, body));
                Http::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, seen)
}

async fn user_deleted_events_reach_the_webhook_signed_and_retried(backend: Backend) {
    let (url, seen) = receiver().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.deletion.webhook_url = Some(url.parse().expect("url"));
        c.deletion.webhook_secret = Some("hook-secret".into());
    })
    .await;
    let ids = schedule_many(&app, 1).await;
    deletion::sweep(&app.ctx, app.clock_now(), Some(10), |_| {})
        .await
        .expect("sweep");

    let first = deletion::deliver_events(&app.ctx, app.clock_now())
        .await
        .expect("deliver");
    assert_eq!(
        (first.delivered, first.failed),
        (0, 1),
        "the receiver refused the first try"
    );
    let too_soon = deletion::deliver_events(&app.ctx, app.clock_now())
        .await
        .expect("deliver");
    assert_eq!(
        (too_soon.delivered, too_soon.failed),
        (0, 0),
        "a retry waits"
    );
    app.clock.advance(Duration::from_secs(61));
    let retried = deletion::deliver_events(&app.ctx, app.clock_now())
        .await
        .expect("deliver");
    assert_eq!(retried.delivered, 1);

    let received = seen.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let (signature, body) = &received[0];
    assert_eq!(
        signature,
        &deletion::signature("hook-secret", body.as_bytes()),
        "signed with the shared secret"
    );
    let event: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(
        (event["event"].as_str(), event["userId"].as_str()),
        (Some("user.deleted"), Some(ids[0].as_str()))
    );
    assert!(event.get("email").is_none());
    let stored = deletion::events(&app.ctx, 10).await.expect("events");
    assert!(stored[0].delivered_at.is_some());
    assert_eq!(
        deletion::deliver_events(&app.ctx, app.clock_now())
            .await
            .expect("deliver")
            .delivered,
        0,
        "delivered once"
    );
}
