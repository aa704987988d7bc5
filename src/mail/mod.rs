//! Outgoing mail through lettre. [`Mail`] is one composed message with a text and an HTML part;
//! `messages` has one constructor per kind of mail, with its wording (and the durations it
//! mentions, read from the configuration); `transport` delivers through what the configuration
//! names. Nothing sends a mail directly: the service queues it in the outbox
//! (`service::outbox`), whose worker delivers it.
use std::time::Duration;

mod messages;
mod transport;

pub use transport::Mailer;

/// One composed mail: what kind it is, who it goes to, and its subject and two parts.
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

    /// The layout of a short security notice: a greeting and one paragraph.
    fn notice(kind: &str, to: &str, name: &str, subject: &str, paragraph: &str) -> Self {
        let text = format!("{}\n\n{paragraph}\n", greeting(name));
        let html = format!(
            "<p>{}</p><p>{}</p>",
            html_escape(&greeting(name)),
            html_escape(paragraph)
        );
        Self::new(kind, to, subject, text, html)
    }

    /// The layout of a mail with a link to open: a greeting, a paragraph, the link.
    fn link(kind: &str, to: &str, name: &str, subject: &str, paragraph: &str, link: &str) -> Self {
        let text = format!("{}\n\n{paragraph}\n\n{link}\n", greeting(name));
        let html = format!(
            "<p>{}</p><p>{}</p><p><a href=\"{link}\">{link}</a></p>",
            html_escape(&greeting(name)),
            html_escape(paragraph)
        );
        Self::new(kind, to, subject, text, html)
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
