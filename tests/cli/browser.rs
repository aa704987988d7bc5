//! A person's path through the pages in a real browser: Debian's Chromium, driven by Playwright
//! (`tests/browser/walkthrough.py`), against the real `authctl serve` with its mail worker and
//! the wall clock (the authenticator-app codes are computed from it). Sign up, the verification
//! mail's button, sign in, two sessions and the last logins on the security page, revoke one,
//! TOTP from the page's secret, sign in with the code, a passkey through a virtual
//! authenticator, a reset from the mailed link, deletion scheduled and cancelled. A console
//! error or a CSP violation fails it; a failing step leaves a screenshot under `target/`.
use std::path::{Path, PathBuf};

use crate::helpers::Env;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn walk(env: &Env, settings: &[(&str, &str)]) {
    let venv = std::env::var_os("AUTHCTL_BROWSER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/browser-venv"));
    let setup = tokio::process::Command::new(repo().join("scripts/browser-setup.sh"))
        .env("AUTHCTL_BROWSER_VENV", &venv)
        .status()
        .await
        .expect("run scripts/browser-setup.sh");
    assert!(setup.success(), "scripts/browser-setup.sh failed");
    let (_server, base) = env.serve_as(settings, "localhost").await;
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(repo().join("tests/browser/walkthrough.py"))
        .arg(&base)
        .arg(env.mail_dir())
        .output()
        .await
        .expect("run tests/browser/walkthrough.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the walk failed:\n{said}");
    assert!(said.contains("all steps passed"), "{said}");
}

#[tokio::test]
async fn a_person_walks_through_the_pages_in_chromium_on_sqlite() {
    let env = Env::migrated();
    walk(&env, &[("AUTHCTL_MAIL__POLL_INTERVAL", "200ms")]).await;
}

#[tokio::test]
async fn a_person_walks_through_the_pages_in_chromium_on_postgres() {
    let Ok(admin) = std::env::var("AUTHCTL_TEST_POSTGRES_URL") else {
        return;
    };
    let name = format!("authctl_walk_{}", uuid::Uuid::new_v4().simple());
    let db = sea_orm::Database::connect(admin.as_str())
        .await
        .expect("AUTHCTL_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached");
    sea_orm::ConnectionTrait::execute_unprepared(&db, &format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create the database");
    let mut url = url::Url::parse(&admin).expect("a URL");
    url.set_path(&name);
    let env = Env::new();
    walk(
        &env,
        &[
            ("AUTHCTL_DATABASE_URL", url.as_str()),
            ("AUTHCTL_MAIL__POLL_INTERVAL", "200ms"),
        ],
    )
    .await;
    let _ = sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    )
    .await;
}
