//! `/readyz` latency while 200 signups for an address that already has an account arrive at once
//! (each one hashes a password, then finds the address taken). Hashing happens before any
//! transaction, so the readiness probe never waits behind argon2, even on SQLite's one writer.
//!
//! `cargo bench --bench readyz_under_signups` (SQLite; PostgreSQL too with
//! `AUTHCTL_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres`). Prints the probe
//! latencies (p50, p95, max) during the burst and the burst's own duration.
use std::time::{Duration, Instant};

#[path = "support.rs"]
mod support;

const SIGNUPS: usize = 200;

async fn run(label: &str, url: String, dir: &std::path::Path) {
    let ctx = support::context(url, dir, |c| {
        c.throttle.signups_per_ip_per_hour = 0;
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(authctl::http::serve(
        listener,
        ctx.clone(),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let signup = |email: String| {
        client
            .post(format!("{base}/signup"))
            .json(
                &serde_json::json!({ "email": email, "password": "bench-password-1", "name": "B" }),
            )
            .send()
    };
    let first = signup("taken@example.com".into()).await.expect("signup");
    assert!(first.status().is_success(), "{}", first.status());

    let started = Instant::now();
    let burst = tokio::spawn({
        let signup_client = client.clone();
        let base = base.clone();
        async move {
            let requests = (0..SIGNUPS).map(|_| {
                signup_client
                    .post(format!("{base}/signup"))
                    .json(&serde_json::json!({ "email": "taken@example.com", "password": "bench-password-1", "name": "B" }))
                    .send()
            });
            let answers = futures_util::future::join_all(requests).await;
            let conflicts = answers
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 409))
                .count();
            (conflicts, started.elapsed())
        }
    });
    let mut probes = Vec::new();
    while !burst.is_finished() {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert!(r.status().is_success());
        probes.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (conflicts, took) = burst.await.expect("burst");
    probes.sort();
    let at = |q: f64| probes[((probes.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label}: {SIGNUPS} parallel signups ({conflicts} answered 409) in {:.2} s; /readyz during them: {} probes, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        took.as_secs_f64(),
        probes.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        probes.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let dir = tempfile::tempdir().expect("dir");
    run("sqlite", support::sqlite_url(dir.path()), dir.path()).await;
    if let Ok(admin) = std::env::var("AUTHCTL_BENCH_POSTGRES_URL") {
        let name = format!("authctl_bench_{}", uuid::Uuid::new_v4().simple());
        let db = sea_orm::Database::connect(admin.as_str())
            .await
            .expect("PostgreSQL");
        sea_orm::ConnectionTrait::execute_unprepared(&db, &format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        let mut url = url::Url::parse(&admin).expect("url");
        url.set_path(&name);
        let pg_dir = tempfile::tempdir().expect("dir");
        run("postgres", url.to_string(), pg_dir.path()).await;
        let _ = sea_orm::ConnectionTrait::execute_unprepared(
            &db,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await;
    }
}
