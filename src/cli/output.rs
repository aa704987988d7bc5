//! How the CLI talks back: plain tables for people (and `awk`), stable JSON for scripts (the
//! shapes in `shapes.rs`, documented in docs/cli-json.md), and confirmation of destructive
//! commands. stdout holds the answer and nothing else; notes go to stderr.
use std::io::{IsTerminal, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// A table for people: one line per row, columns apart by spaces.
    #[default]
    Table,
    /// The table with its extra columns (user agents, expiry, ...).
    Wide,
    /// JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present).
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

/// A table column. Fixed columns (ids, addresses, times, counts) never wrap or shorten, so a
/// value can be pasted into the next command; text columns (names, devices, details) come last
/// and shorten with an ellipsis when a terminal is too narrow.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub text: bool,
    /// Only with `-o wide`.
    pub wide: bool,
}

impl Column {
    pub const fn fixed(name: &'static str) -> Self {
        Self {
            name,
            text: false,
            wide: false,
        }
    }

    pub const fn text(name: &'static str) -> Self {
        Self {
            name,
            text: true,
            wide: false,
        }
    }

    pub const fn wide(self) -> Self {
        Self { wide: true, ..self }
    }
}

/// A noun the CLI lists: its JSON shape and its table row.
pub trait Listed: Serialize {
    fn columns() -> Vec<Column>;
    /// One cell per column, in the order of `columns()`.
    fn cells(&self) -> Vec<String>;
}

/// Where and how one command prints: the output format, headers or not, the terminal's width.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub output: Output,
    pub headers: bool,
    /// The terminal's width when stdout is one that reports a width; else no limit.
    pub width: Option<usize>,
}

impl Printer {
    pub fn new(output: Output, headers: bool) -> Self {
        Self {
            output,
            headers,
            width: terminal_width(),
        }
    }

    pub fn is_json(&self) -> bool {
        self.output == Output::Json
    }

    /// A list: a JSON array, or a table.
    pub fn list<T: Listed>(&self, items: &[T]) -> anyhow::Result<()> {
        if self.is_json() {
            return json(items);
        }
        let wide = self.output == Output::Wide;
        let columns = T::columns();
        let keep: Vec<bool> = columns.iter().map(|c| wide || !c.wide).collect();
        let shown: Vec<Column> = columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| *c)
            .collect();
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| {
                item.cells()
                    .into_iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(c, _)| c)
                    .collect()
            })
            .collect();
        write(render(&shown, &rows, self.headers, self.width).as_bytes())
    }

    /// One record: a JSON object, or `field  value` lines.
    pub fn show<T: Serialize>(&self, value: &T, fields: Vec<(&str, String)>) -> anyhow::Result<()> {
        if self.is_json() {
            return json(value);
        }
        let key_width = fields.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in fields {
            let value = if value.is_empty() { "-".into() } else { value };
            for (i, line) in value.lines().enumerate() {
                let label = if i == 0 { key } else { "" };
                let pad = key_width - label.width();
                out.push_str(&format!("{label}{}  {}\n", " ".repeat(pad), clean(line)));
            }
        }
        write(out.as_bytes())
    }

    /// The answer of a command that changed something: the "what changed" JSON, or a sentence.
    pub fn changed(&self, change: &super::shapes::Change, sentence: &str) -> anyhow::Result<()> {
        if self.is_json() {
            json(change)
        } else {
            say(sentence)
        }
    }
}

/// The width of the terminal stdout is, when it is one and reports a width (a terminal that
/// reports 0 columns counts as no limit, so columns never shrink to nothing).
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    #[cfg(unix)]
    let reported = rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|w| *w > 0);
    #[cfg(not(unix))]
    let reported: Option<usize> = None;
    reported.or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|w| *w > 0)
    })
}

/// Columns are this many spaces apart.
const GAP: usize = 2;
/// A text column never shrinks below this.
const MIN_TEXT: usize = 8;

/// Control characters (terminal escapes in a user agent or a name) print as `?`, so a row stays
/// one line and cannot repaint the operator's terminal.
fn clean(cell: &str) -> String {
    cell.chars()
        .map(|c| {
            if c.is_control() || is_format(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Invisible characters that reorder or hide text (bidirectional controls, zero-width
/// characters, the byte-order mark): in a table they could make one row read as another.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `cell` cut to `width` columns, with an ellipsis when something was cut.
fn truncate(cell: &str, width: usize) -> String {
    if cell.width() <= width {
        return cell.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in cell.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Lays out a table: upper-case headers (unless `headers` is off), columns apart by two spaces,
/// `-` for an empty cell, no trailing spaces. Within `width`, text columns shrink (widest first);
/// fixed columns never do, so a line may run past a narrow terminal rather than break an id.
pub fn render(
    columns: &[Column],
    rows: &[Vec<String>],
    headers: bool,
    width: Option<usize>,
) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| if c.is_empty() { "-".into() } else { clean(c) })
                .collect()
        })
        .collect();
    let names: Vec<String> = columns
        .iter()
        .map(|c| c.name.to_uppercase().replace(' ', "_"))
        .collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let head = if headers { names[i].width() } else { 0 };
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.width()))
                .fold(head, usize::max)
        })
        .collect();
    if let Some(limit) = width {
        let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
        while total(&widths) > limit {
            let widest = (0..columns.len())
                .filter(|i| {
                    // A text column keeps at least MIN_TEXT columns, and its whole header.
                    let head = if headers { names[*i].width() } else { 0 };
                    columns[*i].text && widths[*i] > MIN_TEXT.max(head)
                })
                .max_by_key(|i| widths[*i]);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = if columns[i].text {
                truncate(cell, widths[i])
            } else {
                cell.clone()
            };
            text.push_str(&cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(widths[i].saturating_sub(cell.width()) + GAP));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    if headers {
        line(&names);
    }
    for row in &rows {
        line(row);
    }
    out
}

/// A time as RFC 3339 in UTC, without spaces (one `awk` field): `2026-12-03T09:30:00Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "-".into())
}

/// A duration for a sentence: `30 days`, `1 hour`, `90 seconds`.
pub fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        0 => (0, "second"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `-` for nothing.
pub fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

/// Asks before a destructive action. `--yes` skips the question; without a terminal and without
/// `--yes` the command refuses.
pub fn confirm(prompt: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let missing = match (
        std::io::stdin().is_terminal(),
        std::io::stderr().is_terminal(),
    ) {
        (true, true) => None,
        (false, _) => Some("stdin is not a terminal"),
        (true, false) => Some("stderr (where the question goes) is not a terminal"),
    };
    if let Some(missing) = missing {
        anyhow::bail!(
            "refusing to continue without confirmation: {missing}, so pass --yes to {prompt_lc}",
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

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [
        Column::fixed("id"),
        Column::fixed("email"),
        Column::text("device name"),
    ];

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "0193b3f0-aaaa-7bbb-8ccc-123456789abc".into(),
                "alice@example.com".into(),
                "Firefox on Linux, the long way round".into(),
            ],
            vec!["b".into(), "".into(), "x\u{1b}[2J".into()],
        ]
    }

    #[test]
    fn fixed_columns_never_shrink_and_text_gets_an_ellipsis() {
        let out = render(&COLUMNS, &rows(), true, Some(70));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID                                    EMAIL              DEVICE_NAME"
        );
        assert!(lines[1].starts_with("0193b3f0-aaaa-7bbb-8ccc-123456789abc  alice@example.com  "));
        assert!(lines[1].ends_with('…'), "{}", lines[1]);
        assert!(lines[1].width() <= 70, "{}", lines[1]);
        // An empty cell is `-`, an escape sequence cannot reach the terminal.
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["b", "-", "x?[2J"]
        );
    }

    #[test]
    fn a_narrow_terminal_keeps_ids_whole() {
        let out = render(&COLUMNS, &rows(), false, Some(20));
        let first = out.lines().next().expect("a line");
        assert!(first.starts_with("0193b3f0-aaaa-7bbb-8ccc-123456789abc  alice@example.com  "));
        assert_eq!(first.split("  ").last().map(|s| s.width()), Some(MIN_TEXT));
    }

    #[test]
    fn invisible_reordering_characters_are_shown_as_question_marks() {
        let rows = vec![vec![
            "a".into(),
            "b".into(),
            "evil\u{202E}gnp.exe\u{200B}\u{FEFF}\u{2066}x".into(),
        ]];
        let out = render(&COLUMNS, &rows, false, None);
        assert_eq!(out, "a  b  evil?gnp.exe???x\n");
    }

    #[test]
    fn headers_are_never_cut() {
        let columns = [Column::fixed("id"), Column::text("a very long header")];
        let rows = vec![vec!["x".repeat(30), "y".repeat(40)]];
        let out = render(&columns, &rows, true, Some(20));
        assert!(
            out.starts_with(&format!("ID{}A_VERY_LONG_HEADER\n", " ".repeat(30))),
            "{out}"
        );
    }

    #[test]
    fn durations_read_as_words() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(duration(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(duration(Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn no_limit_prints_everything() {
        let out = render(&COLUMNS, &rows(), false, None);
        assert!(out.contains("Firefox on Linux, the long way round\n"));
        assert!(!out.contains("ID"));
    }
}
