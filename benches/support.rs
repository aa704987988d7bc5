//! Set-up shared by the benchmarks (each includes this file): a migrated database, mail to
//! files, the server key in the temp folder, and an `AppContext` on the wall clock.
use std::path::Path;

use authctl::config::{Config, DatabaseUrl, MailTransportKind};
use authctl::context::AppContext;

/// The context on `url` (a SQLite file or PostgreSQL), with `tweak` applied to the config.
pub async fn context(url: String, dir: &Path, tweak: impl FnOnce(&mut Config)) -> AppContext {
    let mut config = Config {
        database_url: DatabaseUrl::new(url),
        ..Config::default()
    };
    config.mail.transport = MailTransportKind::File;
    config.mail.dir = dir.join("mail");
    config.secret_key_file = dir.join("authctl.key");
    tweak(&mut config);
    let db = authctl::db::connect(&config.database_url)
        .await
        .expect("connect");
    authctl::db::migrate(&db, &config.database_url)
        .await
        .expect("migrate");
    AppContext::new(config, db).expect("context")
}

/// A SQLite file in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())
}
