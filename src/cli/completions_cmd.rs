//! `aiconform completions SHELL`: shell completion scripts generated from the clap model,
//! so every subcommand, flag and alias (`--gpu`) completes.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args as ClapArgs, CommandFactory};
use clap_complete::Shell;

const AFTER_HELP: &str = "\
Install:
  bash:        aiconform completions bash > ~/.local/share/bash-completion/completions/aiconform
  zsh:         aiconform completions zsh > \"${fpath[1]}/_aiconform\"   (then restart zsh)
  fish:        aiconform completions fish > ~/.config/fish/completions/aiconform.fish
  powershell:  aiconform completions powershell | Out-String | Invoke-Expression   (add to $PROFILE)";

#[derive(Debug, ClapArgs)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The shell to generate completions for
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    // Into memory first: clap_complete panics on a write error (e.g. `| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "aiconform", &mut script);
    aiconform::output::write_target("-", &script)?;
    Ok(ExitCode::SUCCESS)
}
