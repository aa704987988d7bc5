//! Mail really crosses SMTP: a small SMTP server started by the test receives the message, and a
//! mail queued while that server is down arrives once it is back.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authctl::entity::mail_outbox;
use authctl::service::{Actor, users};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{Backend, PASSWORD, TestApp, body};
use crate::on_every_backend;

on_every_backend!(
    the_verification_mail_crosses_smtp_to_a_real_server,
    a_mail_queued_while_smtp_is_down_arrives_when_it_is_back,
);

/// What the server saw: the envelope and the message data.
#[derive(Default, Debug, Clone)]
struct Received {
    commands: Vec<String>,
    data: String,
}

/// Accepts one SMTP session (EHLO, optional AUTH PLAIN, MAIL, RCPT, DATA, QUIT) and records it.
async fn smtp_server() -> (u16, Arc<Mutex<Received>>) {
    smtp_server_on(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
}

async fn smtp_server_on(listener: TcpListener) -> (u16, Arc<Mutex<Received>>) {
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Received::default()));
    let log = received.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"220 test-smtp ESMTP ready\r\n")
            .await
            .expect("greet");
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write
                        .write_all(b"250 2.0.0 queued\r\n")
                        .await
                        .expect("write");
                } else {
                    let mut r = log.lock().expect("lock");
                    r.data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    r.data.push('\n');
                }
                continue;
            }
            log.lock().expect("lock").commands.push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-test-smtp\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
                "AUTH" => b"235 2.7.0 authenticated\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.1.0 ok\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 end data with <CR><LF>.<CR><LF>\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 2.0.0 bye\r\n").await.expect("write");
                    break;
                }
                _ => b"502 5.5.2 unknown command\r\n",
            };
            write.write_all(reply).await.expect("write");
        }
    });
    (port, received)
}

async fn the_verification_mail_crosses_smtp_to_a_real_server(backend: Backend) {
    let (port, received) = smtp_server().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.mail.transport = authctl::config::MailTransportKind::Smtp;
        c.mail.smtp_url = Some(format!("smtp://mailer:s3cret@127.0.0.1:{port}?tls=none").into());
        c.mail.from = "authctl <no-reply@auth.example.com>".into();
    })
    .await;

    assert_eq!(
        app.signup("smtp@example.com").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.deliver_mail().await.sent, 1);

    let r = received.lock().expect("lock").clone();
    assert!(
        r.commands.iter().any(|c| c.starts_with("EHLO")),
        "{:?}",
        r.commands
    );
    assert!(
        r.commands.iter().any(|c| c.starts_with("AUTH")),
        "credentials from the URL are used: {:?}",
        r.commands
    );
    assert!(
        r.commands
            .iter()
            .any(|c| c == "MAIL FROM:<no-reply@auth.example.com>"),
        "{:?}",
        r.commands
    );
    assert!(
        r.commands.iter().any(|c| c == "RCPT TO:<smtp@example.com>"),
        "{:?}",
        r.commands
    );
    assert!(
        r.data.contains("Subject: Verify your email address"),
        "{}",
        r.data
    );
    assert!(
        r.data
            .contains(&format!("{}/verify-email?token=", app.base)),
        "{}",
        r.data
    );
    assert!(r.data.contains("multipart/alternative"), "{}", r.data);
}

async fn a_mail_queued_while_smtp_is_down_arrives_when_it_is_back(backend: Backend) {
    // A port nobody listens on: the SMTP server is down.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let app = TestApp::spawn_with(backend, |c| {
        c.mail.transport = authctl::config::MailTransportKind::Smtp;
        c.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}?tls=none").into());
        c.mail.retry_base = Duration::from_secs(10);
    })
    .await;
    let new = users::NewUser {
        email: "outage@example.com".into(),
        name: "Outage".into(),
        password: Some(PASSWORD.to_owned().into()),
        verified: true,
    };
    users::create(&app.ctx, &Actor::cli(), new, app.clock_now())
        .await
        .expect("user");

    // The answer does not wait for (or depend on) SMTP.
    let response = app
        .post("/password-reset", &json!({ "email": "outage@example.com" }))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(body(response).await["message"].is_string());

    let first = app.deliver_mail().await;
    assert_eq!((first.sent, first.retrying), (0, 1), "{first:?}");
    let queued = mail_outbox::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("outbox");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "password_reset");
    assert_eq!(queued[0].attempts, 1);
    assert!(queued[0].last_error.is_some());
    assert!(
        !queued[0].sealed.contains("reset-password"),
        "the queued message (with its link) is sealed"
    );
    // Not due again before the backoff.
    assert_eq!(app.deliver_mail().await, Default::default());

    // The server comes back on the same port; after the backoff the mail goes out.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let (_, received) = smtp_server_on(listener).await;
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(app.deliver_mail().await.sent, 1);
    let r = received.lock().expect("lock").clone();
    assert!(
        r.data.contains("Subject: Reset your password"),
        "{}",
        r.data
    );
    assert!(
        r.data
            .contains(&format!("{}/reset-password?token=", app.base)),
        "{}",
        r.data
    );
    assert!(
        mail_outbox::Entity::find()
            .all(&app.ctx.db)
            .await
            .expect("outbox")
            .is_empty(),
        "a delivered mail leaves the outbox"
    );
}
