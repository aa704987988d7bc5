//! Connecting to the database and applying migrations; the only place that knows SQLite from PostgreSQL.
use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};

use crate::config::DatabaseUrl;

/// An arbitrary, fixed key for `pg_advisory_lock`: only one instance migrates at a time.
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_6374_6c00; // "authctl\0"

/// Opens a pool. SQLite runs in WAL mode with a busy timeout and foreign keys on, so `serve` and
/// the CLI can use one file at the same time.
pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.expose());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.expose().starts_with("sqlite:") {
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
    } else if url.is_postgres() {
        options.max_connections(10).min_connections(1);
    } else {
        anyhow::bail!(
            "database_url must start with sqlite:// or postgres:// (got {})",
            url.redacted()
        );
    }
    let sqlite = url.expose().starts_with("sqlite:");
    let mut waited = Duration::ZERO;
    loop {
        match Database::connect(options.clone()).await {
            // Several processes opening a fresh SQLite file at once all switch it to WAL, which
            // takes an exclusive lock; SQLite answers "database is locked" at once there instead
            // of waiting for the busy timeout (deadlock avoidance), so take turns here.
            Err(e) if sqlite && is_locked(&e) && waited < SQLITE_OPEN_PATIENCE => {
                let pause = Duration::from_millis(20 + jitter_ms());
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            result => {
                return result.with_context(|| {
                    format!("while connecting to the database at {}", url.redacted())
                });
            }
        }
    }
}

/// How long opening a SQLite file keeps trying while other processes hold its lock.
const SQLITE_OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// SQLite's SQLITE_BUSY ("database is locked", code 5) while opening.
fn is_locked(e: &sea_orm::DbErr) -> bool {
    e.to_string().contains("database is locked")
}

/// A small jitter (0..30 ms) so contenders that collided do not collide again in step: the
/// process id and a count of tries in this process, since no two contenders share both.
fn jitter_ms() -> u64 {
    static TRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = TRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (u64::from(std::process::id()).wrapping_mul(31) + n.wrapping_mul(17)) % 30
}

/// Applies every pending migration. Concurrent starts wait for each other instead of racing: an
/// advisory lock on PostgreSQL, a lock file beside the database on SQLite.
pub async fn migrate(db: &DatabaseConnection, url: &DatabaseUrl) -> anyhow::Result<()> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite: processes sharing the file take turns through an OS file lock beside it.
        let _lock = match sqlite_path(url) {
            Some(path) => Some(lock_file(format!("{path}.migrate-lock")).await?),
            None => None,
        };
        return Migrator::up(db, None)
            .await
            .context("while applying migrations");
    }
    // The lock lives on its own connection, held for as long as the migrations run.
    let mut options = ConnectOptions::new(url.expose());
    options
        .sqlx_logging(false)
        .max_connections(1)
        .min_connections(1);
    let lock = Database::connect(options)
        .await
        .context("while connecting to take the migration lock")?;
    let sql = |s: &str| {
        Statement::from_sql_and_values(DatabaseBackend::Postgres, s, [MIGRATION_LOCK_KEY.into()])
    };
    lock.execute_raw(sql("SELECT pg_advisory_lock($1)"))
        .await
        .context("while taking the migration lock")?;
    let result = Migrator::up(db, None)
        .await
        .context("while applying migrations");
    let _ = lock.execute_raw(sql("SELECT pg_advisory_unlock($1)")).await;
    let _ = lock.close().await;
    result
}

/// The file behind a `sqlite://` URL, or `None` for an in-memory database.
fn sqlite_path(url: &DatabaseUrl) -> Option<String> {
    let rest = url
        .expose()
        .strip_prefix("sqlite://")
        .or_else(|| url.expose().strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Blocks (off the runtime) until this process holds an exclusive lock on `path`.
async fn lock_file(path: String) -> anyhow::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("while opening the migration lock file {path}"))?;
        file.lock()
            .with_context(|| format!("while locking {path}"))?;
        Ok(file)
    })
    .await
    .context("while waiting for the migration lock")?
}

/// One row of `authctl migrate status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

pub async fn status(db: &DatabaseConnection) -> anyhow::Result<Vec<MigrationState>> {
    let rows = Migrator::get_migration_with_status(db)
        .await
        .context("while reading the migration status")?;
    Ok(rows
        .into_iter()
        .map(|m| MigrationState {
            name: m.name().to_owned(),
            applied: m.status() == migration::MigrationStatus::Applied,
        })
        .collect())
}

/// Fails with an actionable message when the schema is behind this binary.
pub async fn ensure_migrated(db: &DatabaseConnection) -> anyhow::Result<()> {
    let pending = Migrator::get_pending_migrations(db)
        .await
        .context("while checking the database schema")?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is {} migration(s) behind this authctl; run `authctl migrate up` (or start `authctl serve`, which migrates)",
            pending.len()
        );
    }
    Ok(())
}
