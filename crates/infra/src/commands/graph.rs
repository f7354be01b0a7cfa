//! `infra graph`.

use infra_plan::graph::{self, GraphFormat};

use crate::cli::{GraphArgs, GraphFormatArg};
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::settings::Settings;

/// Prints the topology as a Mermaid or DOT diagram.
pub fn run(settings: &Settings, args: &GraphArgs) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let format = match args.format {
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
        GraphFormatArg::Dot => GraphFormat::Dot,
    };
    crate::output::out(&graph::render(&loaded.topology, format));
    Ok(Exit::Success)
}
