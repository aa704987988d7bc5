//! The transport the configuration names (`log`, `file` or `smtp`), through which the outbox
//! worker delivers.
use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use super::Mail;
use crate::config::{Config, MailTransportKind};
use crate::error::{Error, Result};

#[derive(Clone)]
enum Transport {
    Log,
    File(AsyncFileTransport<Tokio1Executor>, PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail.from.parse().map_err(|e| {
            anyhow::anyhow!(
                "mail.from `{}` is not a valid mailbox: {e}",
                config.mail.from
            )
        })?;
        let transport = match config.mail.transport {
            MailTransportKind::Log => Transport::Log,
            MailTransportKind::File => {
                let dir = config.mail.dir.clone();
                std::fs::create_dir_all(&dir).map_err(|e| {
                    anyhow::anyhow!("while creating the mail folder {}: {e}", dir.display())
                })?;
                Transport::File(AsyncFileTransport::new(&dir), dir)
            }
            MailTransportKind::Smtp => {
                let url = config
                    .smtp_url()
                    .ok_or_else(|| anyhow::anyhow!("mail.smtp_url is not set"))?;
                Transport::Smtp(smtp_transport(url)?)
            }
        };
        Ok(Self { transport, from })
    }

    /// Hands one mail to the transport. Only the outbox worker calls this.
    pub async fn deliver(&self, mail: &Mail) -> Result<()> {
        let (to, subject) = (mail.to.as_str(), mail.subject.as_str());
        let (text, html) = (mail.text.clone(), mail.html.clone());
        let to_box: Mailbox = to
            .parse()
            .map_err(|e| Error::Mail(format!("bad recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(readable_body(text.clone())),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(readable_body(html)),
                    ),
            )
            .map_err(|e| Error::Mail(e.to_string()))?;
        match &self.transport {
            Transport::Log => {
                // The console transport is for a first run on a laptop: the link is the point.
                // It goes to stderr, with the logs: stdout is for a command's answer.
                eprintln!("\n----- mail to {to}: {subject} -----\n{text}----- end of mail -----\n");
                Ok(())
            }
            Transport::File(transport, dir) => {
                let id = transport
                    .send(message)
                    .await
                    .map_err(|e| Error::Mail(e.to_string()))?;
                tracing::info!(path = %dir.join(format!("{id}.eml")).display(), subject, "mail written");
                Ok(())
            }
            Transport::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| Error::Mail(e.to_string()))?;
                tracing::info!(subject, "mail sent over SMTP");
                Ok(())
            }
        }
    }
}

/// Builds the SMTP transport from `smtp://user:pass@host:587?tls=starttls` (also `tls=tls` or
/// `smtps://` for implicit TLS, and `tls=none` for a local relay).
fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut parsed =
        url::Url::parse(url).map_err(|_| anyhow::anyhow!("mail.smtp_url is not a valid URL"))?;
    let tls = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let mapped = match tls.as_deref() {
        None | Some("none") => None,
        Some("starttls") | Some("required") => Some("required"),
        Some("opportunistic") => Some("opportunistic"),
        Some("tls") | Some("wrapper") => {
            parsed
                .set_scheme("smtps")
                .map_err(|_| anyhow::anyhow!("mail.smtp_url has an unusable scheme"))?;
            None
        }
        Some(other) => {
            anyhow::bail!("mail.smtp_url has tls={other}; use starttls, tls, opportunistic or none")
        }
    };
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "tls")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.set_query(None);
    if mapped.is_some() || !others.is_empty() {
        let mut q = parsed.query_pairs_mut();
        if let Some(m) = mapped {
            q.append_pair("tls", m);
        }
        for (k, v) in &others {
            q.append_pair(k, v);
        }
    }
    // lettre's error text may include the URL: never show it.
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::from_url(parsed.as_str())
            .map_err(|_| {
                anyhow::anyhow!(
                    "mail.smtp_url is not a usable SMTP URL (smtp:// or smtps://, host required)"
                )
            })?
            .build(),
    )
}

/// Bodies go out unencoded (7bit for ASCII, 8bit for other UTF-8; lines stay far below the 998
/// octets RFC 5322 allows), so links stay whole and greppable in `.eml` files. lettre's own choice
/// would quoted-printable-encode any line of 76 characters or more, splitting long links.
fn readable_body(content: String) -> Body {
    use lettre::message::header::ContentTransferEncoding;
    if content.contains('\0') || content.lines().any(|l| l.len() > 900) {
        return Body::new(content);
    }
    let encoding = if content.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    let crlf = content.replace("\r\n", "\n").replace('\n', "\r\n");
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}
