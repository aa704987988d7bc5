//! `authctl migrate [status|up]`
use clap::{Args, Subcommand};

use crate::config::Overrides;
use crate::db;

use super::GlobalArgs;
use super::output::Output;
use super::shapes::Migration;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
}

#[derive(Debug, Subcommand, Clone, Copy)]
pub enum MigrateAction {
    /// Show which migrations are applied (the default).
    Status,
    /// Apply every pending migration.
    Up,
}

impl MigrateArgs {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<()> {
        let config = global.load_config(Overrides::default())?;
        let up = matches!(self.action, Some(MigrateAction::Up));
        // Only `migrate up` (and `serve`) create a database and the server key.
        let conn = if up {
            db::connect(&config.database_url).await?
        } else {
            db::connect_existing(&config.database_url).await?
        };
        if up {
            let before = db::schema(&conn).await?;
            let pending = before.known.iter().filter(|m| !m.applied).count();
            let fresh = pending == before.known.len() && before.unknown.is_empty();
            db::migrate(&conn, &config.database_url).await?;
            // The key file is made with a new database only: for one that holds data already, a
            // new key would leave everything sealed with the old one unreadable.
            if fresh {
                crate::crypto::ensure_key(&config)?;
            }
            if global.output != Output::Json {
                eprintln!("{pending} migration(s) applied; the schema is current.");
            }
        }
        let schema = db::schema(&conn).await?;
        if !schema.unknown.is_empty() {
            eprintln!(
                "warning: this database was migrated by a newer authctl: {} are applied and unknown here; use that version or a later one",
                schema.unknown.join(", ")
            );
        }
        let states: Vec<Migration> = schema
            .known
            .into_iter()
            .map(|m| Migration {
                name: m.name,
                applied: m.applied,
            })
            .collect();
        global.printer().list(&states)
    }
}
