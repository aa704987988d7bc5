//! `AppContext`: everything a service function needs, built once and passed explicitly.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::ServerKey;
use crate::mail::Mailer;
use crate::password::Hasher;

/// Cloned for every request by every layer that holds it, so a clone is one reference count:
/// the parts live behind one `Arc` and are reached through `Deref` (`ctx.db`, `ctx.config`).
#[derive(Clone)]
pub struct AppContext(Arc<Parts>);

impl std::ops::Deref for AppContext {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

pub struct Parts {
    /// Every write, and every read that belongs to a write: on SQLite one connection, so this
    /// process's writes take turns instead of failing with SQLITE_BUSY.
    pub db: DatabaseConnection,
    /// Reads on the hot path that write nothing (the per-request session check): on SQLite
    /// several read-only connections, which in WAL mode see every committed write at once and
    /// neither wait for the writer nor hold it up; on PostgreSQL the same pool as `db`.
    pub read: DatabaseConnection,
    pub config: Arc<Config>,
    pub mailer: Mailer,
    pub hasher: Hasher,
    pub clock: Arc<dyn Clock>,
    pub key: ServerKey,
    /// Wakes this process's mail worker when a mail is queued.
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// The WebAuthn relying party (`None` when `public_url` is an IP address and no
    /// `webauthn.rp_id` is set).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

impl AppContext {
    /// Builds the context on an open database with the wall clock.
    pub fn new(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        Self::with_clock(config, db, Arc::new(SystemClock))
    }

    pub fn with_clock(
        config: Config,
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(Parts {
            webauthn: crate::service::webauthn::relying_party(&config)?.map(Arc::new),
            mailer: Mailer::from_config(&config)?,
            hasher: Hasher::new(&config.password)?,
            config: Arc::new(config),
            read: db.clone(),
            db,
            clock,
            key: ServerKey::default(),
            mail_wake: Arc::new(tokio::sync::Notify::new()),
        })))
    }

    /// Serves the hot path's reads from `read` (see `db::connect_readers`).
    pub fn with_readers(self, read: Option<DatabaseConnection>) -> Self {
        let Some(read) = read else {
            return self;
        };
        let parts = &self.0;
        Self(Arc::new(Parts {
            db: parts.db.clone(),
            read,
            config: parts.config.clone(),
            mailer: parts.mailer.clone(),
            hasher: parts.hasher.clone(),
            clock: parts.clock.clone(),
            key: parts.key.clone(),
            mail_wake: parts.mail_wake.clone(),
            webauthn: parts.webauthn.clone(),
        }))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
