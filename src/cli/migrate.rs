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
            let conn = db::connect(&config.database_url).await?;
            crate::crypto::ensure_key(&config)?;
            conn
        } else {
            db::connect_existing(&config.database_url).await?
        };
        if up {
            let before = db::status(&conn)
                .await?
                .iter()
                .filter(|m| !m.applied)
                .count();
            db::migrate(&conn, &config.database_url).await?;
            if global.output != Output::Json {
                eprintln!("{before} migration(s) applied; the schema is current.");
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
