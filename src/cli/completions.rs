//! `authctl completions SHELL` and `authctl completions --dir DIR`.
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::{Generator, Shell};

use super::Cli;

#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum, conflicts_with = "dir")]
    pub shell: Option<Shell>,
    /// Write the completions of every supported shell into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Every shell whose completions are committed under `completions/`.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

/// The completion script for `shell`, as committed.
pub fn render(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "authctl", &mut out);
    out
}

/// The file name clap_complete gives each shell's script.
pub fn file_name(shell: Shell) -> String {
    shell.file_name("authctl")
}

fn write_all(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    for shell in SHELLS {
        let path = dir.join(file_name(shell));
        std::fs::write(&path, render(shell))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

impl CompletionsArgs {
    pub fn run(self) -> anyhow::Result<()> {
        match (self.shell, self.dir) {
            (Some(shell), None) => super::output::write(&render(shell)),
            (None, Some(dir)) => write_all(&dir),
            _ => anyhow::bail!("give a shell (bash, zsh, fish, powershell, elvish) or --dir DIR"),
        }
    }
}
