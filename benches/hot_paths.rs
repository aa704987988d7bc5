//! The hot paths: the per-request session check (`GET /me` through the whole router) and one
//! password hash with the production argon2id parameters.
//!
//! `cargo bench --bench hot_paths` (figures in README.md).

use authctl::service::{ClientInfo, signup, users};
use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::{ExposeSecret, SecretString};
use tower::ServiceExt;

#[path = "support.rs"]
mod support;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn session_check(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (router, cookie) = rt.block_on(async {
        let ctx = support::context(support::sqlite_url(dir.path()), dir.path(), |_| {}).await;
        let new = users::NewUser {
            email: "bench@example.com".into(),
            name: "Bench".into(),
            password: Some(SecretString::from("pass12345")),
            verified: true,
        };
        let (_, session) = signup::signup(&ctx, new, &ClientInfo::default(), ctx.now())
            .await
            .expect("signup");
        let cookie = format!("authctl_session={}", session.token.expose_secret());
        (authctl::http::router(ctx), cookie)
    });
    c.bench_function("session check: GET /me through the router (SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let request = Request::get("/me")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .expect("request");
            let response = router.clone().oneshot(request).await.expect("response");
            assert!(response.status().is_success());
        })
    });
}

fn password_hash(c: &mut Criterion) {
    let rt = runtime();
    let hasher = authctl::password::Hasher::new(&authctl::config::PasswordConfig::default())
        .expect("params");
    let password = SecretString::from("correct horse battery staple");
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id hash (m=19456 KiB, t=2, p=1)", |b| {
        b.to_async(&rt)
            .iter(|| async { hasher.hash(&password).await.expect("hash") })
    });
    group.finish();
}

criterion_group!(benches, session_check, password_hash);
criterion_main!(benches);
