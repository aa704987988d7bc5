//! `authctl status`: which configuration, database, server key and public URL this command
//! would use, and whether the database is reachable and current. Exit code 1 when it is not.
use clap::Args;

use crate::config::{MailTransportKind, Overrides};
use crate::db;
use crate::service::service_state;

use super::GlobalArgs;
use super::output::time;
use super::shapes::{Status, StatusDatabase, StatusKey};

#[derive(Debug, Args)]
pub struct StatusArgs {}

impl StatusArgs {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<()> {
        let config = global.load_config(Overrides::default())?;
        let url = &config.database_url;
        let path = url.sqlite_path();
        let mut database = StatusDatabase {
            url: url.redacted(),
            backend: if url.is_postgres() {
                "postgres"
            } else {
                "sqlite"
            },
            file: path.as_ref().map(|p| {
                std::path::absolute(p)
                    .unwrap_or(p.clone())
                    .display()
                    .to_string()
            }),
            reachable: false,
            schema: "unknown",
            pending_migrations: None,
            error: None,
        };
        let mut service = None;
        match db::connect_existing(url).await {
            Ok(conn) => {
                database.reachable = true;
                match db::schema(&conn).await {
                    Ok(schema) => {
                        database.pending_migrations = Some(schema.pending() as u64);
                        database.schema = if !schema.unknown.is_empty() {
                            "newer"
                        } else if schema.pending() > 0 {
                            "behind"
                        } else {
                            "current"
                        };
                        if database.schema == "current" {
                            service = service_state::public_url(&conn).await.ok().flatten();
                        }
                    }
                    Err(e) => database.error = Some(format!("{e:#}")),
                }
                let _ = conn.close().await;
            }
            Err(e) => database.error = Some(format!("{e:#}")),
        }
        let key = match &config.secret_key {
            Some(_) => StatusKey {
                source: "secret_key",
                file: None,
                exists: true,
            },
            None => StatusKey {
                source: "file",
                file: Some(
                    std::path::absolute(&config.secret_key_file)
                        .unwrap_or(config.secret_key_file.clone())
                        .display()
                        .to_string(),
                ),
                exists: config.secret_key_file.is_file(),
            },
        };
        // What commands here would use: serve's recorded URL unless public_url is set here.
        let public_url = match &service {
            Some((recorded, _)) if !config.public_url_set => recorded.clone(),
            _ => config.public_url.to_string(),
        };
        let status = Status {
            config_file: config.file.as_ref().map(|p| {
                std::path::absolute(p)
                    .unwrap_or(p.clone())
                    .display()
                    .to_string()
            }),
            state_dir: config.state_dir.display().to_string(),
            public_url,
            service_public_url: service.as_ref().map(|(u, _)| u.clone()),
            service_started_at: service.as_ref().map(|(_, at)| *at),
            mail_transport: match config.mail.transport {
                MailTransportKind::Log => "log",
                MailTransportKind::File => "file",
                MailTransportKind::Smtp => "smtp",
            }
            .into(),
            database,
            server_key: key,
        };
        let d = &status.database;
        let fields = vec![
            (
                "config file",
                status
                    .config_file
                    .clone()
                    .unwrap_or_else(|| "none (defaults and AUTHCTL_* variables)".into()),
            ),
            ("state dir", status.state_dir.clone()),
            ("database", d.url.clone()),
            ("reachable", if d.reachable { "yes" } else { "no" }.into()),
            (
                "schema",
                match d.pending_migrations {
                    Some(n) if d.schema == "behind" => format!("behind ({n} pending)"),
                    _ => d.schema.into(),
                },
            ),
            (
                "server key",
                match (&status.server_key.file, status.server_key.exists) {
                    (None, _) => "secret_key".into(),
                    (Some(f), true) => f.clone(),
                    (Some(f), false) => format!("{f} (missing)"),
                },
            ),
            ("public url", status.public_url.clone()),
            (
                "service url",
                match (&status.service_public_url, status.service_started_at) {
                    (Some(u), Some(at)) => format!("{u} (serve started {})", time(at)),
                    _ => "- (serve has not started on this database)".into(),
                },
            ),
            ("mail transport", status.mail_transport.clone()),
        ];
        global.printer().show(&status, fields)?;
        match (&status.database.error, status.database.schema) {
            (Some(e), _) => Err(anyhow::anyhow!("{e}")),
            (None, "current") => Ok(()),
            (None, "newer") => anyhow::bail!(
                "this database was migrated by a newer authctl; use that version or a later one"
            ),
            (None, _) => anyhow::bail!(
                "the database schema is behind this authctl; run `authctl migrate up`"
            ),
        }
    }
}
