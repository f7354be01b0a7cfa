//! One module per subcommand; each is a thin composition of the library stages.

mod apply;
mod graph;
mod lab;
mod plan;
mod render;
mod schema;
mod status;
mod validate;

use anyhow::Context as _;
use infra_topology::{LoadError, Loaded};

use crate::cli::{Cli, Command};
use crate::output::{Hinted, Style};

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1, the reason already printed (e.g. an invalid topology).
    Failed,
    /// Exit 2: `plan --detailed-exitcode` found changes.
    ChangesPresent,
    /// Another documented code (3 partial apply, 130 interrupted).
    Code(u8),
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::ChangesPresent => 2,
            Outcome::Code(code) => code,
        }
    }
}

/// Runs the chosen subcommand.
pub fn run(cli: &Cli, style: Style) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Validate => validate::run(cli, style),
        Command::Render(args) => render::run(cli, args, style),
        Command::Graph(args) => graph::run(cli, args, style),
        Command::Schema => schema::run(),
        Command::Lab(command) => lab::run(cli, command, style),
        Command::Plan(args) => plan::run(cli, args, style),
        Command::Status(args) => status::run(cli, args, style),
        Command::Apply(args) => apply::run(cli, args, style),
        Command::Destroy(args) => apply::destroy(cli, args, style),
        Command::ForceUnlock(args) => apply::force_unlock(cli, args, style),
    }
}

/// The process environment, the only place secrets are read from (`${env:NAME}`).
fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// For commands that never use a secret's value (`graph`): an unset variable stands in as a
/// placeholder instead of being an error.
fn environment_or_placeholder(name: &str) -> Option<String> {
    Some(environment(name).unwrap_or_else(|| "unresolved".to_owned()))
}

/// Whether a command needs the secrets' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretValues {
    /// Unset variables are errors (validate, render, and everything that touches hosts).
    Required,
    /// Unset variables are fine (graph).
    NotNeeded,
}

/// Loads the topology, printing warnings. `Ok(None)` when it is invalid (findings printed).
fn load(cli: &Cli, style: Style) -> anyhow::Result<Option<Loaded>> {
    load_with(cli, style, SecretValues::Required)
}

pub(crate) fn load_with(
    cli: &Cli,
    style: Style,
    secrets: SecretValues,
) -> anyhow::Result<Option<Loaded>> {
    let lookup: infra_topology::EnvLookup<'_> = match secrets {
        SecretValues::Required => &environment,
        SecretValues::NotNeeded => &environment_or_placeholder,
    };
    match infra_topology::load(&cli.global.file, lookup) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprint!(
                    "{}",
                    style.diagnostics(&loaded.warnings.render(&loaded.source))
                );
            }
            Ok(Some(loaded))
        }
        Err(LoadError::Invalid {
            source_file,
            diagnostics,
        }) => {
            eprint!("{}", style.diagnostics(&diagnostics.render(&source_file)));
            let errors = diagnostics.error_count();
            let warnings = diagnostics.warning_count();
            let mut summary = format!(
                "error: `{}` is not valid: {errors} error{}",
                source_file.path().display(),
                if errors == 1 { "" } else { "s" }
            );
            if warnings > 0 {
                summary.push_str(&format!(
                    ", {warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                ));
            }
            eprintln!("{}", style.diagnostics(&summary).trim_end());
            Ok(None)
        }
        Err(LoadError::Read(source)) => {
            let path = cli.global.file.display().to_string();
            let hint = if source.kind() == std::io::ErrorKind::NotFound {
                format!("create `{path}` (see examples/scale-up/infra.yaml) or pass `-f PATH`")
            } else {
                "check the file's permissions".to_owned()
            };
            Err(anyhow::Error::new(source)).context(Hinted::new(
                format!("cannot read the topology `{path}`"),
                hint,
            ))
        }
    }
}

/// Loads the templates in force for `topology` (built-in, or the user's overrides).
fn templates(topology: &infra_topology::Topology) -> anyhow::Result<infra_plan::Templates> {
    infra_plan::Templates::load(topology.templates.as_deref()).context("cannot load the templates")
}
