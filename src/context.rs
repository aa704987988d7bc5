//! `AppContext`: everything a service function needs, built once and passed explicitly.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::ServerKey;
use crate::mail::Mailer;
use crate::password::Hasher;

#[derive(Clone)]
pub struct AppContext {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub mailer: Mailer,
    pub hasher: Hasher,
    pub clock: Arc<dyn Clock>,
    pub key: ServerKey,
    /// Wakes this process's mail worker when a mail is queued.
    pub mail_wake: Arc<tokio::sync::Notify>,
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
        Ok(Self {
            mailer: Mailer::from_config(&config)?,
            hasher: Hasher::new(&config.password)?,
            config: Arc::new(config),
            db,
            clock,
            key: ServerKey::default(),
            mail_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
