//! `authctl completions SHELL` and `authctl completions --dir DIR`.
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::{Generator, Shell};

use super::Cli;

/// Where each shell looks for completions, and how to install the file (printed on stderr).
pub fn install_hint(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => {
            "bash: save as ~/.local/share/bash-completion/completions/authctl (or /usr/share/bash-completion/completions/authctl for everyone): authctl completions bash > ~/.local/share/bash-completion/completions/authctl"
        }
        Shell::Zsh => {
            "zsh: save as _authctl in a folder on $fpath, e.g. ~/.zfunc (add `fpath=(~/.zfunc $fpath)` before `compinit` in ~/.zshrc), or /usr/local/share/zsh/site-functions/_authctl for everyone"
        }
        Shell::Fish => {
            "fish: save as ~/.config/fish/completions/authctl.fish: authctl completions fish > ~/.config/fish/completions/authctl.fish"
        }
        Shell::PowerShell => {
            "PowerShell: save as authctl.ps1 and dot-source it from $PROFILE: authctl completions powershell >> $PROFILE"
        }
        Shell::Elvish => {
            "elvish: save as ~/.config/elvish/lib/authctl.elv and add `use authctl` to ~/.config/elvish/rc.elv"
        }
        _ => "see your shell's documentation for where completion scripts go",
    }
}

#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
/// Print the completion script of one shell on stdout (where to save it goes to stderr), or
/// write every shell's file into an existing folder.
///
/// Example: authctl completions bash > ~/.local/share/bash-completion/completions/authctl
pub struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum, conflicts_with = "dir")]
    pub shell: Option<Shell>,
    /// Write the completions of every supported shell into this folder (it must exist).
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
    if !dir.is_dir() {
        anyhow::bail!(
            "the folder {} does not exist; create it first (nothing was written)",
            dir.display()
        );
    }
    for shell in SHELLS {
        let path = dir.join(file_name(shell));
        std::fs::write(&path, render(shell))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}  ({})", path.display(), install_hint(shell));
    }
    Ok(())
}

impl CompletionsArgs {
    pub fn run(self) -> anyhow::Result<()> {
        match (self.shell, self.dir) {
            (Some(shell), None) => {
                super::output::write(&render(shell))?;
                eprintln!("to install: {}", install_hint(shell));
                Ok(())
            }
            (None, Some(dir)) => write_all(&dir),
            _ => anyhow::bail!("give a shell (bash, zsh, fish, powershell, elvish) or --dir DIR"),
        }
    }
}
