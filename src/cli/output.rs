//! How the CLI talks back: comfy-table for people, stable JSON for scripts, and confirmation of
//! destructive commands.
use std::io::{IsTerminal, Write};

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

/// The reader of stdout went away (`authctl users list | head -1`): the command ends quietly,
/// with exit code 0, instead of panicking on the broken pipe.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `bytes` to stdout: the only way the CLI prints its answer.
pub fn write(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}

/// Prints one line of prose (the answer of a command that changed something).
pub fn say(line: &str) -> anyhow::Result<()> {
    write(format!("{line}\n").as_bytes())
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    say(&serde_json::to_string_pretty(value)?)
}

/// Prints a table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for row in rows {
        table.add_row(row);
    }
    say(&table.to_string())
}

/// Prints `value` as JSON, or `rows` as a two-column key/value table.
pub fn record<T: Serialize>(
    output: Output,
    value: &T,
    rows: Vec<(&str, String)>,
) -> anyhow::Result<()> {
    match output {
        Output::Json => json(value),
        Output::Table => table(
            &["field", "value"],
            rows.into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect(),
        ),
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
