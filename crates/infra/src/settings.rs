//! Settings: resolved once from the command line and the environment. This is the only place
//! that reads the process environment; everything else gets what it needs from here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::{Cli, ColorChoice};
use crate::output::Style;

/// The process environment, read once.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    variables: BTreeMap<String, String>,
}

impl Environment {
    /// Reads the process environment (names and values that are not UTF-8 are skipped).
    pub fn capture() -> Environment {
        Environment {
            variables: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// A variable's value, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// A variable's value when set and not empty.
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// Who runs `infra`, for the hosts' locks.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: String,
    /// This machine's name.
    pub controller: String,
    /// This process.
    pub pid: u32,
    /// The CI run, when one is detected.
    pub ci: Option<String>,
}

/// Everything resolved from the command line and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The topology file.
    pub file: PathBuf,
    /// Colours.
    pub style: Style,
    /// The environment (for `${env:NAME}` secrets).
    pub environment: Environment,
    /// Who runs this.
    pub identity: Identity,
    /// `$XDG_RUNTIME_DIR`, for the SSH control folder.
    pub runtime_dir: Option<PathBuf>,
    /// The user's `~/.ssh/config`, when it exists.
    pub user_ssh_config: Option<PathBuf>,
    /// What stdout carries: text, one JSON document, or JSON events.
    pub output: Output,
    /// `-v`: show each script sent to a host (its data left out).
    pub verbose: bool,
}

/// What stdout carries, and so how a failure is reported there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text for a person (errors go to stderr only).
    Text,
    /// One JSON document (`plan`, `validate`, `status`, `show`, `state` with `--json`): on a
    /// failure, `{"diagnostics": [...]}`.
    Document,
    /// One JSON object per line (`apply` and `destroy` with `--json`): on a failure, a
    /// `{"type": "diagnostic", ...}` line.
    Events,
}

impl Output {
    /// The output mode `command` asked for.
    fn of(command: &crate::cli::Command) -> Output {
        use crate::cli::{Command, StateCommand};
        let document = |json: bool| if json { Output::Document } else { Output::Text };
        match command {
            Command::Validate(args) => document(args.json),
            Command::Plan(args) => document(args.json),
            Command::Status(args) => document(args.json),
            Command::Show(args) => document(args.json),
            Command::State(StateCommand::List(args)) => document(args.json),
            Command::State(StateCommand::Show(args)) => document(args.state.json),
            Command::Apply(args) if args.change.json => Output::Events,
            Command::Destroy(args) if args.change.json => Output::Events,
            Command::Apply(_)
            | Command::Destroy(_)
            | Command::State(StateCommand::Rm(_))
            | Command::Render(_)
            | Command::Graph(_)
            | Command::Schema
            | Command::ForceUnlock(_)
            | Command::Lab(_)
            | Command::Completions(_)
            | Command::Man => Output::Text,
        }
    }
}

impl Settings {
    /// Resolves the settings of this run.
    pub fn resolve(cli: &Cli, environment: Environment) -> Settings {
        let choice = if cli.global.no_color {
            ColorChoice::Never
        } else {
            cli.global.color
        };
        let colour_allowed =
            environment.non_empty("NO_COLOR").is_none() && environment.get("TERM") != Some("dumb");
        let style = Style::new(choice, colour_allowed);
        let home = environment.non_empty("HOME").map(PathBuf::from);
        let user_ssh_config = home
            .as_ref()
            .map(|h| h.join(".ssh/config"))
            .filter(|p| p.is_file());
        let identity = Identity {
            user: environment
                .non_empty("USER")
                .or_else(|| environment.non_empty("LOGNAME"))
                .unwrap_or("unknown")
                .to_owned(),
            controller: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            pid: std::process::id(),
            ci: ci_run(&environment),
        };
        Settings {
            output: Output::of(&cli.command),
            verbose: cli.global.verbose,
            file: cli.global.file.clone(),
            style,
            runtime_dir: environment.non_empty("XDG_RUNTIME_DIR").map(PathBuf::from),
            user_ssh_config,
            identity,
            environment,
        }
    }
}

/// The CI run `infra` runs in: GitHub Actions, GitLab CI, or any CI that sets `CI`.
fn ci_run(environment: &Environment) -> Option<String> {
    let get = |name: &str| environment.non_empty(name).unwrap_or("?");
    if environment.get("GITHUB_ACTIONS") == Some("true") {
        return Some(format!(
            "GitHub Actions: {} run {} attempt {} ({})",
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
            get("GITHUB_RUN_ATTEMPT"),
            get("GITHUB_WORKFLOW")
        ));
    }
    if environment.get("GITLAB_CI") == Some("true") {
        return Some(format!(
            "GitLab CI: {} pipeline {} job {}",
            get("CI_PROJECT_PATH"),
            get("CI_PIPELINE_ID"),
            get("CI_JOB_ID")
        ));
    }
    let generic = environment
        .non_empty("CI")
        .is_some_and(|v| !matches!(v, "0" | "false"));
    generic.then(|| {
        match environment
            .non_empty("BUILD_ID")
            .or(environment.non_empty("BUILD_NUMBER"))
        {
            Some(build) => format!("CI build {build}"),
            None => "CI".to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> Environment {
        Environment {
            variables: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn ci_runs_are_recognised() {
        let github = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_WORKFLOW", "deploy"),
        ]);
        assert_eq!(
            ci_run(&github).as_deref(),
            Some("GitHub Actions: o/r run 42 attempt 1 (deploy)")
        );
        let gitlab = environment(&[("GITLAB_CI", "true"), ("CI_PIPELINE_ID", "7")]);
        assert!(ci_run(&gitlab).is_some_and(|c| c.contains("pipeline 7")));
        assert_eq!(
            ci_run(&environment(&[("CI", "true")])).as_deref(),
            Some("CI")
        );
        assert_eq!(ci_run(&environment(&[("CI", "false")])), None);
        assert_eq!(ci_run(&environment(&[])), None);
    }
}
