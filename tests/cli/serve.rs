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
