//! `infra validate`.

use anyhow::Context as _;
use infra_topology::Tier;

use crate::certificate::{self, Keep};
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::settings::{Output, Settings};

/// Checks the topology and renders every template (in memory) so template errors show too.
pub fn run(settings: &Settings) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::Required)? else {
        return Ok(Exit::Error);
    };
    let topology = &loaded.topology;
    let templates = ops::templates(topology)?;
    let certificate = certificate::generated(topology, Keep::InMemory)?;
    infra_plan::desired_state(topology, &templates, certificate.as_ref())
        .context("the topology is valid but its files cannot be rendered")?;
    // From the edge inwards, monitoring last.
    let tiers: Vec<String> = [
        Tier::LoadBalancer,
        Tier::Web,
        Tier::App,
        Tier::Database,
        Tier::Monitoring,
    ]
    .iter()
    .map(|tier| (tier, topology.tier_hosts(*tier).len()))
    .filter(|(_, count)| *count > 0)
    .map(|(tier, count)| format!("{count} {}", tier.key()))
    .collect();
    if settings.output == Output::Document {
        crate::outln!(
            "{}",
            serde_json::json!({
                "valid": true,
                "topology": topology.name,
                "hosts": topology.hosts.len(),
                "diagnostics": loaded.warnings.to_json(&loaded.source),
            })
        );
    } else {
        crate::outln!(
            "`{}` is valid: topology `{}`, {} host{} ({})",
            settings.file.display(),
            topology.name,
            topology.hosts.len(),
            if topology.hosts.len() == 1 { "" } else { "s" },
            tiers.join(", ")
        );
    }
    Ok(Exit::Success)
}
