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

/// The Playwright venv (made by scripts/browser-setup.sh when missing).
async fn env_browser_venv() -> PathBuf {
    let venv = std::env::var_os("AUTHCTL_BROWSER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/browser-venv"));
    let setup = tokio::process::Command::new(repo().join("scripts/browser-setup.sh"))
        .env("AUTHCTL_BROWSER_VENV", &venv)
        .status()
        .await
        .expect("run scripts/browser-setup.sh");
    assert!(setup.success(), "scripts/browser-setup.sh failed");
    venv
}

/// Runs `tests/browser/SCRIPT BASE_URL ARGS…` against a `serve` of `env` on localhost.
async fn run_script(venv: PathBuf, script: &str, env: &Env, args: &[&str]) {
    run_script_with(venv, script, env, args, &[]).await;
}

async fn run_script_with(
    venv: PathBuf,
    script: &str,
    env: &Env,
    args: &[&str],
    settings: &[(&str, &str)],
) {
    let (_server, base) = env.serve_as(settings, "localhost").await;
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(repo().join("tests/browser").join(script))
        .arg(&base)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run tests/browser/{script}: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{said}");
    assert!(said.contains("all steps passed"), "{said}");
}

async fn walk(env: &Env, settings: &[(&str, &str)]) {
    let venv = env_browser_venv().await;
    let mail = env.mail_dir();
    run_script_with(
        venv,
        "walkthrough.py",
        env,
        &[mail.to_str().expect("path")],
        settings,
    )
    .await;
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

/// SSO through the pages: the sign-in page sends an address in the IdP's domain to the IdP
/// (Playwright plays it, signing with tests/saml/idp.py), whose page posts the Response back.
#[tokio::test]
async fn a_person_signs_in_through_sso_in_chromium() {
    let env = Env::migrated();
    // The IdP is tests/browser/sso.py's own little server on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let idp = crate::idp::Idp::new(&format!("http://127.0.0.1:{port}"));
    let metadata = env.dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata()).expect("write metadata");
    env.cmd()
        .args([
            "saml",
            "add",
            "acme",
            "--metadata-file",
            metadata.to_str().expect("path"),
            "--domain",
            "acme.test",
        ])
        .assert()
        .success();
    let saml_venv = std::env::var_os("AUTHCTL_SAML_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/saml-venv"));
    let setup = tokio::process::Command::new(repo().join("scripts/saml-idp-setup.sh"))
        .env("AUTHCTL_SAML_VENV", &saml_venv)
        .status()
        .await
        .expect("run scripts/saml-idp-setup.sh");
    assert!(setup.success(), "scripts/saml-idp-setup.sh failed");
    let file = env.dir.path().join("idp.json");
    let described = serde_json::json!({
        "sso_url": idp.sso_url,
        "port": port,
        "domain": "acme.test",
        "provider": "acme",
        "python": saml_venv.join("bin/python"),
        "idp_py": repo().join("tests/saml/idp.py"),
        "key": idp.key,
        "cert": idp.cert,
        "issuer": idp.entity_id,
        "algorithm": "rsa-sha256",
    });
    std::fs::write(&file, described.to_string()).expect("write");
    run_script(
        env_browser_venv().await,
        "sso.py",
        &env,
        &[file.to_str().expect("path")],
    )
    .await;
}
