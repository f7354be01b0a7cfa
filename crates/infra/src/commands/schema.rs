//! `infra schema`.

use super::Outcome;

/// Prints the topology's JSON Schema.
pub fn run() -> anyhow::Result<Outcome> {
    println!(
        "{}",
        serde_json::to_string_pretty(&infra_topology::json_schema())?
    );
    Ok(Outcome::Success)
}
