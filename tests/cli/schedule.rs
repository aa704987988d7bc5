//! What `serve` does by itself: the deletion sweep and the `user.deleted` webhooks on their cron
//! schedules, and the mail outbox; plus `authctl mail` and a clean stdout for scripts.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use predicates::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::Env;

/// One webhook delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    signature: String,
    body: String,
}

/// A tiny HTTP receiver on 127.0.0.1 that answers 200 to every POST and records it.
async fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/hooks/deleted",
        listener.local_addr().expect("addr")
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            let (head, body) = loop {
                let Ok(n) = stream.read(&mut buf).await else {
                    break (String::new(), String::new());
                };
                if n == 0 {
                    break (String::new(), String::new());
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if text.len() >= end + 4 + length {
                        break (head, text[end + 4..end + 4 + length].to_owned());
                    }
                }
            };
            let signature = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-authctl-signature")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            log.lock().expect("lock").push(Delivery { signature, body });
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn serve_sweeps_and_delivers_the_deletion_webhook_on_its_schedule() {
    let env = Env::migrated();
    env.cmd()
        .args([
            "users",
            "create",
            "gone@example.com",
            "--no-password",
            "--verified",
        ])
        .assert()
        .success();
    let scheduled = env.json(&[
        "deletion",
        "schedule",
        "gone@example.com",
        "--grace",
        "0s",
        "--yes",
    ]);
    assert!(scheduled["scheduledFor"].is_string());
    let user_id = scheduled["user"]["id"].as_str().map(str::to_owned);

    let (url, seen) = receiver().await;
    // Both jobs every second: nothing but `serve` itself sweeps or delivers here.
    let (_server, _base) = env
        .serve_with(&[
            ("AUTHCTL_DELETION__SWEEP_CRON", "* * * * * *"),
            ("AUTHCTL_DELETION__WEBHOOK_CRON", "* * * * * *"),
            ("AUTHCTL_DELETION__WEBHOOK_URL", &url),
            ("AUTHCTL_DELETION__WEBHOOK_SECRET", "hook-secret"),
        ])
        .await;
    let mut delivered = None;
    for _ in 0..200 {
        if let Some(d) = seen.lock().expect("lock").first().cloned() {
            delivered = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = delivered.expect("serve delivered the user.deleted event by itself");
    let event: serde_json::Value = serde_json::from_str(&delivered.body).expect("JSON body");
    assert_eq!(event["event"], "user.deleted");
    if let Some(id) = user_id {
        assert_eq!(event["userId"], id.as_str());
    }
    assert_eq!(
        delivered.signature,
        authctl::service::deletion::signature("hook-secret", delivered.body.as_bytes())
    );
    // The outbox records it as delivered.
    let events = env.json(&["deletion", "events"]);
    assert!(events[0]["deliveredAt"].is_string(), "{events}");
}

#[test]
fn mail_deliver_sends_what_is_queued_and_stdout_stays_json() {
    let env = Env::migrated();
    env.cmd()
        .args(["users", "create", "queued@example.com", "--no-password"])
        .assert()
        .success();
    assert_eq!(env.links().len(), 1, "users create mailed the link");
    // With the console transport the CLI prints no mail at all (it would carry a live link):
    // it stays queued for `serve`, stderr says so, and stdout is the answer alone.
    let output = env
        .cmd()
        .env("AUTHCTL_MAIL__TRANSPORT", "log")
        .env("AUTHCTL_VERIFICATION__RESEND_INTERVAL", "0s")
        .args(["verification", "resend", "queued@example.com", "-o", "json"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let answer: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("only JSON on stdout");
    assert_eq!(answer["action"], "verification.resend");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("token="), "{stderr}");
    assert!(stderr.contains("queued"), "{stderr}");
    assert_eq!(env.json(&["mail", "status"])["pending"], 1);

    // An SMTP server that is down: the mail stays queued, and stderr says so.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let smtp = format!("smtp://127.0.0.1:{port}?tls=none");
    env.cmd()
        .env("AUTHCTL_MAIL__TRANSPORT", "smtp")
        .env("AUTHCTL_MAIL__SMTP_URL", &smtp)
        .env("AUTHCTL_VERIFICATION__RESEND_INTERVAL", "0s")
        .env("AUTHCTL_MAIL__RETRY_BASE", "1ms")
        .args(["verification", "resend", "queued@example.com"])
        .assert()
        .success()
        .stderr(predicate::str::contains("stay queued"));
    let status = env.json(&["mail", "status"]);
    assert_eq!(status["pending"], 2, "{status}");

    // `mail deliver` sends it once its retry is due (here: at once).
    let delivered = env
        .cmd()
        .env("AUTHCTL_MAIL__RETRY_BASE", "0s")
        .args(["mail", "deliver", "-o", "json"])
        .output()
        .expect("run");
    assert!(delivered.status.success());
    let report: serde_json::Value = serde_json::from_slice(&delivered.stdout).expect("JSON");
    assert_eq!(
        (
            report["details"]["sent"].as_u64(),
            report["details"]["pending"].as_u64()
        ),
        (Some(2), Some(0)),
        "{report}"
    );
    assert_eq!(env.links().len(), 3, "delivered to the file transport");
}
