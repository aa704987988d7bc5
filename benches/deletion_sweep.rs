//! The deletion sweep at scale: DUE accounts past their grace period, each with sessions, login
//! history and audit rows, among OTHERS accounts that are not due. Prints accounts per second on
//! SQLite, and on PostgreSQL when `AUTHCTL_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench --bench deletion_sweep` (defaults: 10,000 due among 100,000; override with
//! `AUTHCTL_BENCH_DUE` and `AUTHCTL_BENCH_OTHERS`; `AUTHCTL_BENCH_BATCH` sets the accounts per
//! transaction, else `deletion.batch_size`). Run with two sizes of DUE to see that the
//! cost follows the number due, not the number of users.
use std::time::{Duration, Instant};

use authctl::context::AppContext;
use authctl::entity::{audit_log, login_event, session, user};
use authctl::service::deletion;
use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

#[path = "support.rs"]
mod support;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Inserts `others` ordinary users and `due` users past their deletion date, with their rows.
async fn seed(ctx: &AppContext, due: usize, others: usize) {
    let now = Utc::now();
    let past = now - chrono::Duration::days(1);
    let chunk = 500;
    let total = due + others;
    for start in (0..total).step_by(chunk) {
        let end = (start + chunk).min(total);
        let mut users = Vec::new();
        let mut sessions = Vec::new();
        let mut events = Vec::new();
        let mut audits = Vec::new();
        for i in start..end {
            let id = uuid::Uuid::now_v7().to_string();
            let is_due = i < due;
            users.push(user::ActiveModel {
                id: Set(id.clone()),
                email: Set(format!("user{i}@example.com")),
                name: Set(format!("User {i}")),
                password_hash: Set(None),
                email_verified_at: Set(Some(now)),
                verification_sent_at: Set(None),
                disabled_at: Set(None),
                totp_secret: Set(None),
                totp_pending_secret: Set(None),
                totp_enabled_at: Set(None),
                totp_last_step: Set(None),
                deletion_requested_at: Set(is_due.then_some(past)),
                deletion_due_at: Set(is_due.then_some(past)),
                created_at: Set(now),
                updated_at: Set(now),
            });
            let rows_each = if is_due { 2 } else { 1 };
            for s in 0..rows_each {
                sessions.push(session::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    token_hash: Set(authctl::tokens::hash(&format!("{id}-{s}"))),
                    previous_token_hash: Set(None),
                    token_issued_at: Set(now),
                    user_id: Set(id.clone()),
                    auth_method: Set("password".into()),
                    state: Set("active".into()),
                    stepped_up_at: Set(None),
                    ip: Set(Some("198.51.100.1".into())),
                    user_agent: Set(Some("Chrome/120 macOS".into())),
                    device_name: Set("Chrome on macOS".into()),
                    fingerprint_hash: Set(None),
                    fingerprint_changed_at: Set(None),
                    created_at: Set(now),
                    authenticated_at: Set(now),
                    last_active_at: Set(now),
                    expires_at: Set(now + chrono::Duration::days(30)),
                });
                events.push(login_event::ActiveModel {
                    user_id: Set(id.clone()),
                    at: Set(now),
                    kind: Set("login".into()),
                    method: Set("password".into()),
                    success: Set(true),
                    reason: Set(None),
                    ip: Set(Some("198.51.100.1".into())),
                    user_agent: Set(None),
                    device_name: Set("Chrome on macOS".into()),
                    ..Default::default()
                });
                audits.push(audit_log::ActiveModel {
                    at: Set(now),
                    actor: Set(format!("user:{id}")),
                    action: Set("login".into()),
                    user_id: Set(Some(id.clone())),
                    ip: Set(Some("198.51.100.1".into())),
                    detail: Set(Some(format!("{{\"email\":\"user{i}@example.com\"}}"))),
                    ..Default::default()
                });
            }
        }
        user::Entity::insert_many(users)
            .exec(&ctx.db)
            .await
            .expect("users");
        session::Entity::insert_many(sessions)
            .exec(&ctx.db)
            .await
            .expect("sessions");
        login_event::Entity::insert_many(events)
            .exec(&ctx.db)
            .await
            .expect("events");
        audit_log::Entity::insert_many(audits)
            .exec(&ctx.db)
            .await
            .expect("audit");
    }
}

async fn run(label: &str, url: String, due: usize, others: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = support::context(url, dir.path(), |_| {}).await;
    let seeding = Instant::now();
    seed(&ctx, due, others).await;
    eprintln!(
        "{label}: seeded {due} due + {others} other accounts in {:.1?}",
        seeding.elapsed()
    );
    // Statistics, as autovacuum (PostgreSQL) would have them on a table that grew over time:
    // right after a bulk load the planner knows nothing and scans whole tables.
    ctx.db.execute_unprepared("ANALYZE").await.expect("analyze");
    let start = Instant::now();
    let batch = std::env::var("AUTHCTL_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let report = deletion::sweep(&ctx, Utc::now(), batch, |_| {})
        .await
        .expect("sweep");
    let took = start.elapsed();
    assert_eq!(report.accounts as usize, due);
    println!(
        "{label}: swept {due} due accounts among {} in {:.2?}: {:.0} accounts/s",
        due + others,
        took,
        due as f64 / took.max(Duration::from_millis(1)).as_secs_f64()
    );
}

async fn postgres_database(admin: &str) -> String {
    let name = format!("authctl_bench_{}", uuid::Uuid::new_v4().simple());
    let db = sea_orm::Database::connect(admin).await.expect("PostgreSQL");
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create");
    let mut url = url::Url::parse(admin).expect("url");
    url.set_path(&name);
    url.to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a small size there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let due = env_number("AUTHCTL_BENCH_DUE", if quick { 20 } else { 10_000 });
    let others = env_number("AUTHCTL_BENCH_OTHERS", if quick { 200 } else { 100_000 });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        run("SQLite", support::sqlite_url(dir.path()), due, others).await;
        if let Ok(admin) = std::env::var("AUTHCTL_TEST_POSTGRES_URL") {
            let url = postgres_database(&admin).await;
            run("PostgreSQL", url.clone(), due, others).await;
            let name = url::Url::parse(&url)
                .expect("url")
                .path()
                .trim_start_matches('/')
                .to_owned();
            let db = sea_orm::Database::connect(admin.as_str())
                .await
                .expect("PostgreSQL");
            let _ = db
                .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await;
        }
    });
}
