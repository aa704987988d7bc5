//! Connecting to the database and applying migrations; the only place that knows SQLite from PostgreSQL.
use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};

use crate::config::{DatabaseUrl, redact_secrets};

/// An arbitrary, fixed key for `pg_advisory_lock`: only one instance migrates at a time.
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_6374_6c00; // "authctl\0"

/// Opens a pool, creating a missing SQLite file (for `serve`, `migrate up` and tests). SQLite runs
/// in WAL mode with a busy timeout and foreign keys on, so `serve` and the CLI can use one file at
/// the same time.
pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<DatabaseConnection> {
    open(url, true).await
}

/// Opens a pool on a database that must exist already: the operator's commands never create
/// one, and a missing SQLite file is one sentence naming it.
pub async fn connect_existing(url: &DatabaseUrl) -> anyhow::Result<DatabaseConnection> {
    if url.is_sqlite_in_memory() {
        anyhow::bail!(
            "database_url {} names an in-memory SQLite database, which lives only inside one process: point it at the file `authctl serve` uses (e.g. sqlite://authctl.db)",
            url.redacted()
        );
    }
    if let Some(path) = url.sqlite_path()
        && !path.exists()
    {
        let shown = std::path::absolute(&path).unwrap_or(path);
        anyhow::bail!(
            "there is no database at {}: run this where `authctl serve` runs, name its configuration with --config (or AUTHCTL_CONFIG, /etc/authctl/authctl.toml), or create it with `authctl migrate up`",
            shown.display()
        );
    }
    open(url, false).await
}

async fn open(url: &DatabaseUrl, create: bool) -> anyhow::Result<DatabaseConnection> {
    if url.is_postgres() {
        reach_postgres(url).await?;
    }
    let mut options = base_options(url);
    if url.expose().starts_with("sqlite:") {
        // A file does not drop connections: no ping before each use (it was a round trip to
        // SQLite's worker thread on every query).
        options
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(create)
            });
    } else if url.is_postgres() {
        // A ping only for a connection idle long enough for a server, proxy or firewall to
        // have dropped it, not a round trip before every query.
        options
            .max_connections(10)
            .min_connections(1)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
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
            Err(e) if sqlite && is_unopenable(&e) => {
                let dir = url
                    .sqlite_path()
                    .and_then(|p| std::path::absolute(p).ok())
                    .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
                    .unwrap_or_else(|| ".".into());
                if !dir.is_dir() {
                    anyhow::bail!(
                        "cannot open the SQLite database at {}: its folder {} does not exist (create it, or set state_dir or database_url)",
                        url.redacted(),
                        dir.display()
                    );
                }
                anyhow::bail!(
                    "cannot open the SQLite database at {}: this user must be able to write the file and its folder {} (SQLite keeps its -wal and -shm files beside it)",
                    url.redacted(),
                    dir.display()
                );
            }
            Err(e) if url.is_postgres() && server_message(&e).is_some() => {
                let message = redact_secrets(&server_message(&e).unwrap_or_default());
                let hint = if message.starts_with("database ") {
                    "; create it (`createdb`) or fix the database name in database_url"
                } else if message.starts_with("role ") {
                    "; create the role or fix the user in database_url"
                } else {
                    ""
                };
                anyhow::bail!(
                    "PostgreSQL refused the connection to {}: {message}{hint}",
                    url.redacted()
                );
            }
            Err(e) => {
                // The driver's text may quote the URL it was given, password and all.
                anyhow::bail!(
                    "cannot connect to the database at {}: {}",
                    url.redacted(),
                    redact_secrets(&e.to_string())
                );
            }
            Ok(db) => return Ok(db),
        }
    }
}

/// What every pool shares: no statement logging (statements carry token hashes), five seconds to
/// connect and to wait for a free connection.
fn base_options(url: &DatabaseUrl) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.expose());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    options
}

/// For SQLite, a pool of read-only connections beside the writer `connect` opened (which made
/// the file and switched it to WAL): WAL readers read the last committed state without taking a
/// lock, so the session check never queues behind a write or behind another read. `None` for
/// PostgreSQL, whose one pool serves both.
pub async fn connect_readers(url: &DatabaseUrl) -> anyhow::Result<Option<DatabaseConnection>> {
    if !url.expose().starts_with("sqlite:") || url.is_sqlite_in_memory() {
        return Ok(None);
    }
    // Measured on 2 cores (docs/benchmarks.md): 1 → 10.6k, 4 → 13.9k, 8 → 14.6k `GET /me`/s.
    let readers = std::thread::available_parallelism()
        .map(|n| n.get() * 4)
        .unwrap_or(8)
        .clamp(4, 16) as u32;
    let mut options = base_options(url);
    options
        .test_before_acquire(false)
        .max_connections(readers)
        .min_connections(1)
        .map_sqlx_sqlite_opts(|o| {
            o.read_only(true)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await.map(Some).map_err(|e| {
        anyhow::anyhow!(
            "cannot open read connections to {}: {}",
            url.redacted(),
            redact_secrets(&e.to_string())
        )
    })
}

/// A scalar subquery: the roles of the user whose id is `user_id_column`, as JSON array text
/// (`NULL` or `[]` without roles), each role once though several sources gave it. Backends spell the aggregate differently.
pub fn roles_json_subquery(backend: DatabaseBackend, user_id_column: &str) -> String {
    let aggregate = match backend {
        DatabaseBackend::Postgres => "json_agg(DISTINCT user_roles.role)::text",
        _ => "json_group_array(DISTINCT user_roles.role)",
    };
    format!("(SELECT {aggregate} FROM user_roles WHERE user_roles.user_id = {user_id_column})")
}

/// How long opening a SQLite file keeps trying while other processes hold its lock.
const SQLITE_OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// What the database server said, without the driver's wrapping (`… at line 948`).
fn server_message(e: &sea_orm::DbErr) -> Option<String> {
    let text = e.to_string();
    let said = text.rsplit("error returned from database: ").next()?;
    if said.len() == text.len() {
        return None;
    }
    let said = match said.rfind(" at line ") {
        Some(i) => &said[..i],
        None => said,
    };
    Some(said.trim().to_owned())
}

/// SQLite's SQLITE_CANTOPEN (code 14) or SQLITE_READONLY (code 8): permissions, most often.
fn is_unopenable(e: &sea_orm::DbErr) -> bool {
    let text = e.to_string();
    text.contains("unable to open database file") || text.contains("readonly database")
}

/// Fails at once, naming host and port, when nothing accepts connections where `url` points
/// (instead of after the pool's timeout). Unix-socket URLs are left to the driver.
async fn reach_postgres(url: &DatabaseUrl) -> anyhow::Result<()> {
    let Ok(parsed) = url::Url::parse(url.expose()) else {
        return Ok(());
    };
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port().unwrap_or(5432);
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => anyhow::bail!(
            "cannot reach PostgreSQL: connection refused at {shown} (is it running, and is database_url right?)"
        ),
        Ok(Err(e)) => anyhow::bail!("cannot reach PostgreSQL at {shown}: {e}"),
        Err(_) => anyhow::bail!("cannot reach PostgreSQL at {shown}: no answer within 5 s"),
    }
}

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
    ensure_not_newer(db).await?;
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite: processes sharing the file take turns through an OS file lock beside it.
        let _lock = match url.sqlite_path() {
            Some(path) => Some(lock_file(format!("{}.migrate-lock", path.display())).await?),
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

/// The database's schema against this binary's migrations.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Every migration this binary knows, applied or not.
    pub known: Vec<MigrationState>,
    /// Applied migrations this binary does not know: a newer authctl migrated the database.
    pub unknown: Vec<String>,
}

impl Schema {
    pub fn pending(&self) -> usize {
        self.known.iter().filter(|m| !m.applied).count()
    }
}

/// Reads which migrations are applied, straight from `seaql_migrations`, so a database migrated
/// by a newer authctl is reported rather than failing the read.
pub async fn schema(db: &DatabaseConnection) -> anyhow::Result<Schema> {
    let manager = migration::SchemaManager::new(db);
    let applied: Vec<String> = if manager
        .has_table("seaql_migrations")
        .await
        .context("while reading the migration status")?
    {
        let backend = db.get_database_backend();
        db.query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations",
        ))
        .await
        .context("while reading the migration status")?
        .into_iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect()
    } else {
        Vec::new()
    };
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok(Schema {
        known: names
            .iter()
            .map(|name| MigrationState {
                applied: applied.contains(name),
                name: name.clone(),
            })
            .collect(),
        unknown: applied
            .into_iter()
            .filter(|name| !names.contains(name))
            .collect(),
    })
}

/// The sentence for a database a newer authctl migrated.
fn newer(unknown: &[String]) -> String {
    format!(
        "this database was migrated by a newer authctl (it has {} migration(s) this one does not know, the latest {}); use that version or a later one",
        unknown.len(),
        unknown.iter().max().map(String::as_str).unwrap_or_default()
    )
}

/// Refuses to migrate a database a newer authctl migrated.
pub async fn ensure_not_newer(db: &DatabaseConnection) -> anyhow::Result<()> {
    let schema = schema(db).await?;
    if !schema.unknown.is_empty() {
        anyhow::bail!("{}", newer(&schema.unknown));
    }
    Ok(())
}

/// Fails with an actionable message when the schema is behind this binary, or ahead of it.
pub async fn ensure_migrated(db: &DatabaseConnection) -> anyhow::Result<()> {
    let schema = schema(db)
        .await
        .context("while checking the database schema")?;
    if !schema.unknown.is_empty() {
        anyhow::bail!("{}", newer(&schema.unknown));
    }
    if schema.pending() > 0 {
        anyhow::bail!(
            "the database schema is {} migration(s) behind this authctl; run `authctl migrate up` (or start `authctl serve`, which migrates)",
            schema.pending()
        );
    }
    Ok(())
}
