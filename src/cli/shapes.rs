//! The CLI's own JSON shapes (docs/cli-json.md), one per noun, shared by its list and show
//! commands, and one `Change` for every command that changes something. They are built from
//! the service's models here, so an HTTP view can change without changing what scripts read.
//! Every key is always present (`null` when there is nothing), and every key's table column
//! is listed with it.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::output::{Column, Listed, opt_time, or_dash, time};
use crate::entity::{deletion_event, user};
use crate::service::history::LoginEventView;
use crate::service::passkeys::PasskeyView;
use crate::service::sessions::SessionView;
use crate::service::{api_keys::ApiKeyView, audit::AuditEntry, deletion::Pending};

/// An account (`users list`, `users show`, and what `users create|verify|disable|enable` leave).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub deletion_scheduled_for: Option<DateTime<Utc>>,
    pub roles: Vec<String>,
    /// `provider: NameID` for each SSO identity.
    pub sso_identities: Vec<String>,
    /// How the account can sign in: `password`, `totp`, `passkey`, `sso`.
    pub factors: Vec<String>,
}

impl User {
    pub fn new(
        u: &user::Model,
        roles: Vec<String>,
        sso_identities: Vec<String>,
        factors: Vec<String>,
    ) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at,
            disabled: u.disabled_at.is_some(),
            disabled_at: u.disabled_at,
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            deletion_scheduled_for: u.deletion_due_at,
            roles,
            sso_identities,
            factors,
        }
    }

    /// The `users show` lines.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("email", self.email.clone()),
            ("name", self.name.clone()),
            ("verified", opt_time(self.email_verified_at)),
            ("disabled", opt_time(self.disabled_at)),
            (
                "password",
                if self.has_password { "set" } else { "none" }.into(),
            ),
            ("created", time(self.created_at)),
            ("deletion", opt_time(self.deletion_scheduled_for)),
            ("roles", self.roles.join(", ")),
            ("sso", self.sso_identities.join("\n")),
            ("factors", self.factors.join(", ")),
        ]
    }
}

impl User {
    /// One word for the table: disabled, deleting (scheduled), unverified or active.
    fn status(&self) -> &'static str {
        if self.disabled {
            "disabled"
        } else if self.deletion_scheduled_for.is_some() {
            "deleting"
        } else if !self.email_verified {
            "unverified"
        } else {
            "active"
        }
    }
}

impl Listed for User {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("email"),
            Column::fixed("status"),
            Column::fixed("created").wide(),
            Column::fixed("roles").wide(),
            Column::text("name"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.email.clone(),
            self.status().into(),
            time(self.created_at),
            self.roles.join(","),
            self.name.clone(),
        ]
    }
}

/// A live session (`sessions list`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub auth_method: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub flags: Vec<String>,
    pub device_name: String,
    pub user_agent: Option<String>,
}

impl Session {
    pub fn new(user_id: &str, s: SessionView) -> Self {
        Self {
            id: s.id,
            user_id: user_id.to_owned(),
            auth_method: s.auth_method,
            ip: s.ip,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
            expires_at: s.expires_at,
            flags: s.flags,
            device_name: s.device_name,
            user_agent: s.user_agent,
        }
    }
}

impl Listed for Session {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("last active"),
            Column::fixed("ip"),
            Column::fixed("method").wide(),
            Column::fixed("created").wide(),
            Column::fixed("expires").wide(),
            Column::fixed("flags").wide(),
            Column::text("device"),
            Column::text("user agent").wide(),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            time(self.last_active_at),
            or_dash(self.ip.as_deref()),
            self.auth_method.clone(),
            time(self.created_at),
            time(self.expires_at),
            self.flags.join(","),
            self.device_name.clone(),
            or_dash(self.user_agent.as_deref()),
        ]
    }
}

/// An API key, never its secret (`apikeys list`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub name: String,
}

impl ApiKey {
    pub fn new(user_id: &str, k: ApiKeyView) -> Self {
        Self {
            id: k.id,
            user_id: user_id.to_owned(),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            name: k.name,
        }
    }
}

impl Listed for ApiKey {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("prefix"),
            Column::fixed("last used"),
            Column::fixed("created").wide(),
            Column::fixed("expires").wide(),
            Column::text("name"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.prefix.clone(),
            opt_time(self.last_used_at),
            time(self.created_at),
            opt_time(self.expires_at),
            self.name.clone(),
        ]
    }
}

/// A SCIM token, never its secret (`scim tokens list`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimToken {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<crate::service::scim::tokens::TokenView> for ScimToken {
    fn from(t: crate::service::scim::tokens::TokenView) -> Self {
        Self {
            id: t.id,
            provider: t.provider,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

impl Listed for ScimToken {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("provider"),
            Column::fixed("prefix"),
            Column::fixed("last used"),
            Column::fixed("created").wide(),
            Column::text("name"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.provider.clone(),
            self.prefix.clone(),
            opt_time(self.last_used_at),
            time(self.created_at),
            self.name.clone(),
        ]
    }
}

/// `scim tokens create`: the token made, and the file that holds its secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimTokenCreated {
    pub token: ScimToken,
    pub token_file: std::path::PathBuf,
}

/// A passkey, never its public key (`passkeys list`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Passkey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub credential_id: String,
    pub sign_count: i64,
    pub transports: Vec<String>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Passkey {
    pub fn new(user_id: &str, p: PasskeyView) -> Self {
        Self {
            id: p.id,
            user_id: user_id.to_owned(),
            name: p.name,
            credential_id: p.credential_id,
            sign_count: p.sign_count,
            transports: p.transports,
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

impl Listed for Passkey {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("last used"),
            Column::fixed("synced"),
            Column::fixed("created").wide(),
            Column::fixed("transports").wide(),
            Column::fixed("credential id").wide(),
            Column::text("name"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            opt_time(self.last_used_at),
            if self.backed_up { "yes" } else { "no" }.into(),
            time(self.created_at),
            self.transports.join(","),
            self.credential_id.clone(),
            self.name.clone(),
        ]
    }
}

/// An audit event (`audit list`). `email` is the account's address while the account exists.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<Value>,
}

impl AuditEvent {
    pub fn new(e: AuditEntry, email: Option<String>) -> Self {
        Self {
            id: e.id,
            at: e.at,
            action: e.action,
            actor: e.actor,
            user_id: e.user_id,
            email,
            ip: e.ip,
            detail: e.detail,
        }
    }
}

impl Listed for AuditEvent {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("time"),
            Column::fixed("action"),
            Column::fixed("actor"),
            Column::fixed("email"),
            Column::fixed("user id").wide(),
            Column::fixed("ip").wide(),
            Column::text("detail"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            time(self.at),
            self.action.clone(),
            self.actor.clone(),
            or_dash(self.email.as_deref()),
            or_dash(self.user_id.as_deref()),
            or_dash(self.ip.as_deref()),
            self.detail
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
        ]
    }
}

/// One login attempt (`users history`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginAttempt {
    pub at: DateTime<Utc>,
    pub success: bool,
    pub method: String,
    pub reason: Option<String>,
    pub ip: Option<String>,
    pub device_name: String,
    pub user_agent: Option<String>,
}

impl From<LoginEventView> for LoginAttempt {
    fn from(e: LoginEventView) -> Self {
        Self {
            at: e.at,
            success: e.success,
            method: e.method,
            reason: e.reason,
            ip: e.ip,
            device_name: e.device_name,
            user_agent: e.user_agent,
        }
    }
}

impl Listed for LoginAttempt {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("time"),
            Column::fixed("result"),
            Column::fixed("method"),
            Column::fixed("reason"),
            Column::fixed("ip"),
            Column::text("device"),
            Column::text("user agent").wide(),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            time(self.at),
            if self.success { "success" } else { "failure" }.into(),
            self.method.clone(),
            or_dash(self.reason.as_deref()),
            or_dash(self.ip.as_deref()),
            self.device_name.clone(),
            or_dash(self.user_agent.as_deref()),
        ]
    }
}

/// An account waiting for its hard delete (`deletion list`, `deletion schedule`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    pub user_id: String,
    pub email: String,
    pub requested_at: Option<DateTime<Utc>>,
    pub scheduled_for: DateTime<Utc>,
    pub days_remaining: i64,
}

impl From<Pending> for Deletion {
    fn from(p: Pending) -> Self {
        Self {
            user_id: p.user_id,
            email: p.email,
            requested_at: p.requested_at,
            scheduled_for: p.scheduled_for,
            days_remaining: p.days_remaining,
        }
    }
}

impl Listed for Deletion {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("email"),
            Column::fixed("requested"),
            Column::fixed("scheduled for"),
            Column::fixed("days left"),
            Column::fixed("user id").wide(),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.email.clone(),
            opt_time(self.requested_at),
            time(self.scheduled_for),
            self.days_remaining.to_string(),
            self.user_id.clone(),
        ]
    }
}

/// A `user.deleted` event in the outbox, with its delivery (`deletion events`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionEvent {
    pub id: String,
    pub event: String,
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
    pub delivered: bool,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<deletion_event::Model> for DeletionEvent {
    fn from(e: deletion_event::Model) -> Self {
        Self {
            delivered: e.delivered_at.is_some(),
            id: e.id,
            event: e.event,
            user_id: e.user_id,
            occurred_at: e.occurred_at,
            delivered_at: e.delivered_at,
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at,
        }
    }
}

impl Listed for DeletionEvent {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("id"),
            Column::fixed("time"),
            Column::fixed("event"),
            Column::fixed("user id"),
            Column::fixed("delivered"),
            Column::fixed("attempts"),
            Column::fixed("next attempt"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            time(self.occurred_at),
            self.event.clone(),
            self.user_id.clone(),
            opt_time(self.delivered_at),
            self.attempts.to_string(),
            opt_time(self.next_attempt_at),
        ]
    }
}

/// A SAML identity provider (`saml list`, `saml show`, `saml add`, `saml update`): the
/// service's `ProviderView`, which no HTTP route serves.
impl Listed for crate::service::saml::ProviderView {
    fn columns() -> Vec<Column> {
        vec![
            Column::fixed("name"),
            Column::fixed("domains"),
            Column::fixed("certificate expires"),
            Column::fixed("last login"),
            Column::fixed("entity id"),
        ]
    }

    fn cells(&self) -> Vec<String> {
        let expiry = self.certificates.iter().filter_map(|c| c.not_after).max();
        vec![
            self.name.clone(),
            self.domains.join(","),
            opt_time(expiry),
            opt_time(self.last_login_at),
            self.entity_id.clone(),
        ]
    }
}

/// A database migration (`migrate status`, `migrate up`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    pub name: String,
    pub applied: bool,
}

impl Listed for Migration {
    fn columns() -> Vec<Column> {
        vec![Column::fixed("migration"), Column::fixed("status")]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            if self.applied { "applied" } else { "pending" }.into(),
        ]
    }
}

/// Our SAML service-provider metadata for one provider (`saml metadata -o json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpMetadata {
    pub provider: String,
    pub entity_id: String,
    pub acs_url: String,
    pub xml: String,
}

/// What a command changed (or, with `dryRun`, would change). `action` is the command
/// (`sessions.revoke`), `kind` what `items` are, `changed` how many there were, `items` their
/// ids where the command deals in named things, `details` per-command counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub action: &'static str,
    pub kind: &'static str,
    pub changed: u64,
    pub dry_run: bool,
    pub items: Vec<String>,
    pub details: BTreeMap<&'static str, Value>,
}

impl Change {
    pub fn new(action: &'static str, kind: &'static str, items: Vec<String>) -> Self {
        Self {
            action,
            kind,
            changed: items.len() as u64,
            dry_run: false,
            items,
            details: BTreeMap::new(),
        }
    }

    /// A change known by its count only.
    pub fn counted(action: &'static str, kind: &'static str, changed: u64) -> Self {
        Self {
            changed,
            ..Self::new(action, kind, Vec::new())
        }
    }

    pub fn detail(mut self, key: &'static str, value: impl Serialize) -> Self {
        self.details
            .insert(key, serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What `authctl status` found: the configuration file read, the state directory, the
/// database with its schema, the server key, and the public URL here and in `serve`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub config_file: Option<String>,
    pub state_dir: String,
    pub database: StatusDatabase,
    pub server_key: StatusKey,
    pub public_url: String,
    /// The public URL `serve` last started with on this database.
    pub service_public_url: Option<String>,
    pub service_started_at: Option<DateTime<Utc>>,
    pub mail_transport: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDatabase {
    /// The URL without its password.
    pub url: String,
    pub backend: &'static str,
    /// The SQLite file, absolute.
    pub file: Option<String>,
    pub reachable: bool,
    /// `current`, `behind`, `newer` (migrated by a newer authctl) or `unknown`.
    pub schema: &'static str,
    pub pending_migrations: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusKey {
    /// `secret_key` (set in the configuration) or `file`.
    pub source: &'static str,
    pub file: Option<String>,
    pub exists: bool,
}
