//! Outgoing mail through lettre: one constructor of [`Mail`] per kind of message, each with a text
//! and an HTML part, and the transport the configuration names (`log`, `file` or `smtp`) that the
//! outbox worker delivers through.
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, MailTransportKind};
use crate::error::{Error, Result};

/// One composed mail: who it goes to, and its subject and two parts. It is queued in the
/// outbox (`service::outbox`) and delivered from there; nothing sends a mail directly.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    /// What kind of mail it is (kept beside the sealed message, for operators).
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Mail {
    // The body holds live links: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Mail {
    fn new(kind: &str, to: &str, subject: &str, text: String, html: String) -> Self {
        Self {
            kind: kind.to_owned(),
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            html,
        }
    }

    /// The e-mail verification message with its single-use link.
    pub fn verification(to: &str, name: &str, link: &str, ttl: Duration) -> Self {
        let ttl = human(ttl);
        let greeting = greeting(name);
        let text = format!(
            "{greeting}\n\nPlease confirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in {ttl}. If you did not sign up, ignore this message.\n"
        );
        let html = format!(
            "<p>{}</p><p>Please confirm your email address:</p><p><a href=\"{link}\">Verify my email address</a></p>\
             <p>Or paste this link into your browser:<br>{link}</p>\
             <p>The link works once and expires in {ttl}. If you did not sign up, ignore this message.</p>",
            html_escape(&greeting)
        );
        Self::new("verification", to, "Verify your email address", text, html)
    }

    /// A short security notice (a factor, password or address changed): a subject and one paragraph.
    pub fn notice(
        kind: &'static str,
        to: &str,
        name: &str,
        subject: &str,
        paragraph: &str,
    ) -> Self {
        let text = format!("{}\n\n{paragraph}\n", greeting(name));
        let html = format!(
            "<p>{}</p><p>{}</p>",
            html_escape(&greeting(name)),
            html_escape(paragraph)
        );
        Self::new(kind, to, subject, text, html)
    }

    /// A link the user must open (email change, password reset): subject, explanation, link.
    pub fn link(
        kind: &'static str,
        to: &str,
        name: &str,
        subject: &str,
        paragraph: &str,
        link: &str,
    ) -> Self {
        let text = format!("{}\n\n{paragraph}\n\n{link}\n", greeting(name));
        let html = format!(
            "<p>{}</p><p>{}</p><p><a href=\"{link}\">{link}</a></p>",
            html_escape(&greeting(name)),
            html_escape(paragraph)
        );
        Self::new(kind, to, subject, text, html)
    }

    /// A successful sign-in from an IP this account never signed in from.
    pub fn new_sign_in(
        to: &str,
        name: &str,
        session: &crate::entity::session::Model,
        base_url: &str,
    ) -> Self {
        let facts = session_facts(session);
        let text = format!(
            "{}\n\nYour account was just signed in to from a new IP address:\n\n{facts}\n\n\
             If this was you, there is nothing to do. If it was not, sign in at {base_url}, sign out \
             everywhere else (POST /me/sessions/revoke-others, or remove the session from your list \
             of sessions) and change your password.\n",
            greeting(name)
        );
        let html = format!(
            "<p>{}</p><p>Your account was just signed in to from a new IP address:</p><pre>{}</pre>\
             <p>If this was you, there is nothing to do. If it was not, sign in at {base_url}, sign out \
             everywhere else (<code>POST /me/sessions/revoke-others</code>) and change your password.</p>",
            html_escape(&greeting(name)),
            html_escape(&facts)
        );
        Self::new("new_sign_in", to, "New sign-in to your account", text, html)
    }

    /// A session's browser fingerprint changed mid-session (possible session hijacking).
    pub fn fingerprint_alert(
        to: &str,
        name: &str,
        session: &crate::entity::session::Model,
        revoked: bool,
    ) -> Self {
        let facts = session_facts(session);
        let outcome = if revoked {
            "We signed that session out to be safe."
        } else {
            "The session is flagged in your list of sessions; if you do not recognise it, revoke it and change your password."
        };
        let text = format!(
            "{}\n\nA signed-in session on your account started to look like a different browser:\n\n{facts}\n\n{outcome}\n",
            greeting(name)
        );
        let html = format!(
            "<p>{}</p><p>A signed-in session on your account started to look like a different browser:</p><pre>{}</pre><p>{}</p>",
            html_escape(&greeting(name)),
            html_escape(&facts),
            html_escape(outcome)
        );
        Self::new(
            "fingerprint_alert",
            to,
            "Unusual activity on one of your sessions",
            text,
            html,
        )
    }
}

/// A duration as mail text says it: "24 hours", "30 minutes", "7 days".
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 {
        (secs.div_ceil(60), "minute")
    } else {
        (secs.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

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

/// Time, IP and device of a session, one per line.
fn session_facts(session: &crate::entity::session::Model) -> String {
    format!(
        "Time:   {}\nIP:     {}\nDevice: {}",
        session.last_active_at.format("%Y-%m-%d %H:%M UTC"),
        session.ip.as_deref().unwrap_or("unknown"),
        session.device_name
    )
}

fn greeting(name: &str) -> String {
    if name.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {name},")
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
