use authctl::config::{Config, DatabaseUrl, MailTransportKind};
use authctl::context::AppContext;
use authctl::service::{ClientInfo, login, users};
use predicates::prelude::*;

use crate::helpers::{Env, operator};

/// Opens the test database through the library, as a second `serve` would.
pub(crate) async fn context(env: &Env) -> AppContext {
    let mut config = Config {
        database_url: DatabaseUrl::new(env.database_url()),
        ..Config::default()
    };
    config.mail.transport = MailTransportKind::File;
    config.mail.dir = env.mail_dir();
    let db = authctl::db::connect(&config.database_url)
        .await
        .expect("connect");
    AppContext::new(config, db).expect("context")
}

/// A user with a session from each of `agents`, plus one failed login.
pub(crate) async fn user_with_sessions(env: &Env, email: &str, agents: &[&str]) {
    let ctx = context(env).await;
    let new = users::NewUser {
        email: email.into(),
        name: "Sam".into(),
        password: Some("pass12345".into()),
        verified: true,
    };
    users::create(
        &ctx,
        &authctl::service::Actor::Cli("setup".into()),
        new,
        ctx.now(),
    )
    .await
    .expect("create");
    for (i, agent) in agents.iter().enumerate() {
        let client = ClientInfo {
            ip: Some(format!("198.51.100.{}", i + 1).parse().expect("ip")),
            user_agent: Some((*agent).to_owned()),
            fingerprint: None,
        };
        login::password(&ctx, email, &"pass12345".into(), &client, ctx.now())
            .await
            .expect("login");
    }
    let _ = login::password(
        &ctx,
        email,
        &"wrong-guess".into(),
        &ClientInfo::default(),
        ctx.now(),
    )
    .await;
    ctx.db.close_by_ref().await.expect("close");
}

#[tokio::test]
async fn sessions_list_shows_devices_and_revoke_ends_one() {
    let env = Env::migrated();
    user_with_sessions(
        &env,
        "sam@example.com",
        &["Chrome/120 macOS", "Safari/17 iPhone"],
    )
    .await;

    let list = env.json(&["sessions", "list", "--user", "sam@example.com"]);
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 2);
    let devices: Vec<&str> = list
        .iter()
        .map(|s| s["deviceName"].as_str().expect("name"))
        .collect();
    assert!(
        devices.contains(&"Chrome on macOS") && devices.contains(&"Safari on iPhone"),
        "{devices:?}"
    );
    env.cmd()
        .args(["sessions", "list", "--user", "sam@example.com"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Safari on iPhone")
                .and(predicate::str::contains("198.51.100.2")),
        );

    let id = list[0]["id"].as_str().expect("id");
    let revoked = env.json(&["sessions", "revoke", id]);
    assert_eq!(
        (revoked["action"].as_str(), revoked["changed"].as_u64()),
        (Some("sessions.revoke"), Some(1))
    );
    assert_eq!(revoked["items"][0], id);
    assert_eq!(
        env.json(&["sessions", "list", "--user", "sam@example.com"])
            .as_array()
            .expect("list")
            .len(),
        1
    );
    env.cmd()
        .args(["sessions", "revoke", id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session has the id"));

    let audit = env.json(&["audit", "list", "--user", "sam@example.com"]);
    assert!(
        audit
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["action"] == "session_revoked" && e["actor"] == operator())
    );
}

#[tokio::test]
async fn revoking_every_session_of_a_user_asks_first() {
    let env = Env::migrated();
    user_with_sessions(
        &env,
        "all@example.com",
        &["Chrome/120 macOS", "Safari/17 iPhone", "Firefox/121 Linux"],
    )
    .await;

    env.cmd()
        .args(["sessions", "revoke", "--user", "all@example.com", "--all"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(
        env.json(&["sessions", "list", "--user", "all@example.com"])
            .as_array()
            .expect("list")
            .len(),
        3
    );

    let done = env.json(&[
        "sessions",
        "revoke",
        "--user",
        "all@example.com",
        "--all",
        "--yes",
    ]);
    assert_eq!(done["changed"], 3);
    assert_eq!(done["items"].as_array().map(Vec::len), Some(3));
    assert!(
        env.json(&["sessions", "list", "--user", "all@example.com"])
            .as_array()
            .expect("list")
            .is_empty()
    );
    env.cmd()
        .args(["sessions", "revoke", "--user", "all@example.com"])
        .assert()
        .failure();
}

#[tokio::test]
async fn users_history_shows_successes_and_failures() {
    let env = Env::migrated();
    user_with_sessions(&env, "hist@example.com", &["Chrome/120 macOS"]).await;

    let history = env.json(&["users", "history", "hist@example.com"]);
    let entries = history.as_array().expect("list");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["success"], false);
    assert_eq!(entries[0]["reason"], "wrong_password");
    assert_eq!(entries[1]["deviceName"], "Chrome on macOS");
    env.cmd()
        .args(["users", "history", "hist@example.com"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrong_password"));
}

#[test]
fn sessions_prune_reports_what_it_removed() {
    let env = Env::migrated();
    let report = env.json(&["sessions", "prune"]);
    assert_eq!(
        report,
        serde_json::json!({ "action": "sessions.prune", "kind": "row", "changed": 0, "dryRun": false, "items": [], "details": { "sessions": 0, "verificationTokens": 0, "throttles": 0, "deletionEvents": 0, "saml": 0, "mails": 0, "passkeyCeremonies": 0 } })
    );
    env.cmd()
        .args(["sessions", "prune"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0 ended session(s)"));
}

#[tokio::test]
async fn apikeys_list_and_revoke() {
    let env = Env::migrated();
    user_with_sessions(&env, "robot@example.com", &[]).await;
    let ctx = context(&env).await;
    let user = users::get_by_email(&ctx, "robot@example.com")
        .await
        .expect("user");
    let (key, secret) = authctl::service::api_keys::create(
        &ctx,
        &user.id,
        "deploy",
        Some("7d"),
        &ClientInfo::default(),
        ctx.now(),
    )
    .await
    .expect("create");
    ctx.db.close_by_ref().await.expect("close");

    let listed = env.json(&["apikeys", "list", "--user", "robot@example.com"]);
    assert_eq!(listed[0]["name"], "deploy");
    assert_eq!(listed[0]["prefix"], key.prefix.as_str());
    assert!(!listed.to_string().contains(&secret), "never the secret");
    env.cmd()
        .args(["apikeys", "list", "--user", "robot@example.com"])
        .assert()
        .success()
        .stdout(predicate::str::contains("deploy"));

    assert_eq!(
        env.json(&["apikeys", "revoke", &key.id])["items"][0],
        key.id.as_str()
    );
    assert!(
        env.json(&["apikeys", "list", "--user", "robot@example.com"])
            .as_array()
            .expect("list")
            .is_empty()
    );
    env.cmd()
        .args(["apikeys", "revoke", &key.id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no API key has the id"));
}
