//! `infra schema`.

use crate::exit::Exit;

/// Prints the topology's JSON Schema.
pub fn run() -> anyhow::Result<Exit> {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&infra_topology::json_schema())?
    );
    Ok(Exit::Success)
}
