//! `infra plan`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use infra_exec::gather;
use infra_exec::lab::LabFiles;
use infra_exec::ssh::{ConnectOptions, HostKeyPolicy};
use infra_plan::plan::{self, Plan};
use infra_plan::show;
use infra_topology::Topology;

use super::{Outcome, load, templates};
use crate::certificate::{self, Keep};
use crate::cli::{Cli, ConnectArgs, PlanArgs};
use crate::output::{Hinted, Style};

/// The hosts a run works on: all, or `--target`s, minus `--exclude`s; unknown names are errors.
pub fn selected_hosts(topology: &Topology, args: &ConnectArgs) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = topology.hosts.iter().map(|h| h.name.to_string()).collect();
    for name in args.targets.iter().chain(&args.excludes) {
        if !names.contains(name) {
            anyhow::bail!(Hinted::new(
                format!("no host `{name}` in the topology"),
                format!("the hosts are: {}", names.join(", "))
            ));
        }
    }
    Ok(names
        .into_iter()
        .filter(|n| args.targets.is_empty() || args.targets.contains(n))
        .filter(|n| !args.excludes.contains(n))
        .collect())
}

/// Connection settings; the lab's ssh_config is used when `infra lab up` wrote one.
pub fn connect_options(topology: &Topology, args: &ConnectArgs) -> ConnectOptions {
    let lab = LabFiles::new(&topology.base_dir, &topology.name).ssh_config();
    ConnectOptions {
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: Duration::from_secs(args.connect_timeout),
        command_timeout: Duration::from_secs(args.command_timeout),
        config_file: lab.is_file().then_some(lab),
    }
}

/// Loads, renders, gathers and diffs: the plan of the selected hosts.
pub fn make_plan(
    cli: &Cli,
    args: &ConnectArgs,
    style: Style,
) -> anyhow::Result<Option<(Topology, Plan)>> {
    let Some(loaded) = load(cli, style)? else {
        return Ok(None);
    };
    let topology = loaded.topology;
    let selected = selected_hosts(&topology, args)?;
    let templates = templates(&topology)?;
    let certificate = certificate::generated(&topology, Keep::OnDisk)?;
    let desired = infra_plan::desired_state(&topology, &templates, certificate.as_ref())?;
    let options = connect_options(&topology, args);
    let pending = infra_exec::state::load(&topology.base_dir, &topology.name)?.pending();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (plan, round_trips) = runtime.block_on(async {
        let gathered =
            gather::gather(&topology, &desired, &selected, &options, args.parallelism).await;
        let plan = plan::diff(&desired, &gathered.facts, &pending, gathered.unreachable());
        let round_trips = gathered.round_trips();
        gathered.close().await;
        (plan, round_trips)
    });
    eprintln!(
        "gathered facts from {} of {} hosts in {:.2} s ({} SSH round trips)",
        plan.hosts.len(),
        selected.len(),
        started.elapsed().as_secs_f64(),
        round_trips
    );
    Ok(Some((topology, plan)))
}

/// Runs `infra plan`.
pub fn run(cli: &Cli, args: &PlanArgs, style: Style) -> anyhow::Result<Outcome> {
    let plan = if args.destroy {
        let Some(loaded) = super::load_with(cli, style, super::SecretValues::NotNeeded)? else {
            return Ok(Outcome::Failed);
        };
        let topology = loaded.topology;
        let selected = selected_hosts(&topology, &args.connect)?;
        let state = infra_exec::state::load(&topology.base_dir, &topology.name)?;
        let mut plan = infra_exec::destroy::plan(&topology, &state, args.delete_data);
        plan.hosts.retain(|h| selected.contains(&h.host));
        plan
    } else {
        let Some((_topology, plan)) = make_plan(cli, &args.connect, style)? else {
            return Ok(Outcome::Failed);
        };
        plan
    };
    if let Some(path) = &args.out {
        write_plan(path, &plan)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json_view(&plan))?);
    } else {
        print!("{}", show::text(&plan, style.plan_colour()));
        if let Some(path) = &args.out {
            println!(
                "\nSaved the plan to `{}`. To apply exactly it: infra apply {}",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if !plan.unreachable.is_empty() {
        Outcome::Failed
    } else if args.detailed_exitcode && plan.has_changes() {
        Outcome::ChangesPresent
    } else {
        Outcome::Success
    })
}

/// The documented JSON form: Terraform-like `resource_changes` with action arrays.
pub fn json_view(plan: &Plan) -> serde_json::Value {
    let changes: Vec<&plan::ResourceChange> = plan.hosts.iter().flat_map(|h| &h.changes).collect();
    let triggered: Vec<serde_json::Value> = plan
        .hosts
        .iter()
        .flat_map(|h| h.triggered.iter().map(move |t| serde_json::json!({ "host": h.host, "unit": t.unit, "action": t.trigger, "because": t.because })))
        .collect();
    let summary = plan.summary();
    serde_json::json!({
        "format_version": plan.format_version,
        "topology": plan.topology,
        "resource_changes": changes,
        "triggered": triggered,
        "unreachable": plan.unreachable,
        "summary": { "add": summary.add, "change": summary.change, "destroy": summary.destroy },
    })
}

fn write_plan(path: &std::path::Path, plan: &Plan) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(plan)?;
    infra_exec::files::write_atomic(path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write `{}`", path.display()))
}
