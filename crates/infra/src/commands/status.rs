//! `infra status`.

use infra_exec::ssh::Connection;
use infra_exec::status;

use super::plan::{connect_options, selected_hosts};
use super::{Outcome, load, templates};
use crate::certificate::{self, Keep};
use crate::cli::{Cli, StatusArgs};
use crate::output::Style;

/// Prints each host's services and health checks; exit 1 when any is not fine.
pub fn run(cli: &Cli, args: &StatusArgs, style: Style) -> anyhow::Result<Outcome> {
    let Some(loaded) = load(cli, style)? else {
        return Ok(Outcome::Failed);
    };
    let topology = loaded.topology;
    let selected = selected_hosts(&topology, &args.connect)?;
    let templates = templates(&topology)?;
    let certificate = certificate::generated(&topology, Keep::OnDisk)?;
    let desired = infra_plan::desired_state(&topology, &templates, certificate.as_ref())?;
    let options = connect_options(&topology, &args.connect);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for state in desired
            .hosts
            .iter()
            .filter(|h| selected.contains(&h.name.to_string()))
        {
            let Some(host) = topology.host(&state.name).cloned() else {
                continue;
            };
            let script = status::script(&topology, state);
            let options = options.clone();
            tasks.spawn(async move {
                let result = match Connection::open(&host, &options).await {
                    Ok(connection) => {
                        let output = connection.run_script(&script).await;
                        connection.close().await;
                        output
                            .map(|o| status::parse(&o.stdout))
                            .map_err(|e| e.to_string())
                    }
                    Err(error) => Err(error.to_string()),
                };
                (host.name.to_string(), result)
            });
        }
        let mut results = Vec::new();
        while let Some(Ok(result)) = tasks.join_next().await {
            results.push(result);
        }
        results
    });
    let mut results = results;
    results.sort_by_key(|(name, _)| desired.hosts.iter().position(|h| h.name.as_str() == name));
    let mut all_fine = true;
    println!(
        "{:<10} {:<8} {:<28} {:<5} detail",
        "host", "kind", "name", "state"
    );
    for (host, result) in &results {
        match result {
            Ok(lines) => {
                for line in lines {
                    all_fine &= line.ok;
                    println!(
                        "{:<10} {:<8} {:<28} {:<5} {}",
                        host,
                        line.kind,
                        line.name,
                        if line.ok { "ok" } else { "FAIL" },
                        line.detail
                    );
                }
            }
            Err(error) => {
                all_fine = false;
                println!("{host:<10} {:<8} {:<28} FAIL  {error}", "host", "ssh");
            }
        }
    }
    Ok(if all_fine {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
