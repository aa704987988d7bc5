//! Mail really crosses SMTP: a small SMTP server started by the test receives the message.
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{Backend, TestApp};

/// What the server saw: the envelope and the message data.
#[derive(Default, Debug, Clone)]
struct Received {
    commands: Vec<String>,
    data: String,
}

/// Accepts one SMTP session (EHLO, optional AUTH PLAIN, MAIL, RCPT, DATA, QUIT) and records it.
async fn smtp_server() -> (u16, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_mail_crosses_smtp_to_a_real_server() {
    let (port, received) = smtp_server().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.mail.transport = authctl::config::MailTransportKind::Smtp;
        c.mail.smtp_url = Some(format!("smtp://mailer:s3cret@127.0.0.1:{port}?tls=none").into());
        c.mail.from = "authctl <no-reply@auth.example.com>".into();
    })
    .await;

    assert_eq!(
        app.signup("smtp@example.com").await.status(),
        StatusCode::CREATED
    );

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
