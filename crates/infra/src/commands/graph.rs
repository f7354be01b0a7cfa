//! `infra graph`.

use infra_plan::graph::{self, GraphFormat};

use super::{Outcome, SecretValues, load_with};
use crate::cli::{Cli, GraphArgs, GraphFormatArg};
use crate::output::Style;

/// Prints the topology as a Mermaid or DOT diagram.
pub fn run(cli: &Cli, args: &GraphArgs, style: Style) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_with(cli, style, SecretValues::NotNeeded)? else {
        return Ok(Outcome::Failed);
    };
    let format = match args.format {
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
        GraphFormatArg::Dot => GraphFormat::Dot,
    };
    print!("{}", graph::render(&loaded.topology, format));
    Ok(Outcome::Success)
}
