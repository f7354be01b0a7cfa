//! One module per subcommand; each is a thin composition of the stages in [`crate::ops`].

pub(crate) mod change;
mod docs;
mod force_unlock;
mod graph;
mod lab;
mod plan;
mod render;
mod schema;
mod show;
mod state;
mod status;
mod validate;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::settings::Settings;

/// Runs the chosen subcommand.
pub fn run(cli: &Cli, settings: &Settings) -> anyhow::Result<Exit> {
    match &cli.command {
        Command::Validate(_) => validate::run(settings),
        Command::Render(args) => render::run(settings, args),
        Command::Graph(args) => graph::run(settings, args),
        Command::Schema => schema::run(),
        Command::Lab(command) => lab::run(settings, command),
        Command::Plan(args) => plan::run(settings, args),
        Command::Show(args) => show::run(settings, args),
        Command::Status(args) => status::run(settings, args),
        Command::Apply(args) => change::apply(settings, args),
        Command::Destroy(args) => change::destroy(settings, args),
        Command::ForceUnlock(args) => force_unlock::run(settings, args),
        Command::State(command) => state::run(settings, command),
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man => docs::man(),
    }
}

/// A tokio runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
