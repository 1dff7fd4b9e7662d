//! `--config FILE`: the file's section for the command becomes command-line arguments,
//! inserted after the command's name before the real parse, for every flag the command line
//! does not give itself (clap's `value_source`). Values are then checked by clap exactly as
//! typed flags are. The file's format lives in [`aiconform::config`].

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, Command, CommandFactory};

use aiconform::config::{self, ConfigDocument, Flag, FlagKind, Section};

/// `--config` of snapshot, recipe, bundle and deploy (run and validate have theirs in
/// `ExecArgs`, which also reads the run configuration).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArg {
    /// Configuration file (`kind: AiconformConfig`) whose section for this command holds its
    /// flags by long name in camelCase, e.g. `recipe: {service: eks, accelerator: h100}`;
    /// flags given on the command line win
    #[arg(long, value_name = "FILE")]
    #[allow(dead_code)] // read from the raw arguments by `expand`
    pub config: Option<PathBuf>,
}

/// `argv` with the arguments from the `--config` file's section for the command, or as it
/// is when there is no `--config`, the command takes none, or the file is a run
/// configuration for `run`/`validate`. Argument errors are left to the real parse.
pub fn expand(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(name) = argv.get(1).and_then(|a| a.to_str()).map(str::to_string) else {
        return Ok(argv);
    };
    let Some(section) = Section::from_command(&name) else {
        return Ok(argv);
    };
    // Required flags may come from the file, so this first parse requires none.
    let cli = super::Cli::command().mut_subcommand(&name, |s| s.mut_args(|a| a.required(false)));
    let Ok(matches) = cli.clone().try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    let Some((_, given)) = matches.subcommand() else {
        return Ok(argv);
    };
    if given.subcommand().is_some() {
        return Ok(argv);
    }
    let Some(path) = given.try_get_one::<PathBuf>("config").ok().flatten() else {
        return Ok(argv);
    };
    let file = match config::load(path)? {
        ConfigDocument::Config(file) => file,
        ConfigDocument::RunConfig if matches!(section, Section::Run | Section::Validate) => {
            return Ok(argv);
        }
        ConfigDocument::RunConfig => bail!(
            "{} has no `kind: {}`, so it is read as a run configuration, which only `run` and `validate` take; start it with `apiVersion: {}` and `kind: {}` and put the flags of `aiconform {name}` under `{name}:`",
            path.display(),
            config::KIND,
            config::API_VERSION,
            config::KIND
        ),
    };
    let Some(command) = cli.find_subcommand(&name) else {
        return Ok(argv);
    };
    let on_command_line: Vec<String> = command
        .get_arguments()
        .filter(|a| given.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let extra = file.arguments(section, &flags_of(command), |long| {
        on_command_line.iter().any(|l| l == long)
    })?;
    let mut out = argv;
    out.splice(2..2, extra.into_iter().map(OsString::from));
    Ok(out)
}

/// The long flags of `command` a section may set: visible ones, without --help and
/// --config.
pub fn flags_of(command: &Command) -> Vec<Flag> {
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let long = a.get_long()?;
            if matches!(long, "help" | "version" | "config") {
                return None;
            }
            let kind = match a.get_action() {
                ArgAction::SetTrue | ArgAction::SetFalse => FlagKind::Switch,
                ArgAction::Count => FlagKind::Count,
                ArgAction::Append => FlagKind::Multiple,
                ArgAction::Set => FlagKind::Single,
                _ => return None,
            };
            Some(Flag {
                long: long.to_string(),
                kind,
                help: a.get_help().map(|h| h.to_string()),
                values: a
                    .get_possible_values()
                    .iter()
                    .filter(|v| !v.is_hide_set())
                    .map(|v| v.get_name().to_string())
                    .collect(),
            })
        })
        .collect()
}

/// The JSON Schema of the file, from the commands' flags.
#[cfg(test)]
pub fn schema() -> serde_json::Value {
    let cli = super::Cli::command();
    let commands: Vec<(Section, Vec<Flag>)> = Section::ALL
        .iter()
        .filter_map(|s| cli.find_subcommand(s.name()).map(|c| (*s, flags_of(c))))
        .collect();
    config::schema(&commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published schema, docs/aiconform-config.schema.json, is the one the commands'
    /// flags give. Regenerate it with `AICONFORM_UPDATE_SCHEMA=1 cargo test --bin aiconform`.
    #[test]
    fn published_schema_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/aiconform-config.schema.json"
        );
        let text = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var("AICONFORM_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(path, &text).unwrap();
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == text,
            "{path} is out of date; regenerate it with AICONFORM_UPDATE_SCHEMA=1 cargo test --bin aiconform published_schema"
        );
    }

    #[test]
    fn every_command_has_config_and_its_sections_flags() {
        let cli = super::super::Cli::command();
        for s in Section::ALL {
            let c = cli.find_subcommand(s.name()).unwrap();
            assert!(
                c.get_arguments().any(|a| a.get_long() == Some("config")),
                "{} has no --config",
                s.name()
            );
            assert!(!flags_of(c).is_empty());
        }
        let recipe = flags_of(cli.find_subcommand("recipe").unwrap());
        let set = recipe.iter().find(|f| f.long == "set").unwrap();
        assert_eq!(set.kind, FlagKind::Multiple);
        let run = flags_of(cli.find_subcommand("run").unwrap());
        let keep = run.iter().find(|f| f.long == "keep-going").unwrap();
        assert_eq!(keep.kind, FlagKind::Switch);
        assert!(run.iter().any(|f| f.key() == "reportDir"));
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn section_is_inserted_after_the_command_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "apiVersion: aiconform.dev/v1alpha1\nkind: AiconformConfig\nrecipe:\n  service: eks\n  accelerator: h100\n  set: [\"a:b=1\"]\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let out = expand(os(&[
            "aiconform",
            "recipe",
            "--config",
            p,
            "--gpu",
            "gb200",
        ]))
        .unwrap();
        assert_eq!(
            out,
            os(&[
                "aiconform",
                "recipe",
                "--service=eks",
                "--set=a:b=1",
                "--config",
                p,
                "--gpu",
                "gb200"
            ])
        );
        // A nested subcommand, or no --config: untouched.
        let argv = os(&["aiconform", "recipe", "list"]);
        assert_eq!(expand(argv.clone()).unwrap(), argv);
        let argv = os(&["aiconform", "query", "--service", "eks"]);
        assert_eq!(expand(argv.clone()).unwrap(), argv);
    }
}
