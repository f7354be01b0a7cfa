//! `infra status`.

use infra_exec::hosts::for_each_host;
use infra_exec::ssh::Connection;
use infra_exec::status;

use super::runtime;
use crate::cli::StatusArgs;
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::settings::Settings;

/// Prints each host's services and health checks; exit 1 when any is not fine.
pub fn run(settings: &Settings, args: &StatusArgs) -> anyhow::Result<Exit> {
    let Some(prepared) = ops::prepare(settings, SecretValues::Required)? else {
        return Ok(Exit::Error);
    };
    let topology = &prepared.topology;
    let hosts = ops::selected(topology, &args.connect)?;
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let options = ops::ssh_options(settings, topology, &args.connect).await?;
        let items: Vec<_> = prepared
            .desired
            .hosts
            .iter()
            .filter_map(|state| {
                let host = hosts.iter().find(|h| h.name == state.name)?.clone();
                Some((host.name.clone(), (host, status::script(topology, state))))
            })
            .collect();
        let results = for_each_host(
            items,
            usize::from(args.connect.parallelism),
            |_, (host, script)| {
                let options = options.clone();
                async move {
                    let connection = Connection::open(&host, &options).await?;
                    let output = connection.run_script(&script).await;
                    connection.close().await;
                    Ok(status::parse(&output?.stdout))
                }
            },
        )
        .await;
        anyhow::Ok(results)
    })?;
    let mut all_fine = true;
    crate::outln!(
        "{:<10} {:<8} {:<28} {:<5} detail",
        "host",
        "kind",
        "name",
        "state"
    );
    for (host, result) in &results {
        match result {
            Ok(lines) => {
                for line in lines {
                    all_fine &= line.ok;
                    crate::outln!(
                        "{:<10} {:<8} {:<28} {:<5} {}",
                        host,
                        line.kind,
                        infra_topology::text::visible_line(&line.name),
                        if line.ok { "ok" } else { "FAIL" },
                        infra_topology::text::visible_line(&line.detail)
                    );
                }
            }
            Err(error) => {
                all_fine = false;
                crate::outln!("{host:<10} {:<8} {:<28} FAIL  {error}", "host", "ssh");
            }
        }
    }
    Ok(if all_fine { Exit::Success } else { Exit::Error })
}
