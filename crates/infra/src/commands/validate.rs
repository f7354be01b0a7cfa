//! `infra validate`.

use anyhow::Context as _;
use infra_topology::Tier;

use super::{Outcome, load, templates};
use crate::certificate::{self, Keep};
use crate::cli::Cli;
use crate::output::Style;

/// Checks the topology and renders every template (in memory) so template errors show too.
pub fn run(cli: &Cli, style: Style) -> anyhow::Result<Outcome> {
    let Some(loaded) = load(cli, style)? else {
        return Ok(Outcome::Failed);
    };
    let topology = &loaded.topology;
    let templates = templates(topology)?;
    let certificate = certificate::generated(topology, Keep::InMemory)?;
    infra_plan::desired_state(topology, &templates, certificate.as_ref())
        .context("the topology is valid but its files cannot be rendered")?;
    let tiers: Vec<String> = Tier::ALL
        .iter()
        .rev()
        .map(|tier| (tier, topology.tier_hosts(*tier).len()))
        .filter(|(_, count)| *count > 0)
        .map(|(tier, count)| format!("{count} {}", tier.key()))
        .collect();
    println!(
        "`{}` is valid: topology `{}`, {} hosts ({})",
        cli.global.file.display(),
        topology.name,
        topology.hosts.len(),
        tiers.join(", ")
    );
    Ok(Outcome::Success)
}
