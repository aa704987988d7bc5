//! Configuration, loaded the same way by every subcommand:
//! built-in defaults < TOML file (`--config`) < `AUTHCTL_*` environment (`__` nests) < flags.
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use url::Url;

/// The system-wide configuration file, read when no other is named or found.
pub const SYSTEM_CONFIG: &str = "/etc/authctl/authctl.toml";

/// Environment variables with the `AUTHCTL_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["config", "log"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where relative paths of the state live: a `sqlite://` database file and
    /// `secret_key_file`. `.` (the default) is the working directory; the packaged service uses
    /// `/var/lib/authctl`.
    pub state_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    pub public_url: Url,
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub trusted_proxies: Vec<IpNet>,
    pub mail: MailConfig,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub step_up: StepUpConfig,
    pub verification: VerificationConfig,
    pub deletion: DeletionConfig,
    pub throttle: ThrottleConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    /// The server key (base64 of 32 bytes) that encrypts TOTP secrets. Unset: read from
    /// `secret_key_file`, which is created on first use. Replicas must share one key.
    pub secret_key: Option<SecretString>,
    pub secret_key_file: PathBuf,
    pub two_factor: TwoFactorConfig,
    pub password_reset: PasswordResetConfig,
    pub email_change: EmailChangeConfig,
    pub api_keys: ApiKeysConfig,
    pub saml: SamlConfig,
    pub magic_link: MagicLinkConfig,
    pub webauthn: WebauthnConfig,
    pub web: WebConfig,
    pub scim: ScimConfig,
    /// Whether this process may create state that is missing: the server key file (only
    /// `serve` and `migrate up` may, not the operator's other commands). Not a key.
    #[serde(skip)]
    pub create_state: bool,
    /// The configuration file that was read, if any. Not a key.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// Whether `public_url` was set (file, environment or flag) rather than defaulted. Not a key.
    #[serde(skip)]
    pub public_url_set: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("."),
            database_url: DatabaseUrl("sqlite://authctl.db".into()),
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: Url::parse("http://localhost:3000").expect("the default URL parses"),
            trusted_proxies: Vec::new(),
            mail: MailConfig::default(),
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            step_up: StepUpConfig::default(),
            verification: VerificationConfig::default(),
            deletion: DeletionConfig::default(),
            throttle: ThrottleConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            secret_key: None,
            secret_key_file: PathBuf::from("authctl.key"),
            two_factor: TwoFactorConfig::default(),
            password_reset: PasswordResetConfig::default(),
            email_change: EmailChangeConfig::default(),
            api_keys: ApiKeysConfig::default(),
            saml: SamlConfig::default(),
            magic_link: MagicLinkConfig::default(),
            webauthn: WebauthnConfig::default(),
            web: WebConfig::default(),
            scim: ScimConfig::default(),
            create_state: true,
            file: None,
            public_url_set: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// Print every message, with its links, to the console (for a first run on a laptop).
    Log,
    /// Write one `.eml` file per message into `mail.dir` (for scripts and tests).
    File,
    /// Deliver through the SMTP server at `mail.smtp_url`.
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    pub dir: PathBuf,
    pub smtp_url: Option<SecretString>,
    pub from: String,
    /// The first wait after a failed delivery; it doubles with every further failure.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// The longest wait between two tries.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Tries before a mail is given up (and logged as an error).
    pub max_attempts: u32,
    /// How often `serve` looks for mails queued by other processes (the CLI, other replicas).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a given-up mail stays in the outbox for operators to see.
    #[serde(with = "humantime_serde")]
    pub failed_retention: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::Log,
            dir: PathBuf::from("./mail"),
            smtp_url: None,
            from: "authctl <no-reply@localhost>".into(),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            max_attempts: 12,
            poll_interval: Duration::from_secs(5),
            failed_retention: days(7),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Minimum length in Unicode code points.
    pub min_length: usize,
    /// Maximum length in code points: stops hash-DoS with huge inputs.
    pub max_length: usize,
    /// argon2id memory cost in KiB.
    pub hash_memory_kib: u32,
    /// argon2id iterations.
    pub hash_iterations: u32,
    /// argon2id lanes.
    pub hash_parallelism: u32,
    /// How many hashes may run at once (0 = one fewer than the CPU cores, at least one, so a
    /// flood of logins leaves a core to the requests that do not hash).
    pub hash_concurrency: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            hash_memory_kib: 19_456,
            hash_iterations: 2,
            hash_parallelism: 1,
            hash_concurrency: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub rotation_interval: Duration,
    /// How often, at most, a session's last-active time is written.
    #[serde(with = "humantime_serde")]
    pub touch_interval: Duration,
    /// How long a token that was just rotated out keeps working (parallel requests).
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
    /// Live sessions one user may have; a new one evicts the oldest beyond this.
    pub max_per_user: u32,
    /// What a changed `X-Client-Fingerprint` does to a session: `flag` it or `revoke` it.
    pub fingerprint_policy: FingerprintPolicy,
    /// When `serve` prunes ended sessions and spent tokens (six-field cron); empty disables.
    pub prune_cron: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintPolicy {
    /// Mark the session (`fingerprint_changed`), audit it and mail the user once.
    Flag,
    /// End the session at once (and audit and mail).
    Revoke,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: days(7),
            absolute_timeout: days(30),
            rotation_interval: Duration::from_secs(15 * 60),
            touch_interval: Duration::from_secs(60),
            rotation_grace: Duration::from_secs(30),
            max_per_user: 20,
            fingerprint_policy: FingerprintPolicy::Flag,
            prune_cron: "0 */10 * * * *".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepUpConfig {
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for StepUpConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(5 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerificationConfig {
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The least time between two verification mails to one account.
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Resend requests one client IP may make per hour (0: no limit).
    pub ip_limit_per_hour: u32,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(24 * 3600),
            resend_interval: Duration::from_secs(60),
            ip_limit_per_hour: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeletionConfig {
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// A six-field cron expression (sec min hour day month weekday); empty disables the schedule.
    pub sweep_cron: String,
    /// Accounts hard-deleted per batch, one transaction each (1 to 1000; larger values are taken
    /// as 1000, since a batch holds SQLite's write lock while it runs).
    pub batch_size: u64,
    /// How long `user.deleted` events stay in the outbox.
    #[serde(with = "humantime_serde")]
    pub events_retention: Duration,
    /// Where `user.deleted` events are POSTed (optional).
    pub webhook_url: Option<Url>,
    /// The HMAC-SHA256 key that signs webhook bodies (`X-Authctl-Signature`).
    pub webhook_secret: Option<SecretString>,
    /// When `serve` delivers pending `user.deleted` events (six-field cron); empty disables.
    pub webhook_cron: String,
}

impl Default for DeletionConfig {
    fn default() -> Self {
        Self {
            grace_period: days(30),
            sweep_cron: "0 0 * * * *".into(),
            batch_size: 100,
            events_retention: days(7),
            webhook_url: None,
            webhook_secret: None,
            webhook_cron: "0 * * * * *".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Consecutive failures for one account before logins for it are delayed.
    pub account_free_failures: u32,
    /// Failures from one client IP before logins from it are delayed.
    pub ip_free_failures: u32,
    /// The first delay; it doubles with every further failure.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The longest delay.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    #[serde(with = "humantime_serde")]
    pub reset_after: Duration,
    /// Signups one client IP may make per hour (0: no limit). Behind a proxy, set
    /// `trusted_proxies`, or every signup counts against the proxy's address.
    pub signups_per_ip_per_hour: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            ip_free_failures: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3600),
            reset_after: Duration::from_secs(24 * 3600),
            signups_per_ip_per_hour: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoFactorConfig {
    /// The issuer shown in authenticator apps.
    pub issuer: String,
    /// How long a password-verified login waits for its second factor.
    #[serde(with = "humantime_serde")]
    pub pending_ttl: Duration,
    /// Logins waiting for their second factor one account may have; the oldest goes first.
    pub max_pending_logins: u32,
}

impl Default for TwoFactorConfig {
    fn default() -> Self {
        Self {
            issuer: "authctl".into(),
            pending_ttl: Duration::from_secs(5 * 60),
            max_pending_logins: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordResetConfig {
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The least time between two reset mails to one address.
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Reset requests one client IP may make per hour.
    pub ip_limit_per_hour: u32,
}

impl Default for PasswordResetConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(30 * 60),
            resend_interval: Duration::from_secs(60),
            ip_limit_per_hour: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailChangeConfig {
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
}

impl Default for EmailChangeConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// The lifetime of a key created without `expiresIn`.
    #[serde(with = "humantime_serde")]
    pub default_ttl: Duration,
    /// The longest lifetime a key may ask for.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            default_ttl: days(90),
            max_ttl: days(365),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MagicLinkConfig {
    /// How long a mailed sign-in link works.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// The least time between two sign-in links mailed to one address.
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Sign-in links one client IP may ask for per hour.
    pub ip_limit_per_hour: u32,
    /// Sign-in mails one account gets per hour, whichever browsers asked (0: no limit).
    pub mails_per_account_per_hour: u32,
}

impl Default for MagicLinkConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10 * 60),
            resend_interval: Duration::from_secs(60),
            ip_limit_per_hour: 20,
            mails_per_account_per_hour: 5,
        }
    }
}

/// What a SCIM `DELETE /Users/{id}` does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimOnDelete {
    /// The account is disabled (its sessions and keys end); an operator may enable it again.
    Disable,
    /// The account is scheduled for deletion: the grace period, its mail, then the sweep.
    ScheduleDeletion,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// What `DELETE /scim/v2/Users/{id}` does to the account.
    pub on_delete: ScimOnDelete,
    /// Requests one SCIM token may make per minute (0: no limit).
    pub requests_per_minute: u32,
    /// The most resources one list response holds (a client's `count` is cut to it).
    pub max_results: u32,
    /// The largest SCIM request body, in bytes (a PATCH of a large group's members).
    pub body_limit: usize,
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            on_delete: ScimOnDelete::Disable,
            requests_per_minute: 600,
            max_results: 200,
            body_limit: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The relying party ID passkeys are bound to; unset: the host of `public_url`. It must be
    /// that host or a parent domain of it.
    pub rp_id: Option<String>,
    /// The name authenticators show; unset: the relying party ID.
    pub rp_name: Option<String>,
    /// Further origins allowed to run ceremonies (`https://app.example.com`), beside `public_url`.
    pub extra_origins: Vec<Url>,
    /// How long a started ceremony can be finished.
    #[serde(with = "humantime_serde")]
    pub ceremony_ttl: Duration,
    /// Passkey logins one client IP may start per hour (0: no limit).
    pub logins_per_ip_per_hour: u32,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            rp_name: None,
            extra_origins: Vec::new(),
            ceremony_ttl: Duration::from_secs(5 * 60),
            logins_per_ip_per_hour: 300,
        }
    }
}

/// The pages (sign-in, mailed links, security settings) and forward-auth.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Origins (`https://app.example.com`) a sign-in may return to with `?next=` or `?rd=`,
    /// beside paths on this site.
    pub allowed_redirect_origins: Vec<Url>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// How long a started SSO login (the AuthnRequest and its browser cookie) stays usable.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// The largest decoded SAML Response accepted, in bytes.
    pub max_response_bytes: usize,
    /// Clock difference tolerated with an IdP when checking assertion times.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// SSO logins one client IP may start per hour (0: no limit).
    pub logins_per_ip_per_hour: u32,
    /// PEM private key that signs our AuthnRequests; unset: one is generated and stored in the
    /// database (sealed with the server key) on first use. Set together with `sp_cert_file`.
    pub sp_key_file: Option<PathBuf>,
    /// PEM certificate published in our SP metadata for `sp_key_file`.
    pub sp_cert_file: Option<PathBuf>,
}

impl Default for SamlConfig {
    fn default() -> Self {
        Self {
            request_ttl: Duration::from_secs(10 * 60),
            max_response_bytes: 256 * 1024,
            clock_skew: Duration::from_secs(120),
            logins_per_ip_per_hour: 300,
            sp_key_file: None,
            sp_cert_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` on this address only (e.g. 127.0.0.1:9464), not on the public listener.
    pub bind: Option<SocketAddr>,
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 3600)
}

/// The database URL; its password is never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The file behind a `sqlite://` URL, or `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self
            .0
            .strip_prefix("sqlite://")
            .or_else(|| self.0.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:" && !path.starts_with("file::memory"))
            .then(|| PathBuf::from(percent_decode(path)))
    }

    /// A `sqlite:` URL that names no file: an in-memory database, gone with its process.
    pub fn is_sqlite_in_memory(&self) -> bool {
        self.0.starts_with("sqlite:")
            && (self.sqlite_path().is_none()
                || self
                    .0
                    .split_once('?')
                    .is_some_and(|(_, q)| q.split('&').any(|p| p == "mode=memory")))
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    /// The URL with any password replaced by `***`, also where the URL does not parse (a
    /// PostgreSQL URL naming a socket folder, say).
    pub fn redacted(&self) -> String {
        redact_secrets(&self.0)
    }
}

/// `%XX` sequences decoded, as the SQLite driver reads a URL's path.
fn percent_decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// A file path written into a `sqlite://` URL: the characters a URL gives meaning to escaped.
fn percent_encode_path(path: &str) -> String {
    const SPECIAL: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    percent_encoding::utf8_percent_encode(path, SPECIAL).to_string()
}

/// `text` with the password of every `scheme://user:password@` and every `password=` value
/// replaced by `***`: for URLs and for driver errors that quote them.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The URL runs to the first blank or quote (or the next URL). Its user part ends at the
        // last '@' in it: a password may hold '/', '?', '#' or '@' unencoded. An '@' further
        // on (in a query) hides more than the password, never less.
        let mut end = tail
            .find(|c: char| matches!(c, '\'' | '"') || c.is_whitespace())
            .unwrap_or(tail.len());
        if let Some(next) = tail[..end].find("://") {
            end = next;
        }
        let url = &tail[..end];
        match url.rfind('@') {
            Some(at) => {
                let user_info = &url[..at];
                match user_info.find(':') {
                    Some(colon) => {
                        out.push_str(&user_info[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(user_info),
                }
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_password_parameters(&out)
}

/// `password=…` (a URL query parameter or a libpq keyword, blanks allowed around `=`) up to the
/// next `&`, blank or quote; a quoted value up to its closing quote.
fn redact_password_parameters(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let key_end = from + i + "password".len();
        let after = &text[key_end..];
        let blanks = after.len() - after.trim_start().len();
        if !after[blanks..].starts_with('=') {
            from = key_end;
            continue;
        }
        let eq = key_end + blanks + 1;
        let value = &text[eq..];
        let start = eq + (value.len() - value.trim_start().len());
        let end = match text[start..].chars().next() {
            Some(q @ ('\'' | '"')) => text[start + 1..]
                .find(q)
                .map_or(text.len(), |e| start + 1 + e + 1),
            _ => text[start..]
                .find(|c: char| matches!(c, '&' | '\'' | '"' | '#') || c.is_whitespace())
                .map_or(text.len(), |e| start + e),
        };
        out.push_str(&text[last..start]);
        if end > start {
            out.push_str("***");
        }
        last = end;
        from = end.max(start);
    }
    out.push_str(&text[last..]);
    out
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(s) => s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        Raw::Many(v) => v,
    };
    items
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("`{item}` is not an IP address or CIDR range"))
                })
        })
        .collect()
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub bind: Option<SocketAddr>,
    pub public_url: Option<String>,
}

impl Overrides {
    /// Puts the flags on top of `figment`.
    fn apply(&self, mut figment: Figment) -> Figment {
        if let Some(url) = &self.database_url {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        if let Some(bind) = &self.bind {
            figment = figment.merge(Serialized::default("bind", bind.to_string()));
        }
        if let Some(url) = &self.public_url {
            figment = figment.merge(Serialized::default("public_url", url));
        }
        figment
    }
}

/// Where a value came from, as an operator would name it: the file's path or the variable.
fn source_of(err: &figment::Error) -> String {
    let Some(meta) = &err.metadata else {
        return "the command line".into();
    };
    match &meta.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ if meta.name.contains("environment") => {
            let key = err.path.join("__").to_uppercase();
            if key.is_empty() {
                "the AUTHCTL_* environment".into()
            } else {
                format!("AUTHCTL_{key}")
            }
        }
        _ => meta.name.to_string(),
    }
}

/// One configuration error as a sentence naming the key, where it came from and what is accepted.
fn describe(err: &figment::Error) -> String {
    use figment::error::Kind;
    let key = err.path.join(".");
    let what = match &err.kind {
        Kind::UnknownField(field, expected) => {
            let full = if key.is_empty() {
                field.clone()
            } else if err.path.last() == Some(field) {
                key.clone()
            } else {
                format!("{key}.{field}")
            };
            let known = if expected.is_empty() {
                String::new()
            } else {
                format!("; the keys here are {}", expected.join(", "))
            };
            return format!("unknown key `{full}` in {}{known}", source_of(err));
        }
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!("found {found}, expected {}", plain(expected))
        }
        Kind::InvalidLength(n, expected) => format!("{n} items, expected {}", plain(expected)),
        Kind::UnknownVariant(found, expected) => {
            format!("`{found}` is not one of {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    if key.is_empty() {
        format!("{what} (in {})", source_of(err))
    } else {
        format!("`{key}`: {what} (in {})", source_of(err))
    }
}

/// serde's names for what it expected, in words instead of Rust types.
fn plain(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other
            .replace("struct ", "a table like ")
            .replace("a string", "text")
            .replace("string", "text"),
    }
}

/// The environment key (lower case, `__` between levels, without `AUTHCTL_`) that `err` is
/// about, when the value came from the environment.
fn env_key(err: &figment::Error) -> Option<String> {
    let meta = err.metadata.as_ref()?;
    if !meta.name.contains("environment") {
        return None;
    }
    let mut parts: Vec<String> = err.path.clone();
    if let figment::error::Kind::UnknownField(field, _) = &err.kind
        && parts.last() != Some(field)
    {
        parts.push(field.clone());
    }
    Some(parts.join("__").to_lowercase())
}

impl Config {
    /// Loads the configuration: defaults < `file` < `AUTHCTL_*` environment < `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if path.is_dir() {
                anyhow::bail!(
                    "the configuration file {} is a folder; name the file (e.g. {})",
                    path.display(),
                    path.join("authctl.toml").display()
                );
            }
            if !path.is_file() {
                anyhow::bail!("the configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // A stray `AUTHCTL_*` variable that is not a key (a test's, a wrapper's) gets a warning
        // and is left out; an unknown key in the file stays an error. serde stops at the first
        // bad value, so a bad variable is noted and left out and the rest is read again: every
        // bad variable is reported at once, with the first problem of the file.
        let mut skip: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        let config: Config = loop {
            let skipped = skip.clone();
            let attempt = figment.clone().merge(
                Env::prefixed("AUTHCTL_")
                    .ignore(NON_CONFIG_ENV)
                    .filter(move |key| {
                        // Keys keep the variable's case: compare without it.
                        let key = key.as_str().to_ascii_lowercase();
                        !key.starts_with("test_") && !skipped.contains(&key)
                    })
                    .split("__"),
            );
            let merged = overrides.apply(attempt);
            match merged.extract::<Config>() {
                Ok(mut config) if problems.is_empty() => {
                    config.public_url_set = merged.find_metadata("public_url").is_some();
                    // A relative state_dir in a file is taken from that file's folder (as
                    // kubectl reads paths in a kubeconfig), not from wherever the command runs.
                    if config.state_dir.is_relative()
                        && let Some(figment::Source::File(from)) = merged
                            .find_metadata("state_dir")
                            .and_then(|m| m.source.as_ref())
                        && let Some(folder) = from.parent()
                    {
                        config.state_dir = folder.join(&config.state_dir);
                    }
                    break config;
                }
                Ok(_) => anyhow::bail!("{}", problems.join("; ")),
                Err(err) => {
                    let mut progress = false;
                    for one in err {
                        match env_key(&one) {
                            Some(key) if skip.len() < 64 && !skip.contains(&key) => {
                                if matches!(one.kind, figment::error::Kind::UnknownField(..)) {
                                    eprintln!(
                                        "warning: ignoring the environment variable AUTHCTL_{}: it is not a configuration key (docs/configuration.md lists them)",
                                        key.to_uppercase()
                                    );
                                } else {
                                    problems.push(describe(&one));
                                }
                                skip.push(key);
                                progress = true;
                            }
                            _ => problems.push(describe(&one)),
                        }
                    }
                    if !progress {
                        anyhow::bail!("{}", problems.join("; "));
                    }
                }
            }
        };
        let problems = config.validate();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        let mut config = config.under_state_dir();
        config.file = file.map(Path::to_path_buf);
        Ok(config)
    }

    /// Relative state paths (a SQLite file, the key file) taken as under `state_dir`.
    fn under_state_dir(mut self) -> Self {
        if self.state_dir == Path::new(".") {
            return self;
        }
        if self.secret_key_file.is_relative() {
            self.secret_key_file = self.state_dir.join(&self.secret_key_file);
        }
        if let Some(path) = self.database_url.sqlite_path()
            && path.is_relative()
        {
            let query = self
                .database_url
                .0
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            self.database_url = DatabaseUrl(format!(
                "sqlite://{}{query}",
                percent_encode_path(&self.state_dir.join(path).display().to_string())
            ));
        }
        self
    }

    /// The configuration file to read when none is named: the user's
    /// (`$XDG_CONFIG_HOME/authctl/authctl.toml`, else `~/.config/authctl/authctl.toml`), then the
    /// system's (`/etc/authctl/authctl.toml`); the first that exists.
    pub fn discover() -> Option<PathBuf> {
        let user = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|dir| dir.join("authctl").join("authctl.toml"));
        user.into_iter()
            .chain([PathBuf::from(SYSTEM_CONFIG)])
            .find(|p| p.is_file())
    }

    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.public_url.scheme(), "http" | "https") {
            problems.push(format!(
                "public_url must be an http or https URL, not `{}`",
                self.public_url
            ));
        }
        if self.password.min_length == 0 || self.password.min_length > self.password.max_length {
            problems.push(
                "password.min_length must be at least 1 and at most password.max_length".into(),
            );
        }
        if self.password.max_length > 1024 {
            problems.push("password.max_length may not exceed 1024".into());
        }
        if self.mail.transport == MailTransportKind::Smtp && self.mail.smtp_url.is_none() {
            problems.push("mail.transport is `smtp` but mail.smtp_url is not set".into());
        }
        if self.deletion.webhook_url.is_some() != self.deletion.webhook_secret.is_some() {
            problems.push(
                "set both deletion.webhook_url and deletion.webhook_secret, or neither".into(),
            );
        }
        if self.saml.sp_key_file.is_some() != self.saml.sp_cert_file.is_some() {
            problems.push("set both saml.sp_key_file and saml.sp_cert_file, or neither".into());
        }
        if self.saml.max_response_bytes < 4096 {
            problems.push("saml.max_response_bytes must be at least 4096".into());
        }
        if self.scim.max_results == 0 || self.scim.body_limit < 1024 {
            problems.push(
                "scim.max_results must be at least 1 and scim.body_limit at least 1024".into(),
            );
        }
        if self.magic_link.ttl.is_zero() || self.webauthn.ceremony_ttl.is_zero() {
            problems.push("magic_link.ttl and webauthn.ceremony_ttl must be longer than 0s".into());
        }
        if let Some(rp_id) = &self.webauthn.rp_id {
            let host = self.public_url.host_str().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                problems.push(format!(
                    "webauthn.rp_id `{rp_id}` must be the host of public_url (`{host}`) or a parent domain of it"
                ));
            }
        }
        for origin in &self.webauthn.extra_origins {
            if !matches!(origin.scheme(), "http" | "https") || origin.host_str().is_none() {
                problems.push(format!(
                    "webauthn.extra_origins: `{origin}` is not an http or https origin"
                ));
            }
        }
        if self.session.max_per_user == 0 {
            problems.push("session.max_per_user must be at least 1".into());
        }
        if self.two_factor.max_pending_logins == 0 {
            problems.push("two_factor.max_pending_logins must be at least 1".into());
        }
        if self.session.idle_timeout.is_zero() || self.session.absolute_timeout.is_zero() {
            problems.push(
                "session.idle_timeout and session.absolute_timeout must be longer than 0s".into(),
            );
        }
        problems
    }

    /// Whether the service is reached over https (cookies get `Secure` and a `__Host-` name).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Whether a sign-in may send the browser on to `url` (`?next=`, forward-auth's return URL):
    /// an http(s) URL on `public_url`'s origin or on one of `web.allowed_redirect_origins`.
    pub fn may_return_to(&self, url: &Url) -> bool {
        let origin = url.origin();
        matches!(url.scheme(), "http" | "https")
            && (origin == self.public_url.origin()
                || self
                    .web
                    .allowed_redirect_origins
                    .iter()
                    .any(|o| o.origin() == origin))
    }

    /// The public URL without a trailing slash, for building links.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The SMTP URL, for the mailer only.
    pub fn smtp_url(&self) -> Option<&str> {
        self.mail.smtp_url.as_ref().map(|s| s.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_debug_hides_the_password() {
        let url = DatabaseUrl::new("postgres://app:hunter2@db.example:5432/auth");
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db.example"), "{shown}");
    }

    #[test]
    fn passwords_are_redacted_where_the_url_does_not_parse() {
        for (raw, shown) in [
            (
                "postgres://app:s3cret@/auth?host=/run/postgresql",
                "postgres://app:***@/auth?host=/run/postgresql",
            ),
            (
                "postgres://app@db/auth?password=s3cret&sslmode=require",
                "postgres://app@db/auth?password=***&sslmode=require",
            ),
            (
                "postgres://app:p@ss:w@rd@db/auth",
                "postgres://app:***@db/auth",
            ),
            (
                "error connecting to postgres://a:s3cret@h/d: refused",
                "error connecting to postgres://a:***@h/d: refused",
            ),
            ("sqlite://authctl.db", "sqlite://authctl.db"),
            ("PASSWORD=s3cret dbname=x", "PASSWORD=*** dbname=x"),
            ("postgres://app:pa/ss@db/auth", "postgres://app:***@db/auth"),
            (
                "postgres://app:s3#cret@db/auth",
                "postgres://app:***@db/auth",
            ),
            ("postgres://app:a?b@s3cret@db", "postgres://app:***@db"),
            (
                "host=db password = 's3 cret' user=x",
                "host=db password = *** user=x",
            ),
            ("password=\"s3cret\"", "password=***"),
        ] {
            assert_eq!(redact_secrets(raw), shown, "{raw}");
            assert!(!DatabaseUrl::new(raw).to_string().contains("s3cret"));
        }
    }

    #[test]
    fn sqlite_paths_round_trip_through_the_url() {
        let mut config = Config {
            state_dir: PathBuf::from("/var/lib/50%?#"),
            ..Config::default()
        };
        config.database_url = DatabaseUrl::new("sqlite://a%25b.db?mode=rwc");
        let config = config.under_state_dir();
        assert_eq!(
            config.database_url.sqlite_path(),
            Some(PathBuf::from("/var/lib/50%?#/a%b.db"))
        );
        assert!(config.database_url.expose().ends_with("?mode=rwc"));
        for memory in [
            "sqlite::memory:",
            "sqlite:",
            "sqlite://",
            "sqlite://:memory:",
            "sqlite://x.db?mode=memory",
        ] {
            assert!(DatabaseUrl::new(memory).is_sqlite_in_memory(), "{memory}");
        }
        assert!(!DatabaseUrl::new("sqlite://x.db").is_sqlite_in_memory());
    }

    #[test]
    fn smtp_password_is_not_in_debug_output() {
        let mut config = Config::default();
        config.mail.smtp_url = Some(SecretString::from("smtp://u:topsecret@mail:587"));
        assert!(!format!("{config:?}").contains("topsecret"));
    }

    #[test]
    fn trusted_proxies_accept_a_comma_separated_string() {
        let figment = Figment::new().merge(Serialized::default(
            "trusted_proxies",
            "10.0.0.0/8, 192.168.1.1",
        ));
        let config: Config = figment.extract().expect("valid");
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(config.trusted_proxies[1].contains(&"192.168.1.1".parse::<IpAddr>().expect("ip")));
    }
}
