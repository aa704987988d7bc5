//! How the CLI talks back: comfy-table for people, stable JSON for scripts, and confirmation of
//! destructive commands.
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// A table for people.
    #[default]
    Table,
    /// JSON for scripts (stable field names, camelCase).
    Json,
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints `value` as JSON, or `rows` as a two-column key/value table.
pub fn record<T: Serialize>(
    output: Output,
    value: &T,
    rows: Vec<(&str, String)>,
) -> anyhow::Result<()> {
    match output {
        Output::Json => json(value),
        Output::Table => {
            table(
                &["field", "value"],
                rows.into_iter()
                    .map(|(k, v)| vec![k.to_owned(), v])
                    .collect(),
            );
            Ok(())
        }
    }
}

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "-".into())
}

/// Asks before a destructive action. `--yes` skips the question; without a terminal and without
/// `--yes` the command refuses.
pub fn confirm(prompt: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        anyhow::bail!(
            "refusing to continue without confirmation: stdin is not a terminal, so pass --yes to {prompt_lc}",
            prompt_lc = prompt.trim_end_matches('?').to_lowercase()
        );
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(false)
        .interact()?;
    if !ok {
        anyhow::bail!("cancelled; nothing was changed");
    }
    Ok(())
}
