//! The README walkthrough against the real binary: `authctl serve`, signup, the mailed link,
//! verify, login, `/me`, `authctl users list`, then a graceful stop on SIGTERM.
use std::time::Duration;

use serde_json::json;

use crate::helpers::Env;

#[tokio::test]
async fn the_readme_walkthrough_works_against_the_binary() {
    let env = Env::new();
    let (mut server, base) = env.serve().await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");

    let signup = client
        .post(format!("{base}/signup"))
        .json(&json!({ "email": "test@example.com", "password": "pass12345", "name": "Test User" }))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    let link = env
        .wait_for_links(1)
        .await
        .pop()
        .expect("the verification mail in the mail folder");
    assert!(
        link.starts_with(&format!("{base}/verify-email?token=")),
        "{link}"
    );
    assert_eq!(
        client.get(&link).send().await.expect("verify").status(),
        200
    );

    let device = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let login = device
        .post(format!("{base}/login"))
        .json(&json!({ "email": "test@example.com", "password": "pass12345" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let me: serde_json::Value = device
        .get(format!("{base}/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["emailVerified"], true);

    // Two devices; list them; revoke the iPhone, whose next request fails.
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let login = phone
        .post(format!("{base}/login"))
        .header("user-agent", "Safari/17 iPhone")
        .json(&json!({ "email": "test@example.com", "password": "pass12345" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let sessions: serde_json::Value = device
        .get(format!("{base}/me/sessions"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let iphone = sessions
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["deviceName"] == "Safari on iPhone")
        .expect("the iPhone session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let revoke = device
        .delete(format!("{base}/me/sessions/{iphone}"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        phone
            .get(format!("{base}/me"))
            .send()
            .await
            .expect("me")
            .status(),
        401
    );

    // The CLI works on the same SQLite file while serve is running.
    let users = env.json(&["users", "list"]);
    assert_eq!(users[0]["email"], "test@example.com");
    assert_eq!(users[0]["emailVerified"], true);

    // SIGTERM: a graceful stop with exit code 0.
    let pid = server.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = server.0.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        status
            .expect("authctl serve stopped after SIGTERM")
            .success()
    );
}

/// The session cookie a response sets, as a `Cookie` header value.
fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// The status of `GET /me` at `base` with `cookie`, on a fresh connection.
async fn me_status(base: String, cookie: String) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("me")
        .status()
}

/// `serve` checks sessions on read connections of their own; what another process commits (the
/// CLI revoking or disabling, a second replica on the same file) holds on the very next request,
/// on both replicas, with no cache in between.
#[tokio::test]
async fn a_session_revoked_from_another_process_fails_on_its_next_request_on_every_replica() {
    let env = Env::migrated();
    let (_a, base_a) = env.serve().await;
    let (_b, base_b) = env.serve().await;
    let signup = reqwest::Client::new()
        .post(format!("{base_a}/signup"))
        .json(&json!({ "email": "hot@example.com", "password": "pass12345", "name": "Hot" }))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    let cookie = session_cookie(&signup);
    // Warm every read connection on both replicas with the live session.
    let warm: Vec<_> = (0..16)
        .map(|i| me_status([&base_a, &base_b][i % 2].clone(), cookie.clone()))
        .collect();
    for status in futures_util::future::join_all(warm).await {
        assert_eq!(status, 200);
    }
    env.cmd()
        .args([
            "sessions",
            "revoke",
            "--user",
            "hot@example.com",
            "--all",
            "--yes",
        ])
        .assert()
        .success();
    assert_eq!(
        me_status(base_a.clone(), cookie.clone()).await,
        401,
        "replica A, next request"
    );
    assert_eq!(
        me_status(base_b.clone(), cookie).await,
        401,
        "replica B, next request"
    );

    // Disabling from the CLI ends a new session just as at once.
    let login = reqwest::Client::new()
        .post(format!("{base_b}/login"))
        .json(&json!({ "email": "hot@example.com", "password": "pass12345" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = session_cookie(&login);
    assert_eq!(me_status(base_a.clone(), cookie.clone()).await, 200);
    env.cmd()
        .args(["users", "disable", "hot@example.com", "--yes"])
        .assert()
        .success();
    assert_eq!(me_status(base_a, cookie.clone()).await, 401);
    assert_eq!(me_status(base_b, cookie).await, 401);
}
