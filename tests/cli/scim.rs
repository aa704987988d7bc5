//! `authctl scim tokens …`, and scim2-tester (pinned, scripts/scim-tester-setup.sh) run against
//! a real `authctl serve`: discovery, CRUD and PATCH on Users and Groups with no failure.
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::Env;
use crate::idp::Idp;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A migrated database with the provider `acme` (domain acme.test).
fn with_provider() -> Env {
    let env = Env::migrated();
    let idp = Idp::new("https://idp.acme.test");
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
            "--map-group",
            "engineering=developer",
        ])
        .assert()
        .success();
    env
}

fn token_in(env: &Env, file: &str) -> (serde_json::Value, String) {
    let created = env.json(&[
        "scim",
        "tokens",
        "create",
        "--provider",
        "acme",
        "--name",
        "okta",
        "--token-file",
        file,
    ]);
    let secret = std::fs::read_to_string(env.dir.path().join(file)).expect("the token file");
    (created, secret.trim().to_owned())
}

#[tokio::test]
async fn tokens_are_made_into_a_private_file_listed_and_revoked() {
    let env = with_provider();
    let output = env
        .cmd()
        .args([
            "scim",
            "tokens",
            "create",
            "--provider",
            "acme",
            "--token-file",
            "t1",
        ])
        .output()
        .expect("run");
    assert!(output.status.success());
    let secret = std::fs::read_to_string(env.dir.path().join("t1")).expect("the token file");
    let secret = secret.trim();
    assert!(
        secret.starts_with("authctl_scim_") && secret.len() > 50,
        "{secret}"
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "the secret is printed nowhere"
    );
    assert!(
        stdout.contains("authctl_scim_"),
        "the prefix is shown: {stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.path().join("t1"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An existing file is never overwritten, and no token is made.
    let refused = env
        .cmd()
        .args([
            "scim",
            "tokens",
            "create",
            "--provider",
            "acme",
            "--token-file",
            "t1",
        ])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exists already"));
    let unknown = env
        .cmd()
        .args([
            "scim",
            "tokens",
            "create",
            "--provider",
            "nope",
            "--token-file",
            "t9",
        ])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("authctl saml list"));
    assert!(!env.dir.path().join("t9").exists());

    let (created, second) = token_in(&env, "t2");
    assert_eq!(created["token"]["provider"], "acme");
    assert_eq!(created["token"]["name"], "okta");
    let listed = env.json(&["scim", "tokens", "list"]);
    assert_eq!(listed.as_array().expect("list").len(), 2);
    assert!(!listed.to_string().contains(&second));
    assert_eq!(
        env.json(&["scim", "tokens", "list", "--provider", "acme"])
            .as_array()
            .expect("list")
            .len(),
        2
    );

    // The token works against serve until it is revoked.
    let (_server, base) = env.serve().await;
    let client = reqwest::Client::new();
    let users = |t: String| {
        client
            .get(format!("{base}/scim/v2/Users"))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(users(second.clone()).await.expect("request").status(), 200);
    let id = created["token"]["id"].as_str().expect("id");
    let revoked = env.json(&["scim", "tokens", "revoke", id]);
    assert_eq!(revoked["action"], "scim.tokens.revoke");
    assert_eq!(revoked["items"], json!([id]));
    assert_eq!(users(second).await.expect("request").status(), 401);
    assert_eq!(
        users(secret.to_owned()).await.expect("request").status(),
        200
    );
    let again = env
        .cmd()
        .args(["scim", "tokens", "revoke", id])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(3));
    let audit = env.json(&["audit", "list"]);
    let actions: Vec<&str> = audit
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"scim_token_created") && actions.contains(&"scim_token_revoked"),
        "{actions:?}"
    );
}

/// scim2-tester's whole suite (scim2-cli's `test`, which counts a skipped check as a failure).
#[tokio::test]
async fn scim2_tester_passes_against_serve() {
    let env = with_provider();
    let (_, token) = token_in(&env, "scim.token");
    // The suite makes several hundred requests in a few seconds.
    let (_server, base) = env
        .serve_with(&[("AUTHCTL_SCIM__REQUESTS_PER_MINUTE", "0")])
        .await;
    let venv = std::env::var_os("AUTHCTL_SCIM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/scim-venv"));
    let setup = tokio::process::Command::new(repo().join("scripts/scim-tester-setup.sh"))
        .env("AUTHCTL_SCIM_VENV", &venv)
        .status()
        .await
        .expect("run scripts/scim-tester-setup.sh");
    assert!(setup.success(), "scripts/scim-tester-setup.sh failed");
    let output = tokio::process::Command::new(venv.join("bin/scim2"))
        .args(["--url", &format!("{base}/scim/v2"), "test"])
        // The header in the environment, not on the command line.
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {token}"))
        .output()
        .await
        .expect("run scim2 test");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let successes = report.lines().filter(|l| l.starts_with("SUCCESS")).count();
    let failures: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("SKIPPED") || l.starts_with("CRITICAL"))
        .collect();
    assert!(
        output.status.success() && failures.is_empty(),
        "scim2-tester failed: {failures:?}\n{report}"
    );
    assert!(
        successes > 100,
        "the suite ran {successes} checks:\n{report}"
    );
}
